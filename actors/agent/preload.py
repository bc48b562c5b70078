"""What the zygote preloads, and its start before anything else of `run` is loaded.

`spawn_early_zygote` is the first thing `node-containerd run` does once it knows it
runs as root: this module imports only the zygote's handle and the DNs, so that
the zygote's interpreter starts, and loads the runnables' modules, while the root
loads the config and the rest of the agent (~150 ms of imports and checks).
"""

from __future__ import annotations

import os

from actors.agent.systemd.sdnotify import NOTIFY_VARIABLES
from actors.containerd.core.dns import CONTAINERD_DN, PRESEED_DN
from actors.supervisor.runtime.spawn import ensure_std_fds
from actors.supervisor.runtime.zygote import Zygote

__all__ = ["RUNNABLE_MODULES", "spawn_early_zygote"]

#: The modules of the tree's runnables: what the zygote loads, in this order, one
#: step per entry, serving fork requests between steps; `@DN`: that node's fork
#: waits until this entry is loaded, so that its host shares it instead of loading
#: its own copy (the others get theirs shared when forked after it, or load them).
#: `root`'s first: it is the first fork, and this module loads little in a runnable
#: (what only the agent needs is imported where it is used, so that the zygote is
#: ready to fork `root` at once);
#: then containerd's, the second fork, whose process lives as long as the agent and
#: so should share them, with its heavy dependencies as steps of their own (grpc
#: alone is ~40 ms) so that no request waits long behind one; then the line parsers
#: that containerd's and runsc's output go through (their patterns compiled once,
#: not again in each of the two), the pump's, and the preseed's last.
RUNNABLE_MODULES = (
    "actors.agent.root",
    "pykka",
    "asyncio",
    "grpc._cython.cygrpc",
    "grpc",
    "actors.containerd.core.events",
    f"actors.containerd.process@{CONTAINERD_DN}",
    f"actors.containerd.children@{CONTAINERD_DN}",
    "actors.logtree.parse.logrus_run",
    f"actors.logtree.parse.stream@{CONTAINERD_DN}",
    "actors.containerd.logpump",
    f"grpc._channel@{PRESEED_DN}",
    f"grpc.experimental@{PRESEED_DN}",
    f"actors.preseed.service.runnable@{PRESEED_DN}",
)


def spawn_early_zygote() -> Zygote:
    """The zygote, spawned before the config is read: it loads the runnables' modules
    while this process loads the config and the agent (~150 ms of imports and
    checks), instead of after.

    It writes nothing and takes nothing of the state directory: a config that is
    refused, or a second agent refused by the lock, only closes it. Spawned on this
    (the main) thread, so that its death signal, and its children's, names a thread
    that lives as long as the agent. One that could not be spawned is returned all
    the same: the supervisor logs its absence at the first spawn and runnables start
    with exec until it is back.
    """
    ensure_std_fds()
    # systemd's variables are the root's alone (`_systemd_notifier` takes them out of
    # the environment later): never a runnable's.
    env = {k: v for k, v in os.environ.items() if k not in NOTIFY_VARIABLES}
    zygote = Zygote(RUNNABLE_MODULES, env=env)
    try:
        zygote.start()
    except OSError:
        pass
    return zygote
