"""The one stand-in for systemd's notify socket: every datagram sent to it, in order.

`FakeSystemd` binds a unix datagram socket, at a path or (without one) at a fresh name
in the abstract namespace, and collects what a notifier sends, from a thread of its
own. `name` is the value for `NOTIFY_SOCKET`. `wait_for` waits until a datagram equal
to a text arrives; `close` stops the thread and collects whatever was still queued, so
after it `datagrams` holds everything sent before.
"""

from __future__ import annotations

import os
import socket
import threading
import time

__all__ = ["FakeSystemd"]


class FakeSystemd:
    """The receiving end of `NOTIFY_SOCKET`."""

    def __init__(self, path: str | None = None) -> None:
        """Binds the socket and starts collecting.

        Args:
            path: the socket's file; None binds `@nc-notify-<pid>-<ns>` (abstract).
        """
        #: What `NOTIFY_SOCKET` is set to: the path, or `@` and the abstract name.
        self.name = path or f"@nc-notify-{os.getpid()}-{time.monotonic_ns()}"
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._sock.bind(path if path is not None else b"\0" + self.name[1:].encode())
        self._sock.settimeout(0.05)
        self._cond = threading.Condition()
        self._closing = threading.Event()
        #: Every datagram received, decoded, in order.
        self.datagrams: list[str] = []
        self._thread = threading.Thread(target=self._loop, name="fake-systemd", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._closing.is_set():
            try:
                data = self._sock.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                return
            with self._cond:
                self.datagrams.append(data.decode())
                self._cond.notify_all()

    def wait_for(self, text: str, *, after: int = 0, timeout: float = 30.0) -> int:
        """The index of the first datagram from index `after` on that equals `text`.

        Raises:
            AssertionError: none came within `timeout` s.
        """
        with self._cond:
            ok = self._cond.wait_for(lambda: text in self.datagrams[after:], timeout)
            assert ok, f"no {text!r} within {timeout}s: {self.datagrams[after:]}"
            return self.datagrams.index(text, after)

    def count(self, text: str, after: int = 0) -> int:
        """How many datagrams from index `after` on equal `text`."""
        with self._cond:
            return self.datagrams[after:].count(text)

    def __len__(self) -> int:
        with self._cond:
            return len(self.datagrams)

    def close(self) -> None:
        """Stops collecting; what was still queued on the socket is collected first."""
        if self._sock.fileno() == -1:
            return
        self._closing.set()
        self._thread.join(timeout=5)
        self._sock.setblocking(False)
        while True:
            try:
                data = self._sock.recv(65536)
            except (BlockingIOError, OSError):
                break
            with self._cond:
                self.datagrams.append(data.decode())
        self._sock.close()
