"""The runsc log FIFO: create it safely, open it without EOF, size its buffer.

gVisor's runsc writes its debug logs into a named pipe; the log pump reads them.
The rules this module enforces:

* The FIFO is a real named pipe made with `mkfifo`. Its mode comes from config
  (0600 by default) and is never world-writable (a world-writable log pipe lets any
  local user forge runsc log lines).
* A path that exists but is not a FIFO (a file, a directory, a symlink — even one
  pointing at a FIFO) is refused, never replaced: it may be someone else's data.
* An existing FIFO with the wrong mode has its mode fixed, on the open descriptor
  (`fchmod`), so a rename race cannot redirect the chmod.
* Every open is `O_RDWR`: opening a FIFO read-write never blocks on Linux and makes
  the opener a writer too, so a reader on such a descriptor never sees EOF when the
  real writers come and go — it blocks (or polls) instead of spinning. The same
  descriptor held by `root.containerd` keeps the kernel buffer, and the bytes in it,
  alive while the pump restarts.
* The buffer is raised with `F_SETPIPE_SZ`, capped at the kernel's
  `/proc/sys/fs/pipe-max-size`.

The pure rules (`validate_fifo_mode`, `clamp_pipe_size`, the defaults, `FifoError`)
are `actors.containerd.core.fifo_rules`.
"""

from __future__ import annotations

import enum
import fcntl
import os
import stat

from actors.containerd.core.fifo_rules import (
    FifoError,
    clamp_pipe_size,
    validate_fifo_mode,
)

__all__ = ["FifoSetup", "ensure_fifo", "open_fifo", "pipe_max_size", "set_pipe_size"]

_F_SETPIPE_SZ = getattr(fcntl, "F_SETPIPE_SZ", 1031)
_F_GETPIPE_SZ = getattr(fcntl, "F_GETPIPE_SZ", 1032)
_PIPE_MAX_SIZE_FILE = "/proc/sys/fs/pipe-max-size"


class FifoSetup(enum.Enum):
    """What `ensure_fifo` had to do."""

    CREATED = "created"
    MODE_FIXED = "mode fixed"
    UNCHANGED = "unchanged"


def ensure_fifo(path: str, mode: int) -> FifoSetup:
    """Makes sure `path` is a FIFO with permission bits `mode`.

    Args:
        path: where the FIFO lives; its directory must exist.
        mode: permission bits (checked by `validate_fifo_mode`).

    Returns:
        Whether the FIFO was created, had its mode fixed, or was already right.

    Raises:
        FifoError: the mode is invalid, `path` exists and is not a FIFO, or the
            FIFO cannot be made.
    """
    validate_fifo_mode(mode)
    created = False
    try:
        os.mkfifo(path, mode)
        created = True
    except FileExistsError:
        pass
    except OSError as e:
        raise FifoError(f"cannot create fifo {path!r}: {_reason(e)}") from e
    fd = open_fifo(path)
    try:
        current = stat.S_IMODE(os.fstat(fd).st_mode)
        if current != mode:  # mkfifo's mode is masked by the umask; fix it either way
            os.fchmod(fd, mode)
            return FifoSetup.CREATED if created else FifoSetup.MODE_FIXED
    finally:
        os.close(fd)
    return FifoSetup.CREATED if created else FifoSetup.UNCHANGED


def open_fifo(path: str, *, nonblocking: bool = False) -> int:
    """Opens the FIFO at `path` read-write and returns the descriptor.

    Read-write: the open never blocks, and a read on the descriptor never returns
    EOF (this descriptor is itself a writer). The descriptor is close-on-exec.

    Args:
        path: the FIFO.
        nonblocking: open with `O_NONBLOCK` (for a reader that polls).

    Raises:
        FifoError: `path` does not exist, is not a FIFO (symlinks are refused), or
            cannot be opened.
    """
    try:
        st = os.lstat(path)
    except FileNotFoundError as e:
        raise FifoError(f"fifo {path!r} does not exist") from e
    if not stat.S_ISFIFO(st.st_mode):
        raise FifoError(f"{path!r} exists and is not a fifo ({_kind(st.st_mode)})")
    flags = os.O_RDWR | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK
    try:
        fd = os.open(path, flags)
    except OSError as e:
        raise FifoError(f"cannot open fifo {path!r}: {_reason(e)}") from e
    try:
        after = os.fstat(fd)
        if (after.st_dev, after.st_ino) != (st.st_dev, st.st_ino):
            raise FifoError(f"fifo {path!r} was replaced while being opened")
        if not nonblocking:
            os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd


def pipe_max_size() -> int:
    """The kernel's ceiling for `F_SETPIPE_SZ` (`/proc/sys/fs/pipe-max-size`)."""
    with open(_PIPE_MAX_SIZE_FILE, "rb") as f:
        return int(f.read())


def set_pipe_size(fd: int, requested: int) -> int:
    """Raises the kernel buffer of the pipe `fd` to `requested` bytes (capped).

    Never shrinks the buffer: a pipe already at least that large is left alone, so a
    second caller cannot fail with `EBUSY` by asking for less than is buffered.

    Args:
        fd: a descriptor of the FIFO.
        requested: wanted size in bytes, capped at `pipe_max_size()`; the kernel rounds
            it up to a power-of-two number of pages.

    Returns:
        The buffer size in bytes after the call.

    Raises:
        FifoError: the size is invalid or the kernel refused it (e.g. `EPERM` when
            the user's pipe-buffer quota is exhausted).
    """
    wanted = clamp_pipe_size(requested, pipe_max_size())
    current = fcntl.fcntl(fd, _F_GETPIPE_SZ)
    if current >= wanted:
        return current
    try:
        return fcntl.fcntl(fd, _F_SETPIPE_SZ, wanted)
    except OSError as e:
        raise FifoError(f"cannot set pipe size to {wanted}: {_reason(e)}") from e


def _reason(e: OSError) -> str:
    return (e.strerror or str(e)).lower()


def _kind(mode: int) -> str:
    for test, name in (
        (stat.S_ISREG, "a regular file"),
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISLNK, "a symlink"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
    ):
        if test(mode):
            return name
    return "unknown type"
