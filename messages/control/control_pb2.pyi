from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class NodeState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    NODE_STATE_UNSPECIFIED: _ClassVar[NodeState]
    NODE_STATE_NEW: _ClassVar[NodeState]
    NODE_STATE_HEALTHY: _ClassVar[NodeState]
    NODE_STATE_DEAD: _ClassVar[NodeState]
    NODE_STATE_DONE: _ClassVar[NodeState]
    NODE_STATE_CANCELED: _ClassVar[NodeState]

class KindFilter(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    KIND_FILTER_ALL: _ClassVar[KindFilter]
    KIND_FILTER_LEVELED: _ClassVar[KindFilter]
    KIND_FILTER_RAW: _ClassVar[KindFilter]

class Severity(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SEVERITY_INFO: _ClassVar[Severity]
    SEVERITY_WARNING: _ClassVar[Severity]
    SEVERITY_ERROR: _ClassVar[Severity]
    SEVERITY_FATAL: _ClassVar[Severity]
    SEVERITY_DEBUG: _ClassVar[Severity]

class EntryKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ENTRY_KIND_UNSPECIFIED: _ClassVar[EntryKind]
    ENTRY_KIND_LEVELED: _ClassVar[EntryKind]
    ENTRY_KIND_RAW: _ClassVar[EntryKind]
    ENTRY_KIND_MISSED: _ClassVar[EntryKind]
NODE_STATE_UNSPECIFIED: NodeState
NODE_STATE_NEW: NodeState
NODE_STATE_HEALTHY: NodeState
NODE_STATE_DEAD: NodeState
NODE_STATE_DONE: NodeState
NODE_STATE_CANCELED: NodeState
KIND_FILTER_ALL: KindFilter
KIND_FILTER_LEVELED: KindFilter
KIND_FILTER_RAW: KindFilter
SEVERITY_INFO: Severity
SEVERITY_WARNING: Severity
SEVERITY_ERROR: Severity
SEVERITY_FATAL: Severity
SEVERITY_DEBUG: Severity
ENTRY_KIND_UNSPECIFIED: EntryKind
ENTRY_KIND_LEVELED: EntryKind
ENTRY_KIND_RAW: EntryKind
ENTRY_KIND_MISSED: EntryKind

class HelloRequest(_message.Message):
    __slots__ = ("client_version", "protocol")
    CLIENT_VERSION_FIELD_NUMBER: _ClassVar[int]
    PROTOCOL_FIELD_NUMBER: _ClassVar[int]
    client_version: str
    protocol: int
    def __init__(self, client_version: _Optional[str] = ..., protocol: _Optional[int] = ...) -> None: ...

class HelloReply(_message.Message):
    __slots__ = ("product", "version", "protocol", "pid")
    PRODUCT_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    PROTOCOL_FIELD_NUMBER: _ClassVar[int]
    PID_FIELD_NUMBER: _ClassVar[int]
    product: str
    version: str
    protocol: int
    pid: int
    def __init__(self, product: _Optional[str] = ..., version: _Optional[str] = ..., protocol: _Optional[int] = ..., pid: _Optional[int] = ...) -> None: ...

class StatusRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class NodeStatus(_message.Message):
    __slots__ = ("dn", "state", "pid", "restarts", "last_error", "since", "generation", "restart_at", "facts")
    class FactsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: _struct_pb2.Value
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ...) -> None: ...
    DN_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    PID_FIELD_NUMBER: _ClassVar[int]
    RESTARTS_FIELD_NUMBER: _ClassVar[int]
    LAST_ERROR_FIELD_NUMBER: _ClassVar[int]
    SINCE_FIELD_NUMBER: _ClassVar[int]
    GENERATION_FIELD_NUMBER: _ClassVar[int]
    RESTART_AT_FIELD_NUMBER: _ClassVar[int]
    FACTS_FIELD_NUMBER: _ClassVar[int]
    dn: str
    state: NodeState
    pid: int
    restarts: int
    last_error: str
    since: float
    generation: int
    restart_at: float
    facts: _containers.MessageMap[str, _struct_pb2.Value]
    def __init__(self, dn: _Optional[str] = ..., state: _Optional[_Union[NodeState, str]] = ..., pid: _Optional[int] = ..., restarts: _Optional[int] = ..., last_error: _Optional[str] = ..., since: _Optional[float] = ..., generation: _Optional[int] = ..., restart_at: _Optional[float] = ..., facts: _Optional[_Mapping[str, _struct_pb2.Value]] = ...) -> None: ...

class StatusReply(_message.Message):
    __slots__ = ("nodes", "now")
    NODES_FIELD_NUMBER: _ClassVar[int]
    NOW_FIELD_NUMBER: _ClassVar[int]
    nodes: _containers.RepeatedCompositeFieldContainer[NodeStatus]
    now: float
    def __init__(self, nodes: _Optional[_Iterable[_Union[NodeStatus, _Mapping]]] = ..., now: _Optional[float] = ...) -> None: ...

class LogsRequest(_message.Message):
    __slots__ = ("dn", "subtree", "backlog_count", "backlog_all", "follow", "min_severity", "kinds", "since", "field_prefixes")
    class FieldPrefixesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    DN_FIELD_NUMBER: _ClassVar[int]
    SUBTREE_FIELD_NUMBER: _ClassVar[int]
    BACKLOG_COUNT_FIELD_NUMBER: _ClassVar[int]
    BACKLOG_ALL_FIELD_NUMBER: _ClassVar[int]
    FOLLOW_FIELD_NUMBER: _ClassVar[int]
    MIN_SEVERITY_FIELD_NUMBER: _ClassVar[int]
    KINDS_FIELD_NUMBER: _ClassVar[int]
    SINCE_FIELD_NUMBER: _ClassVar[int]
    FIELD_PREFIXES_FIELD_NUMBER: _ClassVar[int]
    dn: str
    subtree: bool
    backlog_count: int
    backlog_all: bool
    follow: bool
    min_severity: Severity
    kinds: KindFilter
    since: float
    field_prefixes: _containers.ScalarMap[str, str]
    def __init__(self, dn: _Optional[str] = ..., subtree: _Optional[bool] = ..., backlog_count: _Optional[int] = ..., backlog_all: _Optional[bool] = ..., follow: _Optional[bool] = ..., min_severity: _Optional[_Union[Severity, str]] = ..., kinds: _Optional[_Union[KindFilter, str]] = ..., since: _Optional[float] = ..., field_prefixes: _Optional[_Mapping[str, str]] = ...) -> None: ...

class LogEntry(_message.Message):
    __slots__ = ("seq", "dn", "kind", "time", "severity", "file", "line", "lines", "data", "original_length", "missed", "pid", "fields", "head", "more", "text", "field_order")
    class FieldsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    SEQ_FIELD_NUMBER: _ClassVar[int]
    DN_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    SEVERITY_FIELD_NUMBER: _ClassVar[int]
    FILE_FIELD_NUMBER: _ClassVar[int]
    LINE_FIELD_NUMBER: _ClassVar[int]
    LINES_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    ORIGINAL_LENGTH_FIELD_NUMBER: _ClassVar[int]
    MISSED_FIELD_NUMBER: _ClassVar[int]
    PID_FIELD_NUMBER: _ClassVar[int]
    FIELDS_FIELD_NUMBER: _ClassVar[int]
    HEAD_FIELD_NUMBER: _ClassVar[int]
    MORE_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    FIELD_ORDER_FIELD_NUMBER: _ClassVar[int]
    seq: int
    dn: str
    kind: EntryKind
    time: float
    severity: Severity
    file: str
    line: int
    lines: _containers.RepeatedScalarFieldContainer[str]
    data: bytes
    original_length: int
    missed: int
    pid: int
    fields: _containers.ScalarMap[str, str]
    head: bytes
    more: bytes
    text: str
    field_order: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, seq: _Optional[int] = ..., dn: _Optional[str] = ..., kind: _Optional[_Union[EntryKind, str]] = ..., time: _Optional[float] = ..., severity: _Optional[_Union[Severity, str]] = ..., file: _Optional[str] = ..., line: _Optional[int] = ..., lines: _Optional[_Iterable[str]] = ..., data: _Optional[bytes] = ..., original_length: _Optional[int] = ..., missed: _Optional[int] = ..., pid: _Optional[int] = ..., fields: _Optional[_Mapping[str, str]] = ..., head: _Optional[bytes] = ..., more: _Optional[bytes] = ..., text: _Optional[str] = ..., field_order: _Optional[_Iterable[str]] = ...) -> None: ...

