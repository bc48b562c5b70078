"""Who listens on a unix socket path, found with one plain `connect`: standard library only.

The gRPC client and server (`actors.agent.control.wire` re-exports these), the
registry of running agents and the plain control socket's client all ask it
before they speak, so it imports neither grpc nor anything of the agent: the
CLI's fast path (`actors.agent.control.plain`) stands on it.

It speaks to the standard library's C socket module (`_socket`) itself: the
`socket` module around it builds its enums when imported, which costs a tenth of a
bare interpreter's start, and a client that only connects, sends and receives
needs none of it (`socket.socket` is a subclass: the agent's side passes those).
"""

from __future__ import annotations

import _socket
import enum
import os
import stat

__all__ = ["SocketState", "connect_unix", "probe_socket"]


class SocketState(enum.Enum):
    """What `probe_socket` found at a path."""

    #: Nothing at the path.
    MISSING = "missing"
    #: A file that is not a unix socket.
    NOT_SOCKET = "not-socket"
    #: A socket file nobody listens on (stale).
    REFUSED = "refused"
    #: A socket this user may not connect to.
    DENIED = "denied"
    #: A socket something accepts connections on.
    LISTENING = "listening"


def probe_socket(path: str | os.PathLike[str], timeout: float = 2.0) -> SocketState:
    """Finds out, with one plain connect, whether anything listens on `path`.

    Returns:
        What is at the path.
    """
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return SocketState.MISSING
    except PermissionError:
        return SocketState.DENIED
    if not stat.S_ISSOCK(mode):
        return SocketState.NOT_SOCKET
    try:
        connect_unix(os.fspath(path), timeout).close()
    except (ConnectionRefusedError, FileNotFoundError):
        return SocketState.REFUSED
    except PermissionError:
        return SocketState.DENIED
    except TimeoutError:  # the backlog is full: someone listens but is stuck
        return SocketState.LISTENING
    return SocketState.LISTENING


def connect_unix(path: str, timeout: float | None) -> _socket.socket:
    """A unix stream socket connected to `path`, with `timeout` (seconds) on each call.

    Raises:
        OSError: as `connect` does (e.g. `ConnectionRefusedError`, `TimeoutError`).
    """
    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    try:
        sock.settimeout(timeout)
        sock.connect(path)
    except BaseException:
        sock.close()
        raise
    return sock
