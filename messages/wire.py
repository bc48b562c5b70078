"""The messages between the root and a runnable's process, and their codec.

Every message is a frozen dataclass with a wire tag `TYPE`, validated in
`__post_init__`, with explicit `to_wire()` (a plain map with a `"type"` key)
and `from_wire()` (which rejects unknown, missing or mistyped fields with a
`ProtocolError` naming the message type and the field). `decode(map)` picks the
class by its tag. Framing lives in `messages.framing`; ordering rules in
`messages.session`.

Child -> root: Hello, SignalMsg, RunGroupRequest, SubLoggerRequest, LogEntry,
RawChunk, ParsedBatch, Exit, Heartbeat, MetricAdd, FactReport.  Root -> child: Start,
Cancel, RunGroupReply, SubLoggerReply.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from itertools import chain
from types import MappingProxyType
from typing import Any, ClassVar, get_args

from actors.logtree.parse.line import ParseFormat
from actors.supervisor.core.severity import SEVERITY_NAMES, Severity
from actors.supervisor.core.states import ExitKind, Signal
from messages.attribution import check_attribution_columns
from messages.errors import ProtocolError
from messages.fact_values import FACT_KEY, MAX_FACT_SIZE, fact_size
from messages.field_checks import check_field as _check

__all__ = [
    "PROTOCOL_VERSION",
    "EXIT_RESULTS",
    "EXIT_KIND_WIRE",
    "SIGNALS",
    "SIGNAL_WIRE",
    "Message",
    "Hello",
    "SignalMsg",
    "RunGroupRequest",
    "ChildSpec",
    "SubLoggerRequest",
    "LogEntry",
    "RawChunk",
    "ParsedBatch",
    "Exit",
    "Heartbeat",
    "METRIC_KINDS",
    "MetricAdd",
    "FactReport",
    "MAX_FACT_SIZE",
    "Start",
    "Cancel",
    "RunGroupReply",
    "SubLoggerReply",
    "decode",
    "CHILD_TO_ROOT",
    "ROOT_TO_CHILD",
    "ChildMessage",
    "RootMessage",
]

#: Bumped on any incompatible change; the root refuses a child speaking another.
PROTOCOL_VERSION = 1
#: How a node's raw lines are parsed, as the `ParseFormat` value ("glog").
PARSE_FORMATS = frozenset(f.value for f in ParseFormat)

#: The one mapping between the core's signals and their spelling on the wire.
SIGNAL_WIRE: Mapping[Signal, str] = MappingProxyType(
    {Signal.HEALTHY: "healthy", Signal.DONE: "done"}
)
#: The one mapping between the exit kinds a runnable reports and their spelling
#: on the wire. CRASHED is not here: the root concludes it, no runnable says it.
EXIT_KIND_WIRE: Mapping[ExitKind, str] = MappingProxyType(
    {ExitKind.OK: "ok", ExitKind.CANCELED: "canceled", ExitKind.ERROR: "error"}
)
#: The wire strings of `SignalMsg.signal`.
SIGNALS = tuple(SIGNAL_WIRE.values())
#: The wire strings of `Exit.result`.
EXIT_RESULTS = tuple(EXIT_KIND_WIRE.values())
#: The wire strings of `MetricAdd.kind`: a counter's increment, a histogram's observation.
METRIC_KINDS = ("counter", "histogram")
_SIGNAL_OF = {text: sig for sig, text in SIGNAL_WIRE.items()}
_EXIT_KIND_OF = {text: kind for kind, text in EXIT_KIND_WIRE.items()}


class Message:
    """Base of all wire messages."""

    TYPE: ClassVar[str] = ""

    def to_wire(self) -> dict[str, Any]:
        """This message as a plain map, ready for msgpack."""
        d: dict[str, Any] = {"type": self.TYPE}
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            d[f.name] = getattr(self, f.name)
        return d

    @classmethod
    def from_wire(cls, obj: Mapping[str, Any]) -> Message:
        """Build and validate from a decoded map (its "type" already matched)."""
        return _build(cls, obj)


def _build(cls: type[Message], obj: Mapping[str, Any]) -> Message:
    """Construct `cls` from `obj`, rejecting unknown and missing fields."""
    fields = dataclasses.fields(cls)  # type: ignore[arg-type]
    names = {f.name for f in fields}
    extra = sorted(k for k in obj if k != "type" and k not in names)
    if extra:
        raise ProtocolError(f"{cls.TYPE} message: unknown field {extra[0]!r}")
    kwargs = {}
    for f in fields:
        if f.name in obj:
            kwargs[f.name] = obj[f.name]
        elif f.default is dataclasses.MISSING:
            raise ProtocolError(f"{cls.TYPE} message: missing field {f.name!r}")
    return cls(**kwargs)


_FROZEN = dict(frozen=True, slots=True, kw_only=True)


# ------------------------------------------------------------ child -> root


@dataclass(**_FROZEN)
class Hello(Message):
    """First frame of a child: who it is. Anything else first is an error."""

    TYPE: ClassVar[str] = "hello"
    #: The protocol version the child speaks.
    version: int
    #: The DN the child was started as (must match what the root started).
    dn: str
    #: The child's process id.
    pid: int

    def __post_init__(self) -> None:
        _check("hello message", "version", self.version, int)
        _check("hello message", "dn", self.dn, str)
        _check("hello message", "pid", self.pid, int)


@dataclass(**_FROZEN)
class SignalMsg(Message):
    """The runnable signals HEALTHY or DONE."""

    TYPE: ClassVar[str] = "signal"
    #: The signal's wire string, one of `SIGNALS`.
    signal: str

    def __post_init__(self) -> None:
        _check("signal message", "signal", self.signal, str)
        if self.signal not in SIGNALS:
            raise ProtocolError(f"signal message: unknown signal {self.signal!r}")

    @classmethod
    def of(cls, signal: Signal) -> SignalMsg:
        """The message that carries `signal`."""
        return cls(signal=SIGNAL_WIRE[signal])

    @property
    def kind(self) -> Signal:
        """The signal this message carries."""
        return _SIGNAL_OF[self.signal]


@dataclass(**_FROZEN)
class ChildSpec(Message):
    """One child of a run-group request: its name and what to run."""

    TYPE: ClassVar[str] = "child"
    name: str
    target: str
    args: dict[str, Any]

    def __post_init__(self) -> None:
        _check("run_group message", "name", self.name, str)
        _check("run_group message", "target", self.target, str)
        _check("run_group message", "args", self.args, dict)
        for k in self.args:
            _check("run_group message", "args key", k, str)


@dataclass(**_FROZEN)
class RunGroupRequest(Message):
    """Start `children` under the sender's node, as one group."""

    TYPE: ClassVar[str] = "run_group"
    request_id: int
    children: list[ChildSpec]

    def __post_init__(self) -> None:
        _check("run_group message", "request_id", self.request_id, int)
        _check("run_group message", "children", self.children, (list, tuple))
        if not self.children:
            raise ProtocolError("run_group message: field 'children' is empty")

    def to_wire(self) -> dict[str, Any]:
        return {
            "type": self.TYPE,
            "request_id": self.request_id,
            "children": [
                {"name": c.name, "target": c.target, "args": c.args} for c in self.children
            ],
        }

    @classmethod
    def from_wire(cls, obj: Mapping[str, Any]) -> RunGroupRequest:
        children = obj.get("children")
        if not isinstance(children, list):
            raise ProtocolError("run_group message: field 'children' must be list")
        parsed = []
        for c in children:
            if not isinstance(c, dict):
                raise ProtocolError("run_group message: a child must be a map")
            parsed.append(ChildSpec.from_wire(c))
        rest = {k: v for k, v in obj.items() if k != "children"}
        rest["children"] = parsed
        return _build(cls, rest)  # type: ignore[return-value]


