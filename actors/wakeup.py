"""A wake-up pipe: lets one thread interrupt another thread's poll(2).

A helper thread that blocks in `poll` on a FIFO or a socket also polls
`Wakeup.fd`; another thread calls `Wakeup.set()` to make that descriptor readable,
and the helper returns. No timeouts, no sleep loops. Setting twice is harmless.
"""

from __future__ import annotations

import os
import select
import threading

__all__ = ["Wakeup", "wait_readable"]


class Wakeup:
    """A self-pipe whose read end becomes readable once `set()` is called.

    Thread-safe: `set()` may be called from any thread, any number of times.
    """

    def __init__(self) -> None:
        self._r, self._w = os.pipe2(os.O_CLOEXEC | os.O_NONBLOCK)
        self._lock = threading.Lock()
        self._set = False
        self._closed = False

    @property
    def fd(self) -> int:
        """The descriptor to poll for `POLLIN`."""
        return self._r

    def is_set(self) -> bool:
        """Whether `set()` was called."""
        return self._set

    def set(self) -> None:
        """Makes `fd` readable (once; later calls do nothing)."""
        with self._lock:
            if self._set or self._closed:
                return
            self._set = True
            os.write(self._w, b"x")

    def close(self) -> None:
        """Closes both ends. Call it only once no thread polls `fd` any more."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            os.close(self._r)
            os.close(self._w)


def wait_readable(fd: int, wakeup: Wakeup) -> bool:
    """Blocks until `fd` is readable or `wakeup` is set.

    The wake-up wins when both are ready, so a caller that stops on it stops
    before reading anything more.

    Returns:
        True when `fd` is readable (or hung up/errored: the read will tell), False
        when woken.
    """
    poller = select.poll()
    poller.register(wakeup.fd, select.POLLIN)
    poller.register(fd, select.POLLIN)
    while True:
        ready = dict(poller.poll())
        if wakeup.fd in ready:
            return False
        if fd in ready:
            return True
