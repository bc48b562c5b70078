"""Sinks: stderr text and JSON lines, fed by their own threads."""

from __future__ import annotations

import io
import json
import threading
from pathlib import Path

import pytest

from actors.logtree import JsonLinesSink, LogTree, Severity, StderrSink
from tests.support.log_entries import T0, leveled

pytestmark = pytest.mark.timeout(30)


class BlockingStream(io.StringIO):
    """A text stream whose first write blocks until released."""

    def __init__(self) -> None:
        super().__init__()
        self.entered = threading.Event()
        self.release = threading.Event()

    def write(self, text: str) -> int:
        if not self.entered.is_set():
            self.entered.set()
            assert self.release.wait(timeout=10)
        return super().write(text)


class BrokenStream(io.StringIO):
    def write(self, text: str) -> int:
        raise OSError("broken pipe")


def test_stderr_sink_writes_formatted_lines_of_its_subtree(tree: LogTree) -> None:
    out = io.StringIO()
    sink = StderrSink(tree, out, dn="root.a")
    tree.write_leveled(leveled("root.a", "one", "two", file="x.py", line=5))
    tree.write_raw("root.a.b", b"raw \xff\n")
    tree.write_raw("root.b", b"elsewhere\n")
    assert sink.flush(timeout=10)
    assert out.getvalue() == (
        "root.a  I1114 22:13:20.000000 x.py:5] one\n"
        "root.a  I1114 22:13:20.000000 x.py:5] two\n"
        "root.a.b  R1114 22:13:20.000000] raw \\xff\n"
    )
    assert sink.stop(timeout=10)
    assert sink.errors == 0


def test_stderr_sink_filters_by_min_severity(tree: LogTree) -> None:
    out = io.StringIO()
    sink = StderrSink(tree, out, min_severity=Severity.ERROR)
    tree.write_leveled(leveled("root", "quiet"))
    tree.write_leveled(leveled("root", "loud", severity=Severity.ERROR))
    assert sink.stop(timeout=10)
    assert out.getvalue() == "root  E1114 22:13:20.000000 main.py:1] loud\n"


def test_a_slow_sink_misses_entries_without_slowing_writers_and_says_how_many(
    tree: LogTree,
) -> None:
    out = BlockingStream()
    sink = StderrSink(tree, out, buffer=2)
    tree.write_raw("root", b"first\n")
    assert out.entered.wait(timeout=10)  # the sink thread is stuck writing "first"
    tree.write_raw("root", b"".join(b"%d\n" % i for i in range(10)))
    assert sink.missed == 8
    out.release.set()
    assert sink.stop(timeout=10)
    assert out.getvalue().splitlines() == [
        "root  R1114 22:13:20.000000] first",
        "root  R1114 22:13:20.000000] 0",
        "root  R1114 22:13:20.000000] 1",
        "logtree: logtree-stderr-sink missed 8 entries",
    ]


def test_stop_writes_the_entries_already_queued(tree: LogTree) -> None:
    out = BlockingStream()
    sink = StderrSink(tree, out)
    tree.write_raw("root", b"first\n")
    assert out.entered.wait(timeout=10)
    tree.write_raw("root", b"second\nthird\n")
    out.release.set()
    assert sink.stop(timeout=10)
    tree.write_raw("root", b"after stop\n")
    assert [line.rsplit("] ", 1)[1] for line in out.getvalue().splitlines()] == [
        "first",
        "second",
        "third",
    ]


def test_stderr_sink_survives_lone_surrogates_on_a_strict_utf8_stream(tree: LogTree) -> None:
    raw = io.BytesIO()
    out = io.TextIOWrapper(raw, encoding="utf-8", errors="strict")
    sink = StderrSink(tree, out)
    tree.write_leveled(leveled("root", "bad \udcff char \u00e9"))
    assert sink.stop(timeout=10)
    assert raw.getvalue() == b"root  I1114 22:13:20.000000 main.py:1] bad \\udcff char \\xe9\n"
    assert sink.errors == 0


def test_write_errors_are_counted_and_do_not_kill_the_sink(tree: LogTree) -> None:
    sink = StderrSink(tree, BrokenStream())
    tree.write_raw("root", b"lost\n")
    assert sink.flush(timeout=10)
    tree.write_raw("root", b"lost too\n")
    assert sink.flush(timeout=10)
    assert sink.errors == 2
    assert sink.stop(timeout=10)


def test_json_sink_writes_one_valid_json_object_per_entry_even_for_junk(
    tree: LogTree, tmp_path: Path
) -> None:
    path = tmp_path / "logs.jsonl"
    sink = JsonLinesSink(tree, path)
    tree.write_raw("root.runsc", b"\xff\xfe\x00\x1b[31mred\xe2\x82\n" + b"z" * 2000 + b"\n")
    tree.write_leveled(leveled("root.a", "caf\u00e9", "lone \udcff", severity=Severity.FATAL))
    assert sink.stop(timeout=10)
    records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert records == [
        {
            "seq": 1,
            "dn": "root.runsc",
            "kind": "raw",
            "time": T0,
            "data": "\\xff\\xfe\x00\x1b[31mred\\xe2\\x82",
            "original_length": 13,
            "cut": False,
            "fields": {},
        },
        {
            "seq": 2,
            "dn": "root.runsc",
            "kind": "raw",
            "time": T0,
            "data": "z" * 1024,
            "original_length": 2000,
            "cut": True,
            "fields": {},
        },
        {
            "seq": 3,
            "dn": "root.a",
            "kind": "leveled",
            "time": T0,
            "severity": "FATAL",
            "file": "main.py",
            "line": 1,
            "source": "main.py:1",
            "pid": None,
            "fields": {},
            "lines": ["caf\u00e9", "lone \udcff"],
            "message": "caf\u00e9\nlone \udcff",
            "raw": None,
            "original_length": None,
        },
    ]


def test_json_sink_appends_to_an_existing_file(tree: LogTree, tmp_path: Path) -> None:
    path = tmp_path / "logs.jsonl"
    path.write_text('{"kind": "older"}\n', encoding="utf-8")
    sink = JsonLinesSink(tree, path)
    tree.write_raw("root", b"new\n")
    assert sink.stop(timeout=10)
    kinds = [json.loads(line)["kind"] for line in path.read_text().splitlines()]
    assert kinds == ["older", "raw"]
