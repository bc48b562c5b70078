"""What containerd says on its notify socket, as values. Pure.

A datagram of systemd's notify protocol is newline-separated `KEY=VALUE`
assignments (`READY=1`, `STOPPING=1`, `STATUS=…`, `MAINPID=…`, `ERRNO=…`).
`parse_notify` reads one into a `NotifyMessage`; a `NotifyDatagram` is one with
the sender's pid, as `actors.containerd.notify_socket.NotifySocket` receives it and
`lifecycle` consumes it.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["NotifyDatagram", "NotifyError", "NotifyMessage", "parse_notify"]


class NotifyError(Exception):
    """A notify datagram is malformed, or the notify socket cannot be set up."""


@dataclass(frozen=True, slots=True, kw_only=True)
class NotifyMessage:
    """One parsed sd_notify datagram."""

    #: `READY=1` was present: the service finished starting up.
    ready: bool = False
    #: `STOPPING=1` was present: the service is shutting down.
    stopping: bool = False
    #: `RELOADING=1` was present.
    reloading: bool = False
    #: The free-form `STATUS=` text, if any.
    status: str | None = None
    #: The `MAINPID=` the sender claims, if any.
    main_pid: int | None = None
    #: The `ERRNO=` failure code, if any.
    errno: int | None = None
    #: Every assignment in order, unknown ones included.
    fields: tuple[tuple[str, str], ...] = ()

    def describe(self) -> str:
        """The datagram as one log-friendly line: `READY=1 STATUS='...'`."""
        return " ".join(f"{k}={v!r}" if k == "STATUS" else f"{k}={v}" for k, v in self.fields)


@dataclass(frozen=True, slots=True, kw_only=True)
class NotifyDatagram:
    """A datagram received on the notify socket."""

    #: The sender's pid, from its kernel-checked credentials (0 if none came).
    pid: int
    #: The parsed content.
    message: NotifyMessage


def parse_notify(data: bytes) -> NotifyMessage:
    """Parses one sd_notify datagram.

    Args:
        data: the datagram: `KEY=VALUE` lines separated by `\\n`; empty lines are
            skipped.

    Returns:
        The message.

    Raises:
        NotifyError: the datagram is not UTF-8, a line has no `=`, a key is empty,
            or `MAINPID`/`ERRNO` is not a number.
    """
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise NotifyError(f"notify datagram {data[:64]!r} is invalid: not utf-8") from e
    fields: list[tuple[str, str]] = []
    for line in text.split("\n"):
        if not line:
            continue
        key, sep, value = line.partition("=")
        if not sep or not key:
            raise NotifyError(f"notify datagram line {line!r} is invalid: expected KEY=VALUE")
        fields.append((key, value))
    values = dict(fields)  # the last assignment of a key wins, as in systemd
    return NotifyMessage(
        ready=values.get("READY") == "1",
        stopping=values.get("STOPPING") == "1",
        reloading=values.get("RELOADING") == "1",
        status=values.get("STATUS"),
        main_pid=_number(values, "MAINPID"),
        errno=_number(values, "ERRNO"),
        fields=tuple(fields),
    )


def _number(values: dict[str, str], key: str) -> int | None:
    if key not in values:
        return None
    try:
        return int(values[key])
    except ValueError as e:
        raise NotifyError(
            f"notify datagram field {key}={values[key]!r} is invalid: not a number"
        ) from e
