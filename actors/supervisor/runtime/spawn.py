"""Spawning a fresh process host for one node (root side).

A host is started with `posix_spawn` (fork+exec semantics without running
Python in the child between them, so it is safe from a threaded parent): a
fresh interpreter running `actors.supervisor.process.host`, in a new process group
(so that killing the group takes whatever the runnable started with it), with
a connected stream socket on fd 3 and stdout/stderr on a pipe, stdin on
/dev/null. The host itself asks for PR_SET_PDEATHSIG: the kernel sends it
SIGKILL when the thread that spawned it exits, so spawns must happen on a
thread that lives as long as the tree (the supervisor actor's thread).
"""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from actors.supervisor.process.protocol import HOST_MODULE, LINK_FD

__all__ = ["SpawnedHost", "spawn_host", "ensure_std_fds", "host_env"]

_PROJECT_ROOT = str(Path(__file__).resolve().parents[2])


@dataclass(frozen=True, slots=True)
class SpawnedHost:
    """A freshly spawned host process and the root's ends of its pipes."""

    #: Process id, which is also its process group id.
    pid: int
    #: The root's end of the stream socket.
    sock: socket.socket
    #: Read end of the pipe carrying the host's stdout and stderr.
    stdio_fd: int


def ensure_std_fds() -> None:
    """Make sure fds 0, 1 and 2 are open, so new fds never take their numbers."""
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            null = os.open(os.devnull, os.O_RDWR)
            if null != fd:
                os.dup2(null, fd)
                os.close(null)


def host_env(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of a host: `base` (ours), with the checkout on PYTHONPATH, unbuffered."""
    env = dict(os.environ if base is None else base)
    path = env.get("PYTHONPATH", "")
    parts = [p for p in path.split(os.pathsep) if p]
    if _PROJECT_ROOT not in parts:
        parts.insert(0, _PROJECT_ROOT)
    env["PYTHONPATH"] = os.pathsep.join(parts)
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


def spawn_host(dn: str, *, python: str = sys.executable) -> SpawnedHost:
    """Start a host process for node `dn`; the caller sends it Start."""
    ensure_std_fds()
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    out_r, out_w = os.pipe()
    child_fd = theirs.fileno()
    moved = None
    try:
        if child_fd == LINK_FD:  # dup2(3, 3) would keep O_CLOEXEC set
            moved = os.dup(child_fd)
            child_fd = moved
        pid = os.posix_spawn(
            python,
            [python, "-m", HOST_MODULE, "--parent", str(os.getpid()), "--dn", dn],
            host_env(),
            file_actions=[
                (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
                (os.POSIX_SPAWN_DUP2, out_w, 1),
                (os.POSIX_SPAWN_DUP2, out_w, 2),
                (os.POSIX_SPAWN_DUP2, child_fd, LINK_FD),
            ],
            setpgroup=0,
        )
    except BaseException:
        ours.close()
        os.close(out_r)
        raise
    finally:
        theirs.close()
        os.close(out_w)
        if moved is not None:
            os.close(moved)
    os.set_blocking(out_r, True)
    return SpawnedHost(pid=pid, sock=ours, stdio_fd=out_r)
