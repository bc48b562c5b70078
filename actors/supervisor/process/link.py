"""The child's end of the root <-> child stream.

`ChildLink` owns the inherited socket of a runnable's process. Any thread may
`send` (a lock keeps frames whole); one reader thread decodes what the root
sends and dispatches it: a cancel sets the context's cancellation, replies
complete the request that waits for them. If the root's end closes, the root
is gone and this process exits at once (nothing of ours may outlive the root).
"""

from __future__ import annotations

import os
import select
import socket
import threading
import time
from collections.abc import Callable
from typing import assert_never, cast

from messages.errors import ProtocolError
from messages.framing import FrameReader, encode_frame
from messages.wire import (
    ROOT_TO_CHILD,
    Cancel,
    Heartbeat,
    Message,
    RootMessage,
    RunGroupReply,
    Start,
    SubLoggerReply,
    decode,
)

__all__ = ["ChildLink", "LinkClosed"]

#: Exit status of a child whose root went away.
EXIT_ROOT_GONE = 75


class LinkClosed(Exception):
    """The root closed the stream."""


class ChildLink:
    """Frames to and from the root over one stream socket."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._send_lock = threading.Lock()
        self._reader = FrameReader()
        self._pending: dict[int, tuple[threading.Event, list[str | None]]] = {}
        self._pending_lock = threading.Lock()
        self._next_id = 1
        self._on_cancel: Callable[[str], None] | None = None
        self._early_cancel: str | None = None
        self._cancel_lock = threading.Lock()
        self._closed = False

    # ------------------------------------------------------------ sending

    def send(self, msg: Message) -> None:
        """Send one message; blocks if the root is slow (back-pressure)."""
        frame = encode_frame(msg.to_wire())
        with self._send_lock:
            if self._closed:
                raise LinkClosed("link to the root is closed")
            self._sock.sendall(frame)

    def send_wire(self, frame: bytes) -> None:
        """Send an already encoded frame (hot path of raw logs)."""
        with self._send_lock:
            if self._closed:
                raise LinkClosed("link to the root is closed")
            self._sock.sendall(frame)

    def request(self, make: Callable[[int], Message], timeout: float = 30.0) -> str | None:
        """Send a request built with a fresh id; wait for its reply's error field."""
        with self._pending_lock:
            rid = self._next_id
            self._next_id += 1
            waiter: tuple[threading.Event, list[str | None]] = (threading.Event(), [])
            self._pending[rid] = waiter
        self.send(make(rid))
        if not waiter[0].wait(timeout):
            with self._pending_lock:
                self._pending.pop(rid, None)
            raise TimeoutError(f"no reply from the supervisor within {timeout}s")
        return waiter[1][0]

    # ------------------------------------------------------------ receiving

    def set_cancel_handler(self, handler: Callable[[str], None]) -> None:
        """Deliver cancels to `handler`, including one that arrived before it was set.

        The root may send Cancel right behind Start (a sibling died while this
        process was starting); such a cancel is kept until the handler exists.
        """
        with self._cancel_lock:
            self._on_cancel = handler
            early, self._early_cancel = self._early_cancel, None
        if early is not None:
            handler(early)

    def read_start(self) -> Start:
        """Block until the root's Start message arrives (the first it sends)."""
        while True:
            data = self._sock.recv(65536)
            if not data:
                raise LinkClosed("root closed the link before sending start")
            frames = self._reader.feed(data)
            if frames:
                first = decode(frames[0], ROOT_TO_CHILD)
                if not isinstance(first, Start):
                    raise ProtocolError(f"first message from the root is {first.TYPE}, not start")
                for rest in frames[1:]:
                    self._dispatch(decode(rest, ROOT_TO_CHILD))
                return first

    def start_reader(
        self,
        heartbeat_interval: float | None = None,
        progressing: Callable[[], bool] | None = None,
    ) -> threading.Thread:
        """Read and dispatch the root's messages in a daemon thread.

        The same thread sends a Heartbeat every `heartbeat_interval` seconds (if
        set): one thread fewer per process, and a process whose interpreter is
        stopped or wedged stops both reading and beating. A beat is skipped while
        `progressing()` is False (the runnable's vouched work has stopped: see
        `api.vouch`), so a live thread alone never keeps a node HEALTHY.
        """
        t = threading.Thread(
            target=self._read_loop,
            args=(heartbeat_interval, progressing),
            name="nc-link",
            daemon=True,
        )
        t.start()
        return t

    def _read_loop(
        self, heartbeat_interval: float | None, progressing: Callable[[], bool] | None
    ) -> None:
        poller = select.poll()
        poller.register(self._sock.fileno(), select.POLLIN)
        seq = 0
        next_beat = time.monotonic() + heartbeat_interval if heartbeat_interval else None
        try:
            while True:
                if next_beat is not None:
                    left = next_beat - time.monotonic()
                    if left <= 0:
                        if progressing is None or progressing():
                            seq += 1
                            self.send(Heartbeat(seq=seq))
                        next_beat += heartbeat_interval or 0.0
                        continue
                    if not poller.poll(left * 1000):
                        continue
                data = self._sock.recv(65536)
                if not data:
                    break
                for frame in self._reader.feed(data):
                    self._dispatch(decode(frame, ROOT_TO_CHILD))
        except LinkClosed:
            return  # this process closed its end: it is exiting on its own
        except (OSError, ProtocolError):
            pass
        # The root is gone (or spoke nonsense): nothing of ours may outlive it.
        os._exit(EXIT_ROOT_GONE)

    def _dispatch(self, msg: Message) -> None:
        # decode(..., ROOT_TO_CHILD) only makes the RootMessage types.
        root_msg = cast("RootMessage", msg)
        match root_msg:
            case Cancel(reason=reason):
                with self._cancel_lock:
                    handler = self._on_cancel
                    if handler is None and self._early_cancel is None:
                        self._early_cancel = reason
                if handler is not None:
                    handler(reason)
            case RunGroupReply() | SubLoggerReply():
                with self._pending_lock:
                    waiter = self._pending.pop(root_msg.request_id, None)
                if waiter is not None:
                    waiter[1].append(root_msg.error)
                    waiter[0].set()
            case Start():
                raise ProtocolError(f"unexpected {root_msg.TYPE} message from the root")
            case _:
                assert_never(root_msg)

    def close(self) -> None:
        """Flush nothing more; shut the socket for writing."""
        with self._send_lock:
            self._closed = True
            try:
                self._sock.shutdown(socket.SHUT_WR)
            except OSError:
                pass
