"""Sinks a running agent changes: another severity, a reopened file, a terminal's view."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from actors.logtree import Entry, JsonLinesSink, LogTree, Severity, StderrSink
from tests.support.log_entries import leveled

pytestmark = pytest.mark.timeout(30)


def test_a_sinks_severity_changes_for_the_entries_written_after(tree: LogTree) -> None:
    out = io.StringIO()
    sink = StderrSink(tree, out)
    tree.write_leveled(leveled("root", "before"))
    assert sink.flush(timeout=10)
    sink.set_min_severity(Severity.WARNING)
    tree.write_leveled(leveled("root", "after, quiet"))
    tree.write_leveled(leveled("root", "after, loud", severity=Severity.WARNING))
    assert sink.stop(timeout=10)
    assert out.getvalue() == (
        "root  I1114 22:13:20.000000 main.py:1] before\n"
        "root  W1114 22:13:20.000000 main.py:1] after, loud\n"
    )


def test_a_reopened_json_sink_writes_a_new_file_at_its_path_after_a_rotation(
    tree: LogTree, tmp_path: Path
) -> None:
    path = tmp_path / "agent.json"
    sink = JsonLinesSink(tree, path)
    tree.write_leveled(leveled("root", "one"))
    assert sink.flush(timeout=10)
    path.rename(tmp_path / "agent.json.1")
    sink.reopen()
    tree.write_leveled(leveled("root", "two"))
    assert sink.stop(timeout=10)
    old = [
        json.loads(line)["message"] for line in (tmp_path / "agent.json.1").read_text().splitlines()
    ]
    new = [json.loads(line)["message"] for line in path.read_text().splitlines()]
    assert (old, new) == (["one"], ["two"])


def test_a_stderr_sinks_select_leaves_out_or_replaces_entries(tree: LogTree) -> None:
    def select(entry: Entry) -> Entry | None:
        if entry.lines == ("hidden",):
            return None
        if entry.lines == ("old words",):
            return leveled(entry.dn, "new words")
        return entry

    out = io.StringIO()
    sink = StderrSink(tree, out, select=select)
    for text in ("shown", "hidden", "old words"):
        tree.write_leveled(leveled("root", text))
    assert sink.stop(timeout=10)
    assert out.getvalue() == (
        "root  I1114 22:13:20.000000 main.py:1] shown\n"
        "root  I1114 22:13:20.000000 main.py:1] new words\n"
    )
