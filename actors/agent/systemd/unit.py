"""The systemd unit of the agent, rendered for where it is installed.

`render_unit` fills the one template with the agent's executable and its config
file; `node-containerd config unit` prints it for the running installation (the
venv's `bin/node-containerd`), and `contrib/node-containerd.service` is the same
text for the documented prefix `/opt/node-containerd` (a test keeps them equal).
The template's comments say why each setting is there; the README ("Running under
systemd") says the same for operators.

Rules:
    * The config file is chosen by `NODE_CONTAINERD_CONFIG`, set by `Environment=`
      and overridable in `/etc/default/node-containerd` (`EnvironmentFile=`), never by
      editing `ExecStart=`.
    * `ExecReload=` sends SIGHUP, which reloads the config and reopens the JSON log
      (`actors.agent.live`); `Type=notify` rather than `notify-reload`, which needs
      systemd 253 (Debian 12 has 252).
"""

from __future__ import annotations

import sys
from pathlib import Path

__all__ = [
    "DEFAULT_CONFIG",
    "DEFAULT_EXECUTABLE",
    "UNIT_TEMPLATE",
    "installed_executable",
    "render_unit",
]

#: Where the installed unit reads the agent's config (`ConfigurationDirectory=`).
DEFAULT_CONFIG = "/etc/node-containerd/config.toml"
#: The agent's executable under the documented prefix `/opt/node-containerd`.
DEFAULT_EXECUTABLE = "/opt/node-containerd/bin/node-containerd"

#: The unit, with `{executable}` and `{config}` to fill.
UNIT_TEMPLATE = """\
# node-containerd under systemd. Written by `node-containerd config unit`; see
# "Installing and running under systemd" in the README.
#
# The agent speaks the notify protocol: `systemctl start` returns once containerd
# answers and the initial preseed import has finished (READY=1; a failed preseed still
# makes it ready, and `systemctl status` shows the STATUS= line saying so). While the
# preseed imports it sends EXTEND_TIMEOUT_USEC= every 20 s, so a large preseed needs no
# long TimeoutStartSec=. While it runs it sends WATCHDOG=1 every WatchdogSec/2, but
# only while its supervisor answers; a frozen agent is killed (SIGABRT) and restarted.

[Unit]
Description=node-containerd: keeps containerd running, pumps runsc logs, preseeds images
After=network.target local-fs.target
# The agent runs its own containerd (its own root, state and sockets): it replaces the
# distribution's, and two containerds on one node fight over cgroups and pods.
Conflicts=containerd.service

[Service]
Type=notify
# Only the agent itself may notify; containerd and the runnables do not inherit
# NOTIFY_SOCKET (the agent removes it from its environment).
NotifyAccess=main
# containerd's overlayfs snapshotter; `-`: a kernel with overlay built in has no module.
ExecStartPre=-/sbin/modprobe overlay
# The config file; /etc/default/node-containerd may name another
# (NODE_CONTAINERD_CONFIG=...) or set the state directory (NODE_CONTAINERD_STATE=...,
# which a config's state_dir overrides).
Environment=NODE_CONTAINERD_CONFIG={config}
Environment=NODE_CONTAINERD_STATE=/var/lib/node-containerd
EnvironmentFile=-/etc/default/node-containerd
ExecStart={executable} run --config ${{NODE_CONTAINERD_CONFIG}}
# `systemctl reload`: SIGHUP reopens the JSON log file and reloads the config file
# (log settings, restart policies and the metrics address change at once).
ExecReload=/bin/kill -HUP $MAINPID

# /etc/node-containerd (the config), /var/lib/node-containerd (containerd's root,
# images, the preseed directory, the control socket) and /run/node-containerd
# (containerd's runtime state: shims' sockets and bundles; tmpfs, gone at reboot as
# the pods are). Kept across restarts: the shims of running pods live there, and the
# next containerd reconnects to them.
ConfigurationDirectory=node-containerd
StateDirectory=node-containerd
StateDirectoryMode=0700
RuntimeDirectory=node-containerd
RuntimeDirectoryMode=0700
RuntimeDirectoryPreserve=yes
WorkingDirectory=/var/lib/node-containerd

WatchdogSec=30s
# containerd's start and the sandbox image; the preseed extends it (EXTEND_TIMEOUT_USEC=).
TimeoutStartSec=2min
# The agent's own graceful shutdown takes at most 120 s.
TimeoutStopSec=150s
Restart=on-failure
RestartSec=5s

# KillMode=process: on stop, SIGTERM goes to the agent alone, which stops its tree and
# containerd in order. containerd's shims (containerd-shim-runc-v2, one per pod) run in
# their own sessions but in this unit's cgroup; they must outlive containerd so that
# pods keep running across an agent restart or upgrade, and the next containerd
# reconnects to them. The default (control-group) would SIGTERM them with the agent,
# and mixed would SIGKILL every process left in the cgroup once the agent has exited:
# both would kill every pod on the node. Nothing of the agent's own is left behind:
# its runnables and containerd die with it (PR_SET_PDEATHSIG).
KillMode=process
# containerd manages its containers' cgroups below this one.
Delegate=yes
OOMScoreAdjust=-999
# A finite limit, as k3s sets: pods inherit it, and programs that close every
# descriptor up to the limit would spin through an infinite one.
LimitNOFILE=1048576
LimitNPROC=infinity
LimitCORE=infinity
TasksMax=infinity

[Install]
WantedBy=multi-user.target
"""


def installed_executable() -> str:
    """The `node-containerd` script of the environment this Python runs in."""
    return str(Path(sys.prefix) / "bin" / "node-containerd")


def render_unit(executable: str = DEFAULT_EXECUTABLE, config: str = DEFAULT_CONFIG) -> str:
    """The unit text for the agent at `executable` reading `config`.

    Raises:
        ValueError: a path is not absolute or holds whitespace, `$`, `%` or a quote,
            which systemd would split or expand.
    """
    for what, path in (("executable", executable), ("config", config)):
        if not path.startswith("/") or any(c in path for c in " \t\n$%'\"\\"):
            raise ValueError(
                f"unit {what} path {path!r} is invalid: expected an absolute path "
                "without whitespace, quotes, '$' or '%'"
            )
    return UNIT_TEMPLATE.format(executable=executable, config=config)
