"""A private sd_notify socket: how containerd tells us it is ready.

containerd speaks systemd's notify protocol: when `NOTIFY_SOCKET` names a unix
datagram socket, it sends `READY=1` once its gRPC server is serving and
`STOPPING=1` when it shuts down (containerd 1.6.20 from Debian does both). We
bind such a socket of our own in the agent's state directory, pass its path in
containerd's environment, and read what arrives.

A datagram is newline-separated `KEY=VALUE` assignments, read by the pure
`actors.containerd.core.notify.parse_notify`; `NotifySocket` does the I/O. Each
datagram carries the sender's pid (`SO_PASSCRED`), so the caller can ignore
datagrams that do not come from the containerd it started. The socket file is
mode 0600; a stale socket file at its path is replaced, but any other kind of file
there is refused.
"""

from __future__ import annotations

import os
import socket
import stat
import struct

from actors.containerd.core.notify import NotifyDatagram, NotifyError, parse_notify
from actors.wakeup import Wakeup, wait_readable

__all__ = ["MAX_SOCKET_PATH", "NotifySocket"]

#: Longest unix socket path Linux accepts, in bytes (`sun_path` minus its NUL).
MAX_SOCKET_PATH = 107

_MAX_DATAGRAM = 65536
_CREDS = struct.Struct("iII")  # struct ucred: pid, uid, gid


class NotifySocket:
    """A bound unix datagram socket for sd_notify, at `path`.

    `receive` blocks (in a helper thread) until a datagram arrives or a `Wakeup`
    is set. `close` removes the socket file.
    """

    def __init__(self, path: str) -> None:
        """Binds the socket at `path` with mode 0600.

        Raises:
            NotifyError: the path is too long for a unix socket, or a file that is not
                a socket is in the way, or binding fails.
        """
        if len(os.fsencode(path)) > MAX_SOCKET_PATH:
            raise NotifyError(
                f"notify socket path {path!r} is too long: "
                f"{len(os.fsencode(path))} bytes, at most {MAX_SOCKET_PATH}"
            )
        _remove_stale_socket(path)
        self.path = path
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        try:
            self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
            self._sock.bind(path)
            # not umask: it is process-wide and other threads may be creating files.
            # Until the chmod, a stranger could send us datagrams; they are told
            # apart by their sender pid anyway.
            os.chmod(path, 0o600)
        except OSError as e:
            self._sock.close()
            raise NotifyError(f"cannot bind notify socket {path!r}: {e}") from e

    def env(self) -> dict[str, str]:
        """The environment entry that points a service at this socket."""
        return {"NOTIFY_SOCKET": self.path}

    def receive(self, wakeup: Wakeup) -> NotifyDatagram | None:
        """Waits for the next datagram.

        Returns:
            The datagram, or None once `wakeup` is set.

        Raises:
            NotifyError: the datagram is malformed (the socket stays usable).
        """
        if not wait_readable(self._sock.fileno(), wakeup):
            return None
        data, ancdata, _flags, _addr = self._sock.recvmsg(
            _MAX_DATAGRAM, socket.CMSG_SPACE(_CREDS.size)
        )
        pid = 0
        for level, kind, payload in ancdata:
            if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                pid = _CREDS.unpack(payload[: _CREDS.size])[0]
        return NotifyDatagram(pid=pid, message=parse_notify(data))

    def close(self) -> None:
        """Closes the socket and removes its file."""
        self._sock.close()
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass


def _remove_stale_socket(path: str) -> None:
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(st.st_mode):
        raise NotifyError(f"notify socket path {path!r} exists and is not a socket")
    os.unlink(path)
