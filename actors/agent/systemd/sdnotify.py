"""The sending side of systemd's notify protocol: `NOTIFY_SOCKET` and `WATCHDOG_USEC`.

A service started with `Type=notify` finds in `NOTIFY_SOCKET` the address of a
unix datagram socket and sends it datagrams of newline-separated `KEY=VALUE`
assignments: `READY=1` when it has started, `STATUS=...` for humans,
`STOPPING=1` when it begins to shut down, `WATCHDOG=1` as a keep-alive. This is
our own small client of that protocol (no libsystemd binding).

Rules:
    * An address starting with `/` is a socket file; one starting with `@` is in
      the abstract namespace (the `@` stands for a leading NUL byte). Anything else
      (e.g. `vsock:`) is refused with `NotifyUnsupported`.
    * `NotifySender.send` never blocks: the socket is non-blocking, and a datagram the
      receiver cannot take now fails with `OSError` (`EAGAIN`) for the caller to
      report. systemd's receive buffer is large; this happens only if it is wedged.
    * `watchdog_interval` applies `sd_watchdog_enabled`'s rules: `WATCHDOG_USEC` is
      a positive integer of microseconds, and `WATCHDOG_PID`, when set, must be us.
    * `take_environment` removes the variables from the environment, as
      `sd_notify(unset_environment=1)` does, so the processes the agent starts
      (runnables, containerd) do not inherit them and speak to systemd in our name.
"""

from __future__ import annotations

import socket
from collections.abc import MutableMapping
from dataclasses import dataclass

__all__ = [
    "NOTIFY_VARIABLES",
    "NotifyEnvironment",
    "NotifySender",
    "NotifyUnsupported",
    "socket_address",
    "take_environment",
    "watchdog_interval",
]

#: The variables of the protocol that `take_environment` reads and removes.
NOTIFY_VARIABLES = ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID")


class NotifyUnsupported(ValueError):
    """`NOTIFY_SOCKET` or `WATCHDOG_USEC` holds a value this client cannot use."""


@dataclass(frozen=True, slots=True, kw_only=True)
class NotifyEnvironment:
    """What systemd told the service through its environment."""

    #: `NOTIFY_SOCKET`, or None when the service is not `Type=notify`.
    socket: str | None
    #: Seconds between the watchdog's deadlines (`WATCHDOG_USEC` / 1e6), or None when the watchdog
    #: is off or meant for another process.
    watchdog: float | None


def socket_address(value: str) -> str | bytes:
    """The address to `sendto` for a `NOTIFY_SOCKET` value.

    Raises:
        NotifyUnsupported: the value is neither a path nor an abstract `@name`.
    """
    if value.startswith("/"):
        return value
    if value.startswith("@") and len(value) > 1:
        return b"\0" + value[1:].encode()
    raise NotifyUnsupported(
        f"NOTIFY_SOCKET {value!r} is not supported: expected an absolute path or @abstract name"
    )


def watchdog_interval(usec: str | None, pid_text: str | None, pid: int) -> float | None:
    """Seconds of the watchdog from `WATCHDOG_USEC`, if it is on and meant for `pid`.

    Raises:
        NotifyUnsupported: `WATCHDOG_USEC` or `WATCHDOG_PID` is not a positive integer.
    """
    if not usec:
        return None
    if not usec.isdigit() or int(usec) == 0:
        raise NotifyUnsupported(f"WATCHDOG_USEC {usec!r} is invalid: expected microseconds > 0")
    if pid_text:
        if not pid_text.isdigit() or int(pid_text) == 0:
            raise NotifyUnsupported(f"WATCHDOG_PID {pid_text!r} is invalid: expected a pid")
        if int(pid_text) != pid:
            return None
    return int(usec) / 1e6


def take_environment(environ: MutableMapping[str, str], pid: int) -> NotifyEnvironment:
    """Reads the protocol's variables for process `pid` and removes them from `environ`.

    Raises:
        NotifyUnsupported: a variable holds a value this client cannot use (they are
            removed all the same).
    """
    values = {name: environ.pop(name, None) for name in NOTIFY_VARIABLES}
    notify = values["NOTIFY_SOCKET"] or None
    if notify is not None:
        socket_address(notify)
    watchdog = watchdog_interval(values["WATCHDOG_USEC"], values["WATCHDOG_PID"], pid)
    return NotifyEnvironment(socket=notify, watchdog=watchdog if notify else None)


class NotifySender:
    """A non-blocking unix datagram socket that sends to systemd's notify socket.

    Args:
        notify_socket: the `NOTIFY_SOCKET` value (path or `@abstract`).

    Raises:
        NotifyUnsupported: the address cannot be used.
    """

    def __init__(self, notify_socket: str) -> None:
        self.notify_socket = notify_socket
        self._address = socket_address(notify_socket)
        self._sock = socket.socket(
            socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC | socket.SOCK_NONBLOCK
        )

    def send(self, *assignments: str) -> None:
        """Sends one datagram of `KEY=VALUE` assignments, e.g. `send("READY=1")`.

        A `STATUS=` value is kept to its first line (the protocol is line-based).

        Raises:
            OSError: the datagram was not delivered (no listener, a full buffer).
        """
        lines = [a.split("\n", 1)[0] for a in assignments]
        self._sock.sendto("\n".join(lines).encode("utf-8", "backslashreplace"), self._address)

    def close(self) -> None:
        """Closes the socket."""
        self._sock.close()
