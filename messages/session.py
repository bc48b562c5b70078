"""Ordering rules of a child's stream, checked by the root.

A child's stream is: exactly one `Hello` first (with our protocol version and
the DN the root started it as), then any number of other messages, and at most
one `Exit`, after which nothing may follow. `ChildSession.accept` raises a
`ProtocolError` naming the DN and the rule broken; it is pure and cheap.
"""

from __future__ import annotations

from messages.errors import ProtocolError
from messages.wire import PROTOCOL_VERSION, Exit, Hello, Message

__all__ = ["ChildSession"]


class ChildSession:
    """Tracks where in its life a child's stream is."""

    __slots__ = ("dn", "greeted", "exited", "pid")

    def __init__(self, dn: str) -> None:
        self.dn = dn
        self.greeted = False
        self.exited = False
        self.pid: int | None = None

    def accept(self, msg: Message) -> None:
        """Check that `msg` may come now; raise ProtocolError if not."""
        if self.exited:
            raise ProtocolError(f"{self.dn}: {msg.TYPE} message after exit")
        if not self.greeted:
            if not isinstance(msg, Hello):
                raise ProtocolError(f"{self.dn}: first message is {msg.TYPE}, not hello")
            if msg.version != PROTOCOL_VERSION:
                raise ProtocolError(
                    f"{self.dn}: protocol version {msg.version} is not supported "
                    f"(this root speaks {PROTOCOL_VERSION})"
                )
            if msg.dn != self.dn:
                raise ProtocolError(f"{self.dn}: hello names dn {msg.dn!r}")
            self.greeted = True
            self.pid = msg.pid
            return
        if isinstance(msg, Hello):
            raise ProtocolError(f"{self.dn}: second hello message")
        if isinstance(msg, Exit):
            self.exited = True
