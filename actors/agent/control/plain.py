"""The control socket's plain side: one JSON request, one answer, for an instant CLI.

Why not gRPC for every command: a client must import `grpc` and the protobuf
runtime (about 50 ms on a small machine, twice a bare interpreter's start) before
it can say a word. `status`, `logs` without `-f`, `restart` and `import` ask one
question and get one answer, so they need no streams, no HTTP/2 and no schema
compiler: the agent serves them beside its gRPC socket on `<control.socket>.plain`
(`plain_server`), and this module, which imports only the standard library, is the
whole client. The gRPC service stays for `logs -f` and for programs that speak it.

Which agent: the one `actors.agent.locate` chooses (its one rule, for every
command); the plain socket is that agent's `control.socket` + `.plain`.

Wire: a frame is a 4-byte big-endian length and that many bytes of UTF-8 JSON. The
client sends one request frame `{"product": "node-containerd", "protocol": 1,
"op": "status" | "logs" | "restart" | "import", ...the command's options}` (at most
`MAX_REQUEST` bytes) and reads frames until the answer: `{"err_part": str}` frames
are written to stderr as they come (`import`'s progress line on a terminal), then
`{"product": ..., "code": int, "out": str, "err": str}` ends it (and `"unknown_op":
true` from an agent that does not know the op: the client then does it the old
way). The agent runs the command with the gRPC client's own rendering, so the
client only writes `out` to stdout and `err` to stderr and exits with `code`
(`actors.exit_codes.ExitCode`).

Rules:
    * The client falls back to gRPC (returns None) whenever the plain socket does not
      answer but the control socket does: an older agent, or a path too long for the
      `.plain` suffix. `import` falls back on any failure to get an answer (importing
      twice is harmless).
    * No control socket at all (missing, or nobody listens) is `NOT_RUNNING`, said
      with where the command looked, without loading anything else.
"""

from __future__ import annotations

import argparse
import json
import os
import struct
import sys
from typing import TYPE_CHECKING, Any

from actors.agent.control.probe import SocketState, connect_unix, probe_socket

if TYPE_CHECKING:
    import _socket
from actors.exit_codes import ExitCode

__all__ = [
    "IMPORT_OPTIONS",
    "MAX_FRAME",
    "MAX_REQUEST",
    "PLAIN_PROTOCOL",
    "PLAIN_SUFFIX",
    "PlainProtocolError",
    "plain_path",
    "read_frame",
    "run_command",
    "write_frame",
]

#: Appended to `control.socket` to name the plain socket.
PLAIN_SUFFIX = ".plain"
#: The version of this request/answer format.
PLAIN_PROTOCOL = 1
#: Largest answer frame in bytes (a full backlog of every node fits).
MAX_FRAME = 256 * 1024 * 1024
#: Largest request frame in bytes the agent reads; a longer one is refused unread.
MAX_REQUEST = 1024 * 1024
#: Seconds the client waits for the agent's answer (`import`: for each frame).
ANSWER_TIMEOUT = 30.0
#: The product both sides name; the same as `actors.agent.control.wire.PRODUCT`.
PRODUCT = "node-containerd"

#: The options of `import` sent as they are (besides `label`, a list of pairs).
IMPORT_OPTIONS = (
    "namespace",
    "files",
    "all_platforms",
    "platform",
    "skip_missing",
    "unpack",
    "snapshotter",
    "timeout",
)

_LENGTH = struct.Struct(">I")


class PlainProtocolError(Exception):
    """A frame is malformed, too large, or cut short."""


def plain_path(control_socket: str) -> str:
    """The plain socket beside a control socket."""
    return control_socket + PLAIN_SUFFIX


def write_frame(sock: _socket.socket, doc: dict[str, Any], limit: int = MAX_FRAME) -> None:
    """Sends one frame holding `doc` as JSON; raises `PlainProtocolError` over `limit` bytes."""
    data = json.dumps(doc).encode()
    if len(data) > limit:
        raise PlainProtocolError(f"frame of {len(data)} bytes exceeds {limit}")
    sock.sendall(_LENGTH.pack(len(data)) + data)