class RestartRequest(_message.Message):
    __slots__ = ("dn",)
    DN_FIELD_NUMBER: _ClassVar[int]
    dn: str
    def __init__(self, dn: _Optional[str] = ...) -> None: ...

class RestartReply(_message.Message):
    __slots__ = ("cancelled",)
    CANCELLED_FIELD_NUMBER: _ClassVar[int]
    cancelled: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, cancelled: _Optional[_Iterable[str]] = ...) -> None: ...

class SandboxStart(_message.Message):
    __slots__ = ("handler", "seconds")
    HANDLER_FIELD_NUMBER: _ClassVar[int]
    SECONDS_FIELD_NUMBER: _ClassVar[int]
    handler: str
    seconds: float
    def __init__(self, handler: _Optional[str] = ..., seconds: _Optional[float] = ...) -> None: ...

class ReportCheckRequest(_message.Message):
    __slots__ = ("sandbox_starts",)
    SANDBOX_STARTS_FIELD_NUMBER: _ClassVar[int]
    sandbox_starts: _containers.RepeatedCompositeFieldContainer[SandboxStart]
    def __init__(self, sandbox_starts: _Optional[_Iterable[_Union[SandboxStart, _Mapping]]] = ...) -> None: ...

class ReportCheckReply(_message.Message):
    __slots__ = ("recorded",)
    RECORDED_FIELD_NUMBER: _ClassVar[int]
    recorded: bool
    def __init__(self, recorded: _Optional[bool] = ...) -> None: ...
