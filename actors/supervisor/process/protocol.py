"""What the root and a runnable's process agree on before any message is sent.

Both sides import this module, and only this one of each other's: the root's
spawner (`actors.supervisor.runtime.spawn`) places the link socket on `LINK_FD`,
and the host (`actors.supervisor.process.host`) finds it there; the zygote
(`actors.supervisor.process.zygote`) finds its request socket on the same fd
and says `ZYGOTE_READY` on it once it can fork. The exit codes
are how a host that cannot even talk to the root explains itself in its wait
status.
"""

from __future__ import annotations

__all__ = [
    "EXIT_FORK_SETUP",
    "EXIT_ORPHANED",
    "HOST_MODULE",
    "LINK_FD",
    "ZYGOTE_MODULE",
    "ZYGOTE_READY",
]

#: The fd on which a runnable's process finds its socket to the root.
LINK_FD = 3

#: The module the root runs (`python -m HOST_MODULE`) for every runnable.
HOST_MODULE = "actors.supervisor.process.host"

#: Exit code of a host whose parent died before it could ask to die with it.
EXIT_ORPHANED = 76

#: The module the root runs (`python -m ZYGOTE_MODULE`) once, to fork runnables from.
ZYGOTE_MODULE = "actors.supervisor.process.zygote"

#: What the zygote sends on its socket once it has loaded everything and can fork.
ZYGOTE_READY = b"ready"

#: Exit code of a forked child that could not become a host (its set-up failed).
EXIT_FORK_SETUP = 77