@dataclass(**_FROZEN)
class SubLoggerRequest(Message):
    """Reserve sub-logger `name` (DN `<node>.<name>`)."""

    TYPE: ClassVar[str] = "sub_logger"
    request_id: int
    name: str

    def __post_init__(self) -> None:
        _check("sub_logger message", "request_id", self.request_id, int)
        _check("sub_logger message", "name", self.name, str)


@dataclass(**_FROZEN)
class LogEntry(Message):
    """One leveled log entry; `message` may hold several lines, kept atomic.

    The severity travels as its name (`"INFO"`, one of `SEVERITY_NAMES`).
    """

    TYPE: ClassVar[str] = "log"
    #: How severe the entry is.
    severity: Severity
    message: str
    #: Source file (base name) and line of the logging call.
    file: str
    line: int
    #: Wall-clock time of the call, seconds since the epoch.
    time: float
    #: A reserved sub-logger name, or None for the node's own DN.
    sub: str | None = None

    def __post_init__(self) -> None:
        _check("log message", "severity", self.severity, Severity)
        _check("log message", "message", self.message, str)
        _check("log message", "file", self.file, str)
        _check("log message", "line", self.line, int)
        _check("log message", "time", self.time, (int, float))
        _check("log message", "sub", self.sub, str, optional=True)

    def to_wire(self) -> dict[str, Any]:
        wire = Message.to_wire(self)
        wire["severity"] = self.severity.name
        return wire

    @classmethod
    def from_wire(cls, obj: Mapping[str, Any]) -> LogEntry:
        name = obj.get("severity")
        if isinstance(name, str):
            if name not in SEVERITY_NAMES:
                raise ProtocolError(f"log message: unknown severity {name!r}")
            obj = {**obj, "severity": Severity[name]}
        elif "severity" in obj:
            _check("log message", "severity", name, str)
        return _build(cls, obj)  # type: ignore[return-value]


