"""What the root and a runnable's process agree on before any message is sent.

Both sides import this module, and only this one of each other's: the root's
spawner (`actors.supervisor.runtime.spawn`) places the link socket on `LINK_FD`,
and the host (`actors.supervisor.process.host`) finds it there. The exit codes
are how a host that cannot even talk to the root explains itself in its wait
status.
"""

from __future__ import annotations

__all__ = ["EXIT_ORPHANED", "HOST_MODULE", "LINK_FD"]

#: The fd on which a runnable's process finds its socket to the root.
LINK_FD = 3

#: The module the root runs (`python -m HOST_MODULE`) for every runnable.
HOST_MODULE = "actors.supervisor.process.host"

#: Exit code of a host whose parent died before it could ask to die with it.
EXIT_ORPHANED = 76
