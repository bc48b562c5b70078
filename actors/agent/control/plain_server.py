"""The agent's side of the plain control socket (`actors.agent.control.plain`).

`PlainServer` answers one JSON request per connection on `<control.socket>.plain`,
running the command as the gRPC service does and rendering it as the gRPC client
does: the service's own methods (`_Servicer.Status`, `Logs`, `Restart`, given a
context whose `abort` raises, so the same data and the same limits) and the
client's own renderers (`status_text`, `print_entry`, `restart_text`). `import` it
runs as `actors.preseed.cli.run_import` does, with the agent's grpc already loaded
and warm, into the agent's own containerd. So both sockets say the same thing, and
the CLI that asks over this one imports nothing but the standard library.

Rules:
    * The socket is mode 0600 from its first moment (bound in a private 0700
      directory, chmod-ed, renamed into place), like the gRPC one; a path something
      answers on, or that is not a socket, is refused (`ControlError`), a stale socket
      file is replaced. On `stop` the file is removed only if it is still ours.
    * A request is at most `MAX_REQUEST` bytes and must arrive within
      `REQUEST_TIMEOUT` seconds. A malformed request (bad length, not JSON, a field of
      the wrong type) gets an answer saying so (exit code USAGE); a client that says
      nothing, or too little, is dropped when the time is up. Nothing a client sends
      stops the server.
    * One thread per connection, at most `max_clients` at once; one more is answered
      "busy" at once (as gRPC's RESOURCE_EXHAUSTED) and closed.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import socket
import tempfile
import threading
from collections.abc import Callable
from typing import Any, NoReturn

import grpc

from actors.agent.control import client
from actors.agent.control.plain import (
    IMPORT_OPTIONS,
    MAX_REQUEST,
    PLAIN_PROTOCOL,
    PRODUCT,
    PlainProtocolError,
    read_frame,
    write_frame,
)
from actors.agent.control.probe import SocketState, probe_socket
from actors.exit_codes import ExitCode
from actors.logtree import Severity
from messages.control import control_pb2 as pb

__all__ = ["REQUEST_TIMEOUT", "PlainServer"]

#: Seconds a client has to send its whole request.
REQUEST_TIMEOUT = 5.0
#: Seconds an answer may take to be taken by the client.
ANSWER_TIMEOUT = 30.0


class _Aborted(Exception):
    """What `_PlainContext.abort` raises: the call failed with `details`."""

    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        super().__init__(details)
        self.code = code
        self.details = details


class _BadRequest(Exception):
    """A request field is missing or of the wrong type."""


class _PlainContext:
    """The part of `grpc.ServicerContext` the service's methods use."""

    def abort(self, code: grpc.StatusCode, details: str) -> NoReturn:
        raise _Aborted(code, details)

    def add_callback(self, callback: Any) -> bool:
        return True

    def cancel(self) -> None:
        """A backlog read is taken whole at once: nothing to cancel."""


