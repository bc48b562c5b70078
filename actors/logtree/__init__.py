"""The log tree: leveled and raw logs of every DN, kept, read and streamed.

A port of Monogon's `osbase/logtree` to the root process of node-containerd. Every
node of the supervision tree logs under its DN (`root.containerd.runsc`): leveled
entries (`LeveledEntry`: severity, one or more lines as one atomic entry, time,
source location) and raw lines (`RawEntry`: bytes split into lines, cut to 1024
bytes keeping their original length). The tree keeps the newest 8192 entries per DN and
serves them to readers (`LogTree.read`) as a backlog, a live stream, or both
without gap or duplicate, for one DN or a subtree. Sinks copy the stream to stderr or a
JSON lines file.

The package loads its modules on first use of one of their names, so that a child
process needing only `Severity` and the parsers stays light.

Modules:
    * `errors` — `LogTreeError`, the one exception (a `ValueError`).
    * `dn` — DN validation and subtree matching, over the one DN grammar in
      `actors.supervisor.core.names`.
    * `Severity`, the one severity vocabulary and its mappings, lives in the pure
      supervision core (`actors.supervisor.core.severity`); it is re-exported here.
    * `entry` — `LeveledEntry`, `ParsedEntry`, `RawEntry`.
    * `lines` — `LineSplitter`, the pure raw line splitter.
    * `parse` — pure glog/logrus parsers and `StreamParser` (runs in children);
      `parse.runsc` tells whose sandbox and container each runsc line is.
    * `records` — parsed batches into entries (C-level, in the root).
    * `tree` — `LogTree`, the thread-safe store.
    * `reader` — `LogReader`, backlog plus bounded stream.
    * `format` — text, dict and JSON rendering (`format_entry`, `format_entries`,
      `entry_to_dict`, `entry_to_json`); the JSON schema and the terminal escapes
      (`escape_terminal`) are in its docstring.
    * `sinks` — `StderrSink`, `JsonLinesSink`.
    * `journal` — whether stderr is systemd's journal (lines then carry priorities).

Public API::

    Severity                IntEnum DEBUG < INFO < WARNING < ERROR < FATAL; .code "D"/"I"/...;
                            .proto; .syslog; from_code/from_name/from_proto/from_logging
    LeveledEntry(*, dn: str, severity: Severity, lines: tuple[str, ...], timestamp: float,
                 file: str, line: int, seq: int = 0)    frozen, slots; .message; .kind
        LeveledEntry.from_message(dn, severity, message, *, timestamp, file="", line=0)
    RawEntry(seq: int, dn: str, data: bytes, original_length: int, timestamp: float,
             fields: Mapping[str, str] | None = None)
                            named tuple built by the tree; .cut; .kind == "raw"
    ParsedEntry(seq, dn, severity, timestamp, file, line, pid, text, fields, head,
                original_length, more)  named tuple; .kind == "leveled"; .lines; .raw
    Entry = LeveledEntry | ParsedEntry | RawEntry
    ParseFormat             StrEnum raw | glog | logrus | auto
    StreamParser(fmt, attribute=None).feed(data, now); .take() -> Batch | None; .close_entry()
    RunscAttribution().annotate(batch)   (parse.runsc: runsc's sandbox and container per record)
    LineSplitter().feed(data: bytes) -> (lines, lengths); .flush(); .pending
    validate_dn(dn) -> str; in_subtree(dn, pattern) -> bool; LogTreeError(ValueError)
    LogTree(max_entries_per_dn: int = 8192, clock: Callable[[], float] = time.time)
        .write_leveled(entry: LeveledEntry) -> None
        .write_raw(dn: str, data: bytes | bytearray | memoryview,
                   timestamp: float | None = None) -> None
        .flush_raw(dn: str, timestamp: float | None = None) -> None
        .flush_all_raw() -> None
        .write_parsed(dn: str, records: ParsedRecords) -> None
        .set_parse(pattern: str, fmt: ParseFormat) -> None; .parse_format(dn) -> ParseFormat
        .set_min_severity(pattern: str, severity: Severity) -> None
        .read(dn: str, *, subtree=False, backlog: int | None = 0, stream=False,
              leveled=True, raw=True, min_severity=Severity.DEBUG,
              buffer=10_000, since: float | None = None,
              fields: Mapping[str, str] | None = None) -> LogReader  (field prefixes)
        .dns() -> list[str]
        .missed_total() -> int  (entries dropped for slow stream readers, ever)
    LogReader
        .backlog: list[Entry]
        .get(timeout: float | None = None) -> Entry | None
        .get_many(limit: int, timeout: float | None = None) -> list[Entry]
        .take_gap() -> int      (entries missed right after the last one taken)
        .missed: int; .delivered: int; .closed: bool; .streaming: bool
        .close() -> None; iteration; context manager
    format_entry(entry: Entry, tz: tzinfo | None = UTC) -> str
    format_entries(entries: Iterable[Entry], tz: tzinfo | None = UTC) -> str
    entry_to_dict(entry: Entry) -> dict[str, Any]
    entry_to_json(entry: Entry) -> str       (one JSON line; DEL, C1, bidi as \\u escapes)
    escape_terminal(text: str) -> str        (C0 but tab, DEL, C1, bidi as \\xNN / \\uNNNN)
    syslog_priority(entry: Entry) -> int     (severity's syslog priority; raw lines 6)
    StderrSink(tree, stream=None, *, dn="", min_severity=INFO, tz=UTC, buffer=10_000,
               journal=False)   journal: lines start with their syslog priority <N>
    JsonLinesSink(tree, path, *, dn="", min_severity=INFO, buffer=10_000)
        .flush(timeout=None) -> bool; .stop(timeout=None) -> bool
        .missed: int; .written: int; .errors: int
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from actors.logtree.dn import in_subtree, validate_dn
    from actors.logtree.entry import MAX_LINE_LENGTH, Entry, LeveledEntry, ParsedEntry, RawEntry
    from actors.logtree.errors import LogTreeError
    from actors.logtree.format import (
        TERMINAL_UNSAFE,
        decode_raw,
        entry_to_dict,
        entry_to_json,
        escape_terminal,
        format_entries,
        format_entry,
        format_time,
        syslog_priority,
    )
    from actors.logtree.lines import LineSplitter
    from actors.logtree.parse import ParseFormat, StreamParser
    from actors.logtree.reader import LogReader
    from actors.logtree.sinks import JsonLinesSink, StderrSink
    from actors.logtree.tree import DEFAULT_MAX_ENTRIES_PER_DN, DEFAULT_STREAM_BUFFER, LogTree
    from actors.supervisor.core.severity import Severity

__all__ = [
    "DEFAULT_MAX_ENTRIES_PER_DN",
    "DEFAULT_STREAM_BUFFER",
    "MAX_LINE_LENGTH",
    "Entry",
    "JsonLinesSink",
    "LeveledEntry",
    "LineSplitter",
    "LogReader",
    "LogTree",
    "LogTreeError",
    "ParseFormat",
    "ParsedEntry",
    "RawEntry",
    "Severity",
    "StderrSink",
    "StreamParser",
    "TERMINAL_UNSAFE",
    "decode_raw",
    "entry_to_dict",
    "entry_to_json",
    "escape_terminal",
    "format_entries",
    "format_entry",
    "format_time",
    "in_subtree",
    "syslog_priority",
    "validate_dn",
]


#: Where each public name lives: a module of this package, or (a dotted name) one
#: outside it. The package imports a module only when one of its names is first
#: used, so a child process that needs only `Severity` and the parsers does not
#: load the tree, the readers and the sinks.
_HOME = {
    "DEFAULT_MAX_ENTRIES_PER_DN": "tree",
    "DEFAULT_STREAM_BUFFER": "tree",
    "MAX_LINE_LENGTH": "entry",
    "Entry": "entry",
    "JsonLinesSink": "sinks",
    "LeveledEntry": "entry",
    "LineSplitter": "lines",
    "LogReader": "reader",
    "LogTree": "tree",
    "LogTreeError": "errors",
    "ParseFormat": "parse",
    "ParsedEntry": "entry",
    "RawEntry": "entry",
    "Severity": "actors.supervisor.core.severity",
    "StderrSink": "sinks",
    "StreamParser": "parse",
    "TERMINAL_UNSAFE": "format",
    "decode_raw": "format",
    "entry_to_dict": "format",
    "entry_to_json": "format",
    "escape_terminal": "format",
    "format_entries": "format",
    "format_entry": "format",
    "format_time": "format",
    "in_subtree": "dn",
    "syslog_priority": "format",
    "validate_dn": "dn",
}


def __getattr__(name: str) -> Any:
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module = home if "." in home else f"{__name__}.{home}"
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
