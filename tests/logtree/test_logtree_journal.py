"""Syslog priorities on stderr lines when stderr is systemd's journal."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest

from actors.logtree import LogTree, Severity, StderrSink
from actors.logtree.journal import stream_is_journal
from tests.support.log_entries import leveled

pytestmark = pytest.mark.timeout(30)


def test_stderr_is_the_journal_only_when_journal_stream_names_that_very_file(tmp_path: Path):
    journal, other = tmp_path / "journal", tmp_path / "other"
    journal.touch()
    other.touch()
    st = os.stat(journal)
    env = {"JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}"}
    with open(journal, "w") as j, open(other, "w") as o:
        assert stream_is_journal(env, j.fileno())
        assert not stream_is_journal(env, o.fileno())
        assert not stream_is_journal({}, j.fileno())
        assert not stream_is_journal({"JOURNAL_STREAM": f"{st.st_dev}"}, j.fileno())
        assert not stream_is_journal({"JOURNAL_STREAM": f"x:{st.st_ino}"}, j.fileno())
    assert not stream_is_journal(env, 987)  # a closed descriptor


def test_the_journal_sink_prefixes_every_line_with_its_priority(tree: LogTree) -> None:
    out = io.StringIO()
    sink = StderrSink(tree, out, journal=True)
    tree.write_leveled(leveled("root", "bad", "worse", severity=Severity.ERROR, file="x.py"))
    tree.write_leveled(leveled("root", "careful", severity=Severity.WARNING))
    tree.write_leveled(leveled("root", "gone", severity=Severity.FATAL))
    tree.write_leveled(leveled("root", "fine"))
    tree.write_raw("root.c", b"<3>not a priority\n")
    assert sink.stop(timeout=10)
    assert out.getvalue() == (
        "<3>root  E1114 22:13:20.000000 x.py:1] bad\n"
        "<3>root  E1114 22:13:20.000000 x.py:1] worse\n"
        "<4>root  W1114 22:13:20.000000 main.py:1] careful\n"
        "<2>root  F1114 22:13:20.000000 main.py:1] gone\n"
        "<6>root  I1114 22:13:20.000000 main.py:1] fine\n"
        "<6>root.c  R1114 22:13:20.000000] <3>not a priority\n"
    )


def test_without_the_journal_lines_stay_plain(tree: LogTree) -> None:
    out = io.StringIO()
    sink = StderrSink(tree, out)
    tree.write_leveled(leveled("root", "bad", severity=Severity.ERROR))
    assert sink.stop(timeout=10)
    assert out.getvalue() == "root  E1114 22:13:20.000000 main.py:1] bad\n"