class PlainServer:
    """Serves the plain control socket for a gRPC servicer.

    Args:
        path: the plain socket's path (`plain_path(control.socket)`).
        servicer: the control service (`actors.agent.control.server._Servicer`).
        containerd_address: the agent's containerd, for `import`; None: `import`
            is answered "unknown op" and the CLI imports by itself.
        max_clients: connections served at once.
    """

    def __init__(
        self,
        path: str,
        servicer: Any,
        *,
        containerd_address: str | None = None,
        max_clients: int = 32,
    ) -> None:
        self.path = path
        self._servicer = servicer
        self._containerd = containerd_address
        self._slots = threading.BoundedSemaphore(max_clients)
        self._max_clients = max_clients
        self._sock: socket.socket | None = None
        self._inode: tuple[int, int] | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Binds the socket (mode 0600, replacing a stale file) and starts accepting.

        Raises:
            ControlError: something answers on the path, or it is not a socket.
        """
        from actors.agent.control.server import ControlError

        match probe_socket(self.path):
            case SocketState.LISTENING:
                raise ControlError(f"control socket {self.path!r} is in use by another program")
            case SocketState.NOT_SOCKET:
                raise ControlError(f"control socket path {self.path!r} exists and is not a socket")
            case SocketState.DENIED:
                raise ControlError(f"control socket {self.path!r} exists and cannot be accessed")
            case _:
                pass
        private = tempfile.mkdtemp(prefix=".", dir=os.path.dirname(self.path))
        temp = os.path.join(private, "s")
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.bind(temp)
            os.chmod(temp, 0o600)
            sock.listen(16)
            os.rename(temp, self.path)
        except BaseException:
            sock.close()
            raise
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp)
            os.rmdir(private)
        st = os.stat(self.path)
        self._inode = (st.st_dev, st.st_ino)
        self._sock = sock
        self._thread = threading.Thread(
            target=self._accept, args=(sock,), name="nc-control-plain", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Stops accepting and removes the socket file if it is still ours."""
        sock, self._sock = self._sock, None
        if sock is None:
            return
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)  # wakes accept()
        sock.close()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
        inode, self._inode = self._inode, None
        with contextlib.suppress(OSError):
            st = os.stat(self.path)
            if (st.st_dev, st.st_ino) == inode:
                os.unlink(self.path)

    def _accept(self, sock: socket.socket) -> None:
        while True:
            try:
                conn, _ = sock.accept()
            except OSError:
                return  # stopped
            if not self._slots.acquire(blocking=False):
                self._refuse(conn)
                continue
            try:
                threading.Thread(
                    target=self._serve, args=(conn,), name="nc-control-plain-call", daemon=True
                ).start()
            except RuntimeError:  # no thread to be had: refuse, never stop accepting
                self._slots.release()
                self._refuse(conn)

    def _refuse(self, conn: socket.socket) -> None:
        with conn, contextlib.suppress(OSError):
            conn.settimeout(0.5)
            err = f"node-containerd refused the call: at most {self._max_clients} clients at once\n"
            write_frame(conn, _answer(ExitCode.FAILURE, "", err))

    def _serve(self, conn: socket.socket) -> None:
        try:
            with conn:
                conn.settimeout(REQUEST_TIMEOUT)
                try:
                    request = read_frame(conn, MAX_REQUEST)
                except PlainProtocolError as e:  # told, if the client still listens
                    answer = _answer(ExitCode.USAGE, "", f"cannot read the request: {e}\n")
                except OSError:
                    return  # silent past the timeout, or gone
                else:
                    conn.settimeout(ANSWER_TIMEOUT)
                    answer = self.answer(request, _parts(conn))
                with contextlib.suppress(OSError, PlainProtocolError):
                    write_frame(conn, answer)
        finally:
            self._slots.release()

    def answer(
        self, request: dict[str, Any], err_part: Callable[[str], None] | None = None
    ) -> dict[str, Any]:
        """The answer frame to one request frame; `err_part` sends stderr text early."""
        out, err = io.StringIO(), io.StringIO()
        op = request.get("op")
        try:
            if request.get("product") != PRODUCT or request.get("protocol") != PLAIN_PROTOCOL:
                return _answer(
                    ExitCode.USAGE,
                    "",
                    f"cannot answer: this agent speaks plain protocol {PLAIN_PROTOCOL} "
                    f"of {PRODUCT!r}\n",
                )
            match op:
                case "status":
                    self._status(request, out)
                case "logs":
                    self._logs(request, out)
                case "restart":
                    self._restart(request, out)
                case "import" if self._containerd is not None:
                    code = self._import(request, out, err, err_part)
                    return _answer(code, out.getvalue(), err.getvalue())
                case _:
                    answer = _answer(
                        ExitCode.USAGE, "", f"cannot run {op!r}: unknown to this agent\n"
                    )
                    return {**answer, "unknown_op": True}
        except _BadRequest as e:
            return _answer(ExitCode.USAGE, "", f"cannot run {op!r}: {e}\n")
        except _Aborted as e:
            return _answer(ExitCode.FAILURE, "", e.details + "\n")
        except Exception as e:  # noqa: BLE001 - told to the client, as gRPC would
            return _answer(ExitCode.FAILURE, "", f"cannot {op}: {e}\n")
        return _answer(ExitCode.OK, out.getvalue(), "")

    def _call(self, what: str, method: Any, *call_args: Any) -> Any:
        try:
            return method(*call_args, _PlainContext())
        except _Aborted as e:
            if not e.details.startswith("cannot "):
                e.details = f"cannot {what}: {e.details}"
            raise

    def _status(self, request: dict[str, Any], out: io.StringIO) -> None:
        reply = self._call("status", self._servicer.Status, pb.StatusRequest())
        as_json, colour = _field(request, "json", _BOOL), _field(request, "colour", _BOOL)
        out.write(client.status_text(reply, as_json=as_json, colour=colour))

    def _logs(self, request: dict[str, Any], out: io.StringIO) -> None:
        severity = _field(request, "severity", (str, _NONE), None)
        if severity is not None and severity not in Severity.__members__:
            raise _BadRequest(f"field 'severity' is {severity!r}, not a severity")
        lines = _field(request, "lines", (int, str, _NONE), None)
        if not (lines is None or lines == "all" or (isinstance(lines, int) and lines >= 0)):
            raise _BadRequest(f"field 'lines' is {lines!r}, not a count")
        since = _field(request, "since", (int, float, _NONE), None)
        args = argparse.Namespace(
            dn=_field(request, "dn", (str, _NONE), None),
            follow=False,
            children=_field(request, "children", _BOOL),
            lines=lines,
            severity=None if severity is None else Severity[severity],
            since=None if since is None else float(since),
            raw_only=_field(request, "raw_only", _BOOL),
            leveled_only=_field(request, "leveled_only", _BOOL),
            sandbox=_field(request, "sandbox", (str, _NONE), None),
            container=_field(request, "container", (str, _NONE), None),
        )
        logs_request = client.logs_request(args)
        what = f"read the logs of {logs_request.dn or 'root'!r}"
        messages = self._call(what, lambda r, c: list(self._servicer.Logs(r, c)), logs_request)
        as_json = _field(request, "json", _BOOL)
        colour = _field(request, "colour", _BOOL) and not as_json
        for msg in messages:
            client.print_entry(msg, as_json, out, colour)

    def _restart(self, request: dict[str, Any], out: io.StringIO) -> None:
        dn = _field(request, "dn", (str,))
        reply = self._call(f"restart {dn!r}", self._servicer.Restart, pb.RestartRequest(dn=dn))
        out.write(client.restart_text(dn, reply))

    def _import(
        self,
        request: dict[str, Any],
        out: io.StringIO,
        err: io.StringIO,
        err_part: Callable[[str], None] | None,
    ) -> int:
        from actors.preseed.cli import run_import

        files = _field(request, "files", (list,))
        if not files or not all(isinstance(f, str) and os.path.isabs(f) for f in files):
            raise _BadRequest("field 'files' must be a list of absolute paths")
        labels = _field(request, "label", (list,), [])
        if not all(_is_pair(p) for p in labels):
            raise _BadRequest("field 'label' must be a list of [key, value] pairs")
        values = {
            key: _field(request, key, _IMPORT_TYPES[key])
            for key in IMPORT_OPTIONS
            if key != "files"
        }
        args = argparse.Namespace(
            **values,
            files=files,
            label=[tuple(p) for p in labels],
            json=_field(request, "json", _BOOL),
            address=self._containerd,
        )
        progress = _field(request, "progress", _BOOL) and err_part is not None
        stream = _PartStream(err_part) if progress and err_part is not None else err
        code = run_import(args, out, stream)
        if stream is not err:
            err.write(stream.getvalue())
        return code


