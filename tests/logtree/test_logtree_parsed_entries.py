"""Parsed entries in the tree, in text and JSON, on the wire, and from a real child process."""

from __future__ import annotations

import shutil
import tempfile
import threading
import time
from array import array
from datetime import datetime
from typing import Any

import msgpack
import pytest

from actors.logtree import (
    LeveledEntry,
    LogTree,
    LogTreeError,
    ParsedEntry,
    ParseFormat,
    RawEntry,
    Severity,
    entry_to_dict,
    format_entry,
)
from actors.logtree.parse import StreamParser
from actors.supervisor.core.events import RunnableSpec
from actors.supervisor.process.childlog import FLUSH_SECONDS, RawLog
from actors.supervisor.runtime.actor import Supervisor
from actors.supervisor.testing.kit import Probe
from messages.errors import ProtocolError
from messages.wire import CHILD_TO_ROOT, ParsedBatch, decode

NOW = datetime(2026, 12, 5, 8, 0, 0).timestamp()
GLOG = (
    b"I1204 02:46:05.465477   25623 main.go:230] started\n"
    b"D1204 02:46:05.5 25623 debug.go:7] detail\n"
    b"E1204 02:46:06.000001 25623 fail.go:9] it broke\n"
)
LOGRUS = b'time="2026-12-04T02:36:55.921039556Z" level=warning msg="a \\"b\\"" k="v w" e=\n'


def batch_of(fmt: ParseFormat, data: bytes) -> dict[str, Any]:
    parser = StreamParser(fmt)
    parser.feed(data, NOW)
    parser.close_entry()
    batch = parser.take(keep_open=False)
    assert batch is not None
    return {"type": "parsed", **batch.columns()}


def tree_with(fmt: ParseFormat, data: bytes, dn: str = "root.x") -> LogTree:
    tree = LogTree(clock=lambda: NOW)
    tree.write_parsed(dn, decode(batch_of(fmt, data), CHILD_TO_ROOT))  # type: ignore[arg-type]
    return tree


def test_parsed_entries_are_stored_in_arrival_order_and_filtered_by_severity_and_time() -> None:
    tree = tree_with(ParseFormat.GLOG, GLOG)
    everything = tree.read("root.x", backlog=None).backlog
    assert [(e.seq, e.severity, e.text) for e in everything] == [  # type: ignore[union-attr]
        (1, Severity.INFO, "started"),
        (2, Severity.DEBUG, "detail"),
        (3, Severity.ERROR, "it broke"),
    ]
    errors = tree.read("root.x", backlog=None, min_severity=Severity.ERROR).backlog
    assert [e.seq for e in errors] == [3]
    since = datetime(2026, 12, 4, 2, 46, 5, 500000).timestamp()
    assert [e.seq for e in tree.read("root.x", backlog=None, since=since).backlog] == [2, 3]
    assert tree.read("root.x", backlog=None, raw=False).backlog == everything


def test_a_dns_minimum_severity_drops_parsed_entries_below_it_but_keeps_raw_lines() -> None:
    tree = LogTree(clock=lambda: NOW)
    tree.set_min_severity("root.x", Severity.WARNING)
    tree.write_parsed("root.x", decode(batch_of(ParseFormat.GLOG, b"junk\n" + GLOG), CHILD_TO_ROOT))  # type: ignore[arg-type]
    kept = tree.read("root.x", backlog=None).backlog
    assert [type(e).__name__ for e in kept] == ["RawEntry", "ParsedEntry"]
    assert kept[1].severity is Severity.ERROR  # type: ignore[union-attr]


def test_a_stream_reader_gets_parsed_entries_by_its_severity() -> None:
    tree = LogTree(clock=lambda: NOW)
    with tree.read("root", subtree=True, stream=True, min_severity=Severity.INFO) as reader:
        tree.write_parsed("root.x", decode(batch_of(ParseFormat.GLOG, GLOG), CHILD_TO_ROOT))  # type: ignore[arg-type]
        got = reader.get_many(10, timeout=5)
    assert [e.text for e in got] == ["started", "it broke"]  # type: ignore[union-attr]


def test_the_parse_table_gives_the_most_specific_patterns_format() -> None:
    tree = LogTree()
    tree.set_parse("root.containerd", ParseFormat.LOGRUS)
    tree.set_parse("root.containerd.runsc", ParseFormat.GLOG)
    assert [
        tree.parse_format(dn) for dn in ("root", "root.containerd", "root.containerd.runsc")
    ] == [
        ParseFormat.RAW,
        ParseFormat.LOGRUS,
        ParseFormat.GLOG,
    ]
    with pytest.raises(LogTreeError):
        tree.set_parse("Root", ParseFormat.GLOG)


def test_text_output_shows_the_entrys_own_time_severity_source_and_fields() -> None:
    glog = tree_with(ParseFormat.GLOG, GLOG).read("root.x", backlog=None).backlog
    logrus = tree_with(ParseFormat.LOGRUS, LOGRUS).read("root.x", backlog=None).backlog
    local = datetime(2026, 12, 4, 2, 46, 5).astimezone().strftime("%m%d %H:%M:%S")
    assert format_entry(glog[0], tz=None) == f"root.x  I{local}.465477 main.go:230] started"
    assert format_entry(logrus[0]) == ('root.x  W1204 02:36:55.921040] a "b" k="v w" e=""')


