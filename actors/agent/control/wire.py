"""What crosses the control socket, and who is on the other side of one.

Shared by the server (`actors.agent.control.server`) and the CLI (`actors.agent.control.client`):

* the agent's identity on the socket: `PRODUCT` and `PROTOCOL_VERSION`, as `Hello`
  answers them; a client trusts no other;
* `probe_socket`: one plain `connect` that tells "nothing there" and "a stale file
  nobody listens on" from "someone listens", before any gRPC is spoken;
* conversions between log tree entries or supervisor node statuses and their messages
  (`messages/control/control.proto`).

Rules:
    * Times on the wire are wall-clock seconds since the epoch; the supervisor's
      monotonic `since` is converted with one offset per reply, taken by the server.
    * Conversions never raise on what the log tree stores; a leveled entry read back
      from the wire has at least one line.
"""

from __future__ import annotations

import os
from typing import Any, Protocol, cast

import grpc
from google.protobuf import json_format, struct_pb2  # type: ignore[import-untyped]

from actors.agent.control.probe import SocketState, probe_socket
from actors.logtree import Entry, LeveledEntry, ParsedEntry, RawEntry, Severity
from actors.supervisor.core.states import NodeState
from messages.control import control_pb2 as pb
from messages.control import control_pb2_grpc as pb_grpc

__all__ = [
    "PRODUCT",
    "PROTOCOL_VERSION",
    "NodeStatusLike",
    "SocketState",
    "agent_version",
    "channel_target",
    "entry_from_proto",
    "entry_to_proto",
    "facts_from_proto",
    "hello",
    "probe_socket",
    "status_to_proto",
]

#: What `Hello` answers as `product`; a client trusts no other.
PRODUCT = "node-containerd"
#: The protocol version of `control.proto` this module speaks.
PROTOCOL_VERSION = 1


class NodeStatusLike(Protocol):
    """What the server reads of a node's status (`actors.supervisor.core.tree.NodeStatus`)."""

    @property
    def dn(self) -> str: ...
    @property
    def state(self) -> NodeState: ...
    @property
    def generation(self) -> int: ...
    @property
    def pid(self) -> int | None: ...
    @property
    def restarts(self) -> int: ...
    @property
    def last_error(self) -> str | None: ...
    @property
    def since(self) -> float: ...


def agent_version() -> str:
    """The agent's version, as `node-containerd --version` prints it."""
    from actors.agent import __version__

    return __version__


def channel_target(path: str | os.PathLike[str]) -> str:
    """The gRPC target of a unix socket path."""
    return "unix:" + os.path.abspath(os.fspath(path))


def hello(channel: grpc.Channel, timeout: float) -> pb.HelloReply:
    """Calls Hello; raises `grpc.RpcError` as the call does."""
    stub = pb_grpc.ControlStub(channel)
    reply: pb.HelloReply = stub.Hello(
        pb.HelloRequest(client_version=agent_version(), protocol=PROTOCOL_VERSION),
        timeout=timeout,
    )
    return reply


# ---------------------------------------------------------------- conversions


def entry_to_proto(entry: Entry) -> pb.LogEntry:
    """Builds the wire form of a log tree entry (`missed` left 0)."""
    if isinstance(entry, RawEntry):
        return pb.LogEntry(
            seq=entry.seq,
            dn=entry.dn,
            kind=pb.ENTRY_KIND_RAW,
            time=entry.timestamp,
            data=entry.data,
            original_length=entry.original_length,
            fields=entry.fields or {},
            field_order=list(entry.fields or ()),
        )
    msg = pb.LogEntry(
        seq=entry.seq,
        dn=entry.dn,
        kind=pb.ENTRY_KIND_LEVELED,
        time=entry.timestamp,
        severity=cast("pb.Severity", entry.severity.proto),
        file=entry.file,
        line=entry.line,
        lines=list(entry.lines),
        pid=entry.pid,
        fields=entry.fields or {},
        field_order=list(entry.fields or ()),
    )
    if isinstance(entry, ParsedEntry):
        msg.head = entry.head
        msg.more = entry.more
        msg.text = entry.text
        msg.original_length = entry.original_length
    return msg


def _fields(msg: pb.LogEntry) -> dict[str, str] | None:
    """The entry's fields in the line's order (`field_order`): a protobuf map has no order
    of its own (its iteration order changes with the process's hash seed). Keys it does
    not name (an agent from before it) follow, sorted."""
    if not msg.fields:
        return None
    got = msg.fields
    ordered = {k: got[k] for k in msg.field_order if k in got}
    for k in sorted(got):
        ordered.setdefault(k, got[k])
    return ordered


def entry_from_proto(msg: pb.LogEntry) -> Entry:
    """Rebuilds a log tree entry from its wire form (for formatting on the client).

    Raises:
        InvalidSeverity: the severity number is unknown.
    """
    if msg.kind == pb.ENTRY_KIND_RAW:
        return RawEntry(msg.seq, msg.dn, msg.data, msg.original_length, msg.time, _fields(msg))
    severity = Severity.from_proto(msg.severity)
    fields = _fields(msg)
    if msg.head:
        return ParsedEntry(
            msg.seq,
            msg.dn,
            severity,
            msg.time,
            msg.file,
            msg.line,
            msg.pid,
            msg.text,
            fields,
            msg.head,
            msg.original_length,
            msg.more,
        )
    return LeveledEntry(
        dn=msg.dn,
        severity=severity,
        lines=tuple(msg.lines) or ("",),
        timestamp=msg.time,
        file=msg.file,
        line=msg.line,
        seq=msg.seq,
        pid=msg.pid,
        fields=fields,
    )


def status_to_proto(node: NodeStatusLike, wall_minus_mono: float) -> pb.NodeStatus:
    """Builds the wire form of a node status.

    Args:
        node: the status, `since` (and `restart_at` if it has one) in monotonic seconds.
        wall_minus_mono: wall-clock time minus monotonic time, taken once per reply.
    """
    msg = pb.NodeStatus(
        dn=node.dn,
        state=pb.NodeState.Value(node.state.value),
        restarts=node.restarts,
        since=node.since + wall_minus_mono,
        generation=node.generation,
    )
    if node.pid is not None:
        msg.pid = node.pid
    if node.last_error is not None:
        msg.last_error = node.last_error
    restart_at = getattr(node, "restart_at", None)
    if restart_at is not None:
        msg.restart_at = restart_at + wall_minus_mono
    for key, value in sorted(getattr(node, "facts", {}).items()):
        msg.facts[key].CopyFrom(json_format.ParseDict(value, struct_pb2.Value()))
    return msg


def facts_from_proto(node: pb.NodeStatus) -> dict[str, Any]:
    """A node's facts as JSON values, by name (a whole number reads back as a float)."""
    return {key: json_format.MessageToDict(node.facts[key]) for key in sorted(node.facts)}