class _PartStream(io.StringIO):
    """A terminal's stderr at the client: progress lines go out at once, the rest at the end.

    `actors.preseed.progress.TerminalProgress` draws on a stream that `isatty`; its
    redraws (`\\r...`) are sent as `err_part` frames as they come, everything else is
    kept for the answer's `err`. Written from the importer's threads.
    """

    def __init__(self, send: Callable[[str], None]) -> None:
        super().__init__()
        self._send = send
        self._lock = threading.Lock()

    def isatty(self) -> bool:
        return True

    def write(self, text: str) -> int:
        if text.startswith("\r"):
            with self._lock, contextlib.suppress(OSError, PlainProtocolError):
                self._send(text)
            return len(text)
        return super().write(text)


def _parts(conn: socket.socket) -> Callable[[str], None]:
    def send(text: str) -> None:
        write_frame(conn, {"err_part": text})

    return send


def _answer(code: int, out: str, err: str) -> dict[str, Any]:
    return {"product": PRODUCT, "code": int(code), "out": out, "err": err}


_MISSING = object()
_NONE = type(None)
_BOOL = (bool,)

#: The JSON types of `import`'s options besides `files` and `label`.
_IMPORT_TYPES: dict[str, tuple[type, ...]] = {
    "namespace": (str,),
    "all_platforms": _BOOL,
    "platform": (str, _NONE),
    "skip_missing": _BOOL,
    "unpack": _BOOL,
    "snapshotter": (str,),
    "timeout": (int, float),
}


def _is_pair(value: object) -> bool:
    return isinstance(value, list) and len(value) == 2 and all(isinstance(x, str) for x in value)


def _field(
    request: dict[str, Any], key: str, kinds: tuple[type, ...], default: Any = _MISSING
) -> Any:
    """`request[key]`, of one of the JSON types `kinds`; `default` when absent (a bool
    field is False when absent)."""
    if key not in request:
        if default is _MISSING and kinds != (bool,):
            raise _BadRequest(f"field {key!r} is missing")
        return False if default is _MISSING else default
    value = request[key]
    if type(value) not in kinds:
        raise _BadRequest(f"field {key!r} is {value!r}, not of the right type")
    return value