def read_frame(sock: _socket.socket, limit: int = MAX_FRAME) -> dict[str, Any]:
    """Reads one frame; raises `PlainProtocolError` if it is over `limit` bytes or not
    a JSON object, and `OSError` (e.g. `TimeoutError`) as the socket does."""
    (length,) = _LENGTH.unpack(_read_exactly(sock, _LENGTH.size))
    if length > limit:
        raise PlainProtocolError(f"frame of {length} bytes exceeds {limit}")
    try:
        doc = json.loads(_read_exactly(sock, length))
    except ValueError as e:  # also UnicodeDecodeError
        raise PlainProtocolError(f"frame is not JSON: {e}") from e
    if not isinstance(doc, dict):
        raise PlainProtocolError(f"frame is a {type(doc).__name__}, not an object")
    return doc


def _read_exactly(sock: _socket.socket, size: int) -> bytes:
    chunks, left = [], size
    while left:
        chunk = sock.recv(min(left, 1 << 20))
        if not chunk:
            raise PlainProtocolError(f"frame cut short: {left} of {size} bytes missing")
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def run_command(op: str, args: argparse.Namespace) -> int | None:
    """Runs `status`, `logs` (without `-f`), `restart` or `import` over the plain socket.

    Args:
        op: "status", "logs", "restart" or "import".
        args: the command's parsed options; `args.socket` is the agent's control
            socket and `args.where` where the command looked (`actors.agent.locate`).

    Returns:
        The exit code, or None when the gRPC client (or, for `import`, the local
        importer) must do it (see the rules).
    """
    if op == "logs" and getattr(args, "follow", False):
        return None
    control_socket: str = args.socket
    request = _request(op, args)
    answer: dict[str, Any] | None = None
    try:
        sock = connect_unix(plain_path(control_socket), ANSWER_TIMEOUT)
        try:
            if op == "import":
                sock.settimeout(None)  # containerd's calls have their own deadlines
            write_frame(sock, request)
            while answer is None:
                frame = read_frame(sock)
                if "err_part" in frame:
                    sys.stderr.write(str(frame["err_part"]))
                    sys.stderr.flush()
                else:
                    answer = frame
        finally:
            sock.close()
    except (OSError, PlainProtocolError):
        return None if op == "import" else _without_plain(args)
    if answer.get("unknown_op"):
        return None  # an older agent: the caller does it the old way
    if answer.get("product") != PRODUCT:
        if op == "import":
            return None
        print(f"{control_socket!r} is not a node-containerd control socket", file=sys.stderr)
        return ExitCode.NOT_OURS
    sys.stdout.write(str(answer.get("out", "")))
    sys.stdout.flush()
    sys.stderr.write(str(answer.get("err", "")))
    code = answer.get("code")
    return code if isinstance(code, int) else ExitCode.FAILURE


def _colour(as_json: bool) -> bool:
    """Colours for stdout: on a terminal, not with NO_COLOR, never in JSON."""
    return not as_json and sys.stdout.isatty() and not os.environ.get("NO_COLOR")


def _request(op: str, args: argparse.Namespace) -> dict[str, Any]:
    as_json = bool(getattr(args, "json", False))
    request: dict[str, Any] = {"product": PRODUCT, "protocol": PLAIN_PROTOCOL, "op": op}
    request.update(json=as_json, colour=_colour(as_json))
    if op in ("logs", "restart"):
        request["dn"] = getattr(args, "dn", None)
    if op == "import":
        request.update({key: getattr(args, key) for key in IMPORT_OPTIONS})
        # The agent runs elsewhere: paths as this shell means them.
        request["files"] = [os.path.abspath(f) for f in args.files]
        request["label"] = [list(pair) for pair in args.label]
        request["progress"] = _stderr_is_a_terminal()
    if op == "logs":
        severity = getattr(args, "severity", None)
        request.update(
            children=bool(getattr(args, "children", False)),
            lines=getattr(args, "lines", None),
            severity=None if severity is None else severity.name,
            since=getattr(args, "since", None),
            raw_only=bool(getattr(args, "raw_only", False)),
            leveled_only=bool(getattr(args, "leveled_only", False)),
            sandbox=getattr(args, "sandbox", None),
            container=getattr(args, "container", None),
        )
    return request


def _stderr_is_a_terminal() -> bool:
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


def _without_plain(args: argparse.Namespace) -> int | None:
    """No plain answer: NOT_RUNNING if nobody serves the control socket either, else None."""
    if probe_socket(args.socket) not in (SocketState.MISSING, SocketState.REFUSED):
        return None
    where = getattr(args, "where", None) or f"no control socket at {args.socket!r}"
    print(f"node-containerd is not running: {where}", file=sys.stderr)
    return ExitCode.NOT_RUNNING
