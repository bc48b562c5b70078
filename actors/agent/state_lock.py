"""One agent per state directory: an exclusive `flock` on `<state>/lock`, taken first.

`run_agent` takes the lock before it writes anything (containerd's config, the runsc
launcher, ACLs, sockets) and holds it for its whole life; a second agent started on
the same state directory finds it held and is refused, having changed nothing the
first one uses. The lock is the kernel's: it goes away with the process that holds
it, however that process ends (SIGKILL included), so a stale lock file never blocks
a restart. The file holds the holder's pid, for the refusal's message only.

The descriptor is close-on-exec: no child (a runnable's process, containerd) holds
the lock after the agent is gone.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
from pathlib import Path

__all__ = ["LOCK_NAME", "StateDirLocked", "StateLock"]

#: The lock file's name inside the state directory.
LOCK_NAME = "lock"


class StateDirLocked(Exception):
    """Another agent holds the state directory; `str()` names it and its pid."""


class StateLock:
    """The exclusive lock of one state directory, held until `release` (or exit)."""

    def __init__(self, state_dir: Path) -> None:
        """Takes the lock at once, creating the state directory (mode 0700) if missing.

        Raises:
            StateDirLocked: another process holds it.
            OSError: the directory or the lock file cannot be made or opened.
        """
        state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        #: The lock file.
        self.path = state_dir / LOCK_NAME
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            os.close(fd)
            if e.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                raise
            holder = _holder(self.path)
            raise StateDirLocked(
                f"another node-containerd agent{holder} is already serving "
                f"{str(state_dir)!r}; stop it first, or give this one another state "
                "directory (--config with state_dir, or NODE_CONTAINERD_STATE)"
            ) from None
        self._fd: int | None = fd
        with contextlib.suppress(OSError):  # a read-only file system: the lock still holds
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)

    def release(self) -> None:
        """Releases the lock (closing its descriptor). Idempotent."""
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)


def _holder(path: Path) -> str:
    """` (pid N)` from the lock file, or "" when it says nothing readable."""
    try:
        text = path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return ""
    return f" (pid {text})" if text.isdigit() else ""