@dataclass(**_FROZEN)
class RawChunk(Message):
    """Raw log bytes, any number of lines (the root splits them)."""

    TYPE: ClassVar[str] = "raw"
    data: bytes
    sub: str | None = None

    def __post_init__(self) -> None:
        _check("raw message", "data", self.data, bytes)
        _check("raw message", "sub", self.sub, str, optional=True)


_PARSED_COLUMNS: tuple[tuple[str, frozenset[type]], ...] = (
    ("texts", frozenset({str})),
    ("fields", frozenset({dict, type(None)})),
    ("heads", frozenset({bytes})),
    ("mores", frozenset({bytes})),
)
#: Columns of packed numbers, native byte order: name -> item size in bytes.
_PACKED_COLUMNS = {"times": 8, "origins": 4, "texts": 4, "lengths": 4}
#: Columns that may be None: they then hold only their default.
_OPTIONAL_COLUMNS = frozenset({"fields", "lengths", "mores"})
_SEVERITY_CODES = "".join(s.code for s in Severity).encode()


@dataclass(**_FROZEN)
class ParsedBatch(Message):
    """Raw log lines parsed in the child, as columns: one entry per index, plus raw lines.

    Built from an `actors.logtree.parse.Batch`; see its docstring for each column.
    Validation is by column, with C-level checks, so that a batch of thousands of
    entries costs the root little.
    """

    TYPE: ClassVar[str] = "parsed"
    codes: bytes
    #: Packed doubles.
    times: bytes
    #: Packed unsigned 32-bit indexes into `origin_table`.
    origins: bytes
    #: The messages; or, packed unsigned 32-bit, offsets of the messages in the heads.
    texts: list[str] | bytes
    #: None: no entry has fields.
    fields: list[dict[str, str] | None] | None
    heads: list[bytes]
    #: None: each is its head's length (no line was cut).
    #: Packed unsigned 32-bit; None: each is its head's length (no line was cut).
    lengths: bytes | None
    #: None: no entry has continuation lines.
    mores: list[bytes] | None
    #: [file, line, pid] rows that `origins` index.
    origin_table: list[list[Any]]
    #: Raw lines: [position in the batch, bytes, length before cutting].
    raws: list[list[Any]]
    sub: str | None = None
    #: Packed unsigned 32-bit per entry, its `attribution_table` row; None: not attributed.
    attributions: bytes | None = None
    #: The same per raw line (in `raws` order).
    raw_attributions: bytes | None = None
    #: `[sandbox, container]` rows (`""`: not known; row 0 is nobody's); see `parse.runsc`.
    attribution_table: list[list[str]] | None = None

    def __post_init__(self) -> None:
        msg = "parsed message"
        _check(msg, "codes", self.codes, bytes)
        if self.codes.translate(None, _SEVERITY_CODES):
            raise ProtocolError(f"{msg}: field 'codes' holds an unknown severity code")
        count = len(self.codes)
        for name, size in _PACKED_COLUMNS.items():
            column = getattr(self, name)
            if (column is None and name in _OPTIONAL_COLUMNS) or (
                name == "texts" and type(column) is list
            ):
                continue
            _check(msg, name, column, bytes)
            if len(column) != count * size:
                raise ProtocolError(
                    f"{msg}: field {name!r} holds {len(column)} bytes, not {count * size}"
                )
        for name, kinds in _PARSED_COLUMNS:
            column = getattr(self, name)
            if (column is None and name in _OPTIONAL_COLUMNS) or type(column) is bytes:
                continue
            _check(msg, name, column, list)
            if len(column) != count:
                raise ProtocolError(f"{msg}: field {name!r} has {len(column)} items, not {count}")
            if column and not set(map(type, column)) <= kinds:
                raise ProtocolError(f"{msg}: field {name!r} holds a value of a wrong type")
        _check(msg, "origin_table", self.origin_table, list)
        for row in self.origin_table:
            if not (
                type(row) is list
                and len(row) == 3
                and type(row[0]) is str
                and type(row[1]) is int
                and type(row[2]) is int
            ):
                raise ProtocolError(f"{msg}: origin {row!r:.60} is not [file, line, pid]")
        if len(self.origin_table) == 1:  # one source for all (logrus: none): every index 0
            outside = self.origins.count(0) != len(self.origins)
        else:
            outside = max(memoryview(self.origins).cast("I"), default=-1) >= len(self.origin_table)
        if outside:
            raise ProtocolError(f"{msg}: field 'origins' points outside 'origin_table'")
        values = chain.from_iterable(map(dict.values, filter(None, self.fields or ())))
        if not set(map(type, values)) <= {str}:
            raise ProtocolError(f"{msg}: field 'fields' holds a value that is not text")
        _check(msg, "raws", self.raws, list)
        _check(msg, "sub", self.sub, str, optional=True)
        last = -1
        for raw in self.raws:
            if not (
                type(raw) is list
                and len(raw) == 3
                and type(raw[0]) is int
                and type(raw[1]) is bytes
                and type(raw[2]) is int
                and last < raw[0] < count + len(self.raws)
            ):
                raise ProtocolError(f"{msg}: raw record {raw!r:.60} is invalid")
            last = raw[0]
        check_attribution_columns(msg, self, count)