def test_json_output_carries_time_severity_source_pid_fields_and_the_raw_line() -> None:
    (entry,) = tree_with(ParseFormat.LOGRUS, LOGRUS).read("root.x", backlog=None).backlog
    assert entry_to_dict(entry) == {
        "seq": 1,
        "dn": "root.x",
        "kind": "leveled",
        "time": pytest.approx(1796351815.921039556, abs=1e-6),
        "severity": "WARNING",
        "file": "",
        "line": 0,
        "source": "",
        "pid": None,
        "fields": {"k": "v w", "e": ""},
        "lines": ['a "b"'],
        "message": 'a "b"',
        "raw": LOGRUS[:-1].decode(),
        "original_length": len(LOGRUS) - 1,
    }
    (first, *_) = tree_with(ParseFormat.GLOG, GLOG).read("root.x", backlog=None).backlog
    assert {k: entry_to_dict(first)[k] for k in ("source", "pid", "fields")} == {
        "source": "main.go:230",
        "pid": 25623,
        "fields": {},
    }


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"codes": b"IX"}, "parsed message: field 'codes' holds an unknown severity code"),
        ({"times": b"\0" * 8}, "parsed message: field 'times' holds 8 bytes, not 16"),
        ({"times": [1.0, 2.0]}, "parsed message: field 'times' must be bytes, not list"),
        ({"texts": [1, b"x"]}, "parsed message: field 'texts' holds a value of a wrong type"),
        ({"origins": array("I", [0, 5]).tobytes()}, "parsed message: field 'origins' points outside 'origin_table'"),
        ({"origin_table": [["a.go", "1", 1]]}, "parsed message: origin ['a.go', '1', 1] is not [file, line, pid]"),
        ({"fields": [None, {"k": 1}]}, "parsed message: field 'fields' holds a value that is not text"),
        ({"raws": [[7, b"x", 1]]}, "parsed message: raw record [7, b'x', 1] is invalid"),
    ],
)  # fmt: skip
def test_a_malformed_parsed_batch_is_refused_naming_the_field(
    change: dict[str, Any], error: str
) -> None:
    good = batch_of(ParseFormat.GLOG, GLOG[: GLOG.index(b"E1204")])
    decode(good, CHILD_TO_ROOT)
    with pytest.raises(ProtocolError) as caught:
        decode({**good, **change}, CHILD_TO_ROOT)
    assert str(caught.value) == error


class _Link:
    """Collects the frames a RawLog sends, decoded."""

    def __init__(self) -> None:
        self.messages: list[ParsedBatch] = []
        self.arrived = threading.Event()

    def send_wire(self, frame: bytes) -> None:
        body = msgpack.unpackb(frame[4:], raw=False)
        self.messages.append(decode(body, CHILD_TO_ROOT))  # type: ignore[arg-type]
        self.arrived.set()


def test_the_child_holds_the_last_entry_for_continuation_lines_then_releases_it() -> None:
    link = _Link()
    raw = RawLog(link, parse=ParseFormat.GLOG, clock=lambda: NOW)  # type: ignore[arg-type]
    raw.write(b"I1204 02:46:05.1 1 a.go:1] first\nI1204 02:46:05.2 1 a.go:2] dump:\n")
    raw.write(b"\tline one\n")
    raw.write(b"\tline two\npartial")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and sum(len(m.codes) for m in link.messages) < 2:
        link.arrived.wait(FLUSH_SECONDS)
    texts = [t for m in link.messages for t in m.heads]
    assert texts == [b"I1204 02:46:05.1 1 a.go:1] first", b"I1204 02:46:05.2 1 a.go:2] dump:"]
    assert link.messages[-1].mores == [b"\n\tline one\n\tline two"]
    raw.close()
    assert link.messages[-1].raws == [[0, b"partial", 7]]


def test_a_real_child_parses_its_raw_log_and_the_root_stores_leveled_entries() -> None:
    directory = tempfile.mkdtemp(prefix="nc-parse-", dir="/tmp")
    probe = Probe(directory)
    tree = LogTree()
    tree.set_parse("root.w", ParseFormat.GLOG)
    chunks = [GLOG[:30], GLOG[30:], b"panic: boom\n\ngoroutine 1 [running]:\nmain.main()\n"]
    root = RunnableSpec(
        target="actors.supervisor.testing.kit:group",
        args={
            "events": probe.events_path,
            "children": {
                "w": [
                    "tests.support.programs.parse_child:write",
                    {"events": probe.events_path, "chunks": chunks},
                ]
            },
        },
    )
    sup = Supervisor(root, log_tree=tree)
    try:
        sup.start()
        probe.wait_for("root.w", "written", timeout=60)
        deadline = time.monotonic() + 30
        entries: list[Any] = []
        while time.monotonic() < deadline and len(entries) < 4:
            entries = tree.read("root.w", backlog=None).backlog
            time.sleep(0.05)
    finally:
        sup.stop(timeout=30)
        probe.close()
        shutil.rmtree(directory, ignore_errors=True)
    assert all(isinstance(e, ParsedEntry) for e in entries)
    assert [(e.severity, e.file, e.line, e.pid) for e in entries] == [
        (Severity.INFO, "main.go", 230, 25623),
        (Severity.DEBUG, "debug.go", 7, 25623),
        (Severity.ERROR, "fail.go", 9, 25623),
        (Severity.FATAL, "", 0, 0),
    ]
    assert entries[3].lines == ("panic: boom", "", "goroutine 1 [running]:", "main.main()")
    assert not any(isinstance(e, RawEntry | LeveledEntry) for e in entries)


def test_the_syslog_priority_of_an_entry_comes_from_its_severity_and_raw_lines_are_info() -> None:
    from actors.logtree import syslog_priority

    entries = tree_with(ParseFormat.GLOG, b"junk\n" + GLOG).read("root.x", backlog=None).backlog
    assert [syslog_priority(e) for e in entries] == [6, 6, 7, 3]
