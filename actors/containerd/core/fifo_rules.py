"""The runsc log FIFO's rules: its mode, its buffer size, its error. Pure.

The FIFO's permission bits come from config and are checked here
(`validate_fifo_mode`: never world-writable, the owner reads and writes; the
config's `[runsc] mode` defaults to 0600); the buffer asked for is capped at the
kernel's maximum (`clamp_pipe_size`). The I/O (`mkfifo`, `open`, `F_SETPIPE_SZ`) is
`actors.containerd.fifo`.
"""

from __future__ import annotations

import stat

__all__ = [
    "FifoError",
    "clamp_pipe_size",
    "describe_mode",
    "validate_fifo_mode",
]


class FifoError(OSError):
    """The FIFO path or mode is unusable, or an operation on the FIFO failed."""


def validate_fifo_mode(mode: int) -> int:
    """Checks the permission bits configured for the FIFO.

    Args:
        mode: permission bits, e.g. `0o600`.

    Returns:
        The mode, unchanged.

    Raises:
        FifoError: the mode has bits outside `0o777`, is world-writable, or does
            not let its owner both read and write.
    """
    shown = describe_mode(mode)
    if not isinstance(mode, int) or isinstance(mode, bool) or mode & ~0o777:
        raise FifoError(f"fifo mode {shown} is invalid: only permission bits 0o777 allowed")
    if mode & stat.S_IWOTH:
        raise FifoError(f"fifo mode {shown} is invalid: it is world-writable")
    if mode & 0o600 != 0o600:
        raise FifoError(f"fifo mode {shown} is invalid: the owner must read and write")
    return mode


def clamp_pipe_size(requested: int, kernel_max: int) -> int:
    """The pipe size to ask the kernel for: `requested`, capped at `kernel_max`.

    Args:
        requested: wanted buffer size in bytes; must be positive.
        kernel_max: `/proc/sys/fs/pipe-max-size` in bytes.

    Raises:
        FifoError: `requested` is not a positive integer.
    """
    if not isinstance(requested, int) or isinstance(requested, bool) or requested <= 0:
        raise FifoError(f"pipe size {requested!r} is invalid: expected a positive byte count")
    return min(requested, kernel_max)


def describe_mode(mode: object) -> str:
    """`mode` as an error message shows it: `0o600`, or its repr when it is no number."""
    return oct(mode) if isinstance(mode, int) else repr(mode)