@dataclass(**_FROZEN)
class Exit(Message):
    """The runnable returned: `result` ok / canceled / error (with `error`)."""

    TYPE: ClassVar[str] = "exit"
    #: How the runnable ended, one of `EXIT_RESULTS`.
    result: str
    #: What went wrong, for "error".
    error: str | None = None

    def __post_init__(self) -> None:
        _check("exit message", "result", self.result, str)
        if self.result not in EXIT_RESULTS:
            raise ProtocolError(f"exit message: unknown result {self.result!r}")
        _check("exit message", "error", self.error, str, optional=True)

    @classmethod
    def of(cls, kind: ExitKind, error: str | None = None) -> Exit:
        """The message that reports `kind` (OK, CANCELED or ERROR)."""
        return cls(result=EXIT_KIND_WIRE[kind], error=error)

    @property
    def kind(self) -> ExitKind:
        """The exit kind this message reports."""
        return _EXIT_KIND_OF[self.result]


@dataclass(**_FROZEN)
class Heartbeat(Message):
    """The process is alive; sent every heartbeat interval."""

    TYPE: ClassVar[str] = "heartbeat"
    seq: int

    def __post_init__(self) -> None:
        _check("heartbeat message", "seq", self.seq, int)


@dataclass(**_FROZEN)
class MetricAdd(Message):
    """Add `value` to the agent's counter `name`, or observe it in histogram `name`."""

    TYPE: ClassVar[str] = "metric"
    name: str
    #: An increment (`"counter"`), or one observation (`"histogram"`: seconds, bytes).
    value: float
    labels: dict[str, str]
    #: What `name` is, one of `METRIC_KINDS`.
    kind: str = "counter"

    def __post_init__(self) -> None:
        _check("metric message", "name", self.name, str)
        _check("metric message", "value", self.value, (int, float))
        _check("metric message", "kind", self.kind, str)
        if self.kind not in METRIC_KINDS:
            raise ProtocolError(f"metric message: unknown kind {self.kind!r}")
        _check("metric message", "labels", self.labels, dict)
        for k, v in self.labels.items():
            _check("metric message", "label name", k, str)
            _check("metric message", "label value", v, str)


