"""The DNs (distinguished names) of containerd's wing, spelled once.

The agent's root runs containerd as its child `CONTAINERD_NAME`
(`actors.agent.root`); `root.containerd` runs the runsc log pump as
`RUNSC_NAME` and the image preseed as `PRESEED_NAME`
(`actors.containerd.children`). Everyone else names the resulting DNs from
here: the config's defaults (`[log] parse`, the `ready_timeout` cross-check),
systemd's readiness (`actors.agent.systemd.service_state`), `status` and
`check`. The DN grammar and the root's name are the supervision core's
(`actors.supervisor.core.names`).

Pure data, in containerd's pure core so that every area may import it: the
config (a floor below containerd's shell) and the containerd runnables alike.
"""

from __future__ import annotations

from actors.supervisor.core.names import ROOT_DN

__all__ = [
    "CONTAINERD_DN",
    "CONTAINERD_NAME",
    "PRESEED_DN",
    "PRESEED_NAME",
    "RUNSC_DN",
    "RUNSC_NAME",
]

#: The child name the root runs containerd under.
CONTAINERD_NAME = "containerd"
#: The child name `root.containerd` runs the runsc log pump under.
RUNSC_NAME = "runsc"
#: The child name `root.containerd` runs the image preseed under.
PRESEED_NAME = "preseed"

#: `root.containerd`: containerd itself, HEALTHY once it answers.
CONTAINERD_DN = f"{ROOT_DN}.{CONTAINERD_NAME}"
#: `root.containerd.runsc`: the runsc log pump, whose log holds runsc's lines.
RUNSC_DN = f"{CONTAINERD_DN}.{RUNSC_NAME}"
#: `root.containerd.preseed`: the image preseed.
PRESEED_DN = f"{CONTAINERD_DN}.{PRESEED_NAME}"