@dataclass(**_FROZEN)
class FactReport(Message):
    """A fact about what the runnable watches, as data (`status` shows it under the node).

    `value` is anything JSON holds (at most `MAX_FACT_SIZE`); None withdraws the fact.
    """

    TYPE: ClassVar[str] = "fact"
    #: The fact's name: `[a-z0-9_]{1,64}`, e.g. `sandbox_image`.
    key: str
    #: Its value.
    value: Any

    def __post_init__(self) -> None:
        _check("fact message", "key", self.key, str)
        if not FACT_KEY.fullmatch(self.key):
            raise ProtocolError(f"fact message: key {self.key!r} is not [a-z0-9_]{{1,64}}")
        size = fact_size(self.value, 0)
        if size > MAX_FACT_SIZE:
            raise ProtocolError(
                f"fact message: value of {self.key!r} holds {size} bytes, more than {MAX_FACT_SIZE}"
            )


# ------------------------------------------------------------ root -> child


@dataclass(**_FROZEN)
class Start(Message):
    """Run `target(ctx, **args)` as node `dn`."""

    TYPE: ClassVar[str] = "start"
    dn: str
    generation: int
    target: str
    args: dict[str, Any]
    #: Seconds between heartbeats, or None for none.
    heartbeat_interval: float | None = None
    #: How the node's raw log lines are parsed in the child (a `ParseFormat` value).
    raw_format: str = "raw"

    def __post_init__(self) -> None:
        _check("start message", "dn", self.dn, str)
        _check("start message", "generation", self.generation, int)
        _check("start message", "target", self.target, str)
        _check("start message", "args", self.args, dict)
        _check("start message", "heartbeat_interval", self.heartbeat_interval, (int, float), True)
        _check("start message", "raw_format", self.raw_format, str)
        if self.raw_format not in PARSE_FORMATS:
            raise ProtocolError(f"start message: unknown raw_format {self.raw_format!r}")


@dataclass(**_FROZEN)
class Cancel(Message):
    """The node's context is cancelled, for `reason`."""

    TYPE: ClassVar[str] = "cancel"
    reason: str

    def __post_init__(self) -> None:
        _check("cancel message", "reason", self.reason, str)


@dataclass(**_FROZEN)
class RunGroupReply(Message):
    """Answer to a RunGroupRequest; `error` None means the children started."""

    TYPE: ClassVar[str] = "run_group_reply"
    request_id: int
    error: str | None = None

    def __post_init__(self) -> None:
        _check("run_group_reply message", "request_id", self.request_id, int)
        _check("run_group_reply message", "error", self.error, str, optional=True)


@dataclass(**_FROZEN)
class SubLoggerReply(Message):
    """Answer to a SubLoggerRequest; `error` None means reserved."""

    TYPE: ClassVar[str] = "sub_logger_reply"
    request_id: int
    error: str | None = None

    def __post_init__(self) -> None:
        _check("sub_logger_reply message", "request_id", self.request_id, int)
        _check("sub_logger_reply message", "error", self.error, str, optional=True)


#: Every message a runnable's process sends the root.
ChildMessage = (
    Hello
    | SignalMsg
    | RunGroupRequest
    | SubLoggerRequest
    | LogEntry
    | RawChunk
    | ParsedBatch
    | Exit
    | Heartbeat
    | MetricAdd
    | FactReport
)
#: Every message the root sends a runnable's process.
RootMessage = Start | Cancel | RunGroupReply | SubLoggerReply

#: Tag -> class of the messages a child may send (a decode table).
CHILD_TO_ROOT: dict[str, type[Message]] = {c.TYPE: c for c in get_args(ChildMessage)}
#: Tag -> class of the messages the root may send (a decode table).
ROOT_TO_CHILD: dict[str, type[Message]] = {c.TYPE: c for c in get_args(RootMessage)}


def decode(obj: Mapping[str, Any], table: Mapping[str, type[Message]]) -> Message:
    """Turn a decoded frame map into a message of one of `table`'s types."""
    tag = obj.get("type")
    if not isinstance(tag, str):
        raise ProtocolError("message has no string field 'type'")
    cls = table.get(tag)
    if cls is None:
        raise ProtocolError(f"unknown message type {tag!r}")
    return cls.from_wire(obj)
