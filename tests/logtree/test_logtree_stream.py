"""Stream readers: live entries after a backlog, bounded queues, missed counts."""

from __future__ import annotations

import threading
import time

import pytest

from actors.logtree import LeveledEntry, LogTree, LogTreeError, RawEntry, Severity
from tests.support.log_entries import leveled, raw_data

pytestmark = pytest.mark.timeout(30)


def test_a_stream_yields_entries_stored_after_the_read(tree: LogTree) -> None:
    tree.write_raw("root.a", b"old\n")
    with tree.read("root.a", stream=True) as reader:
        assert reader.backlog == []
        tree.write_raw("root.a", b"new1\nnew2\n")
        assert raw_data(reader.get_many(10, timeout=0)) == [b"new1", b"new2"]
        assert reader.get(timeout=0) is None


def test_get_waits_for_an_entry_written_by_another_thread(tree: LogTree) -> None:
    reader = tree.read("root.a", stream=True)
    writer = threading.Timer(0.05, tree.write_raw, args=("root.a", b"late\n"))
    writer.start()
    entry = reader.get(timeout=10)
    writer.join(timeout=10)
    assert isinstance(entry, RawEntry)
    assert entry.data == b"late"


def test_get_returns_none_when_the_timeout_passes(tree: LogTree) -> None:
    reader = tree.read("root.a", stream=True)
    start = time.monotonic()
    assert reader.get(timeout=0.05) is None
    assert time.monotonic() - start >= 0.045


def test_backlog_and_stream_have_no_gap_and_no_duplicate_while_another_thread_writes(
    tree: LogTree,
) -> None:
    started, stop = threading.Event(), threading.Event()

    def writer() -> None:
        line = 0
        while not stop.is_set():
            tree.write_raw("root.a", b"".join(b"%d\n" % i for i in range(line, line + 7)))
            line += 7
            if line > 3000:
                started.set()
        tree.write_raw("root.a", b"end\n")

    thread = threading.Thread(target=writer)
    thread.start()
    assert started.wait(timeout=10)
    reader = tree.read("root.a", backlog=None, stream=True, buffer=10_000_000)
    streamed: list[RawEntry] = []
    while True:
        entry = reader.get(timeout=10)
        assert isinstance(entry, RawEntry)
        if entry.data == b"end":
            break
        streamed.append(entry)
        if len(streamed) == 5000:
            stop.set()
    thread.join(timeout=10)
    assert not thread.is_alive()
    assert reader.backlog and len(streamed) >= 5000
    assert reader.missed == 0
    seen = [*reader.backlog, *streamed]
    first = seen[0].seq
    assert [e.seq for e in seen] == list(range(first, first + len(seen)))
    first_line = int(raw_data(seen[:1])[0])
    assert raw_data(seen) == [b"%d" % i for i in range(first_line, first_line + len(seen))]


def test_a_slow_reader_misses_entries_and_the_writer_does_not_wait(tree: LogTree) -> None:
    reader = tree.read("root.a", stream=True, buffer=10)

    def writer() -> None:
        tree.write_raw("root.a", b"".join(b"%d\n" % i for i in range(7)))
        tree.write_raw("root.a", b"".join(b"%d\n" % i for i in range(7, 25)))
        for i in range(5):
            tree.write_leveled(leveled("root.a", f"leveled {i}"))

    thread = threading.Thread(target=writer)
    thread.start()
    thread.join(timeout=10)
    assert not thread.is_alive()
    assert len(tree.read("root.a", backlog=None).backlog) == 30
    assert reader.missed == 20
    assert reader.delivered == 10
    assert raw_data(reader.get_many(100, timeout=0)) == [b"%d" % i for i in range(10)]
    tree.write_raw("root.a", b"after\n")
    assert raw_data(reader.get_many(100, timeout=0)) == [b"after"]
    assert reader.missed == 20


def test_a_reader_of_a_subtree_sees_dns_created_after_the_read(tree: LogTree) -> None:
    tree.write_raw("root.a", b"exists\n")
    reader = tree.read("root.a", subtree=True, stream=True)
    tree.write_raw("root.a.new", b"child\n")
    tree.write_raw("root.ab", b"not mine\n")
    tree.write_raw("root.a", b"parent\n")
    assert raw_data(reader.get_many(10, timeout=0)) == [b"child", b"parent"]


def test_an_exact_reader_does_not_see_children(tree: LogTree) -> None:
    reader = tree.read("root.a", stream=True)
    tree.write_raw("root.a.b", b"child\n")
    tree.write_raw("root.a", b"mine\n")
    assert raw_data(reader.get_many(10, timeout=0)) == [b"mine"]


def test_a_stream_filters_by_kind_and_severity(tree: LogTree) -> None:
    leveled_only = tree.read("root.a", stream=True, raw=False, min_severity=Severity.ERROR)
    raw_only = tree.read("root.a", stream=True, leveled=False)
    tree.write_leveled(leveled("root.a", "info"))
    tree.write_raw("root.a", b"raw\n")
    tree.write_leveled(leveled("root.a", "error", severity=Severity.ERROR))
    got = leveled_only.get_many(10, timeout=0)
    assert [e.message for e in got if isinstance(e, LeveledEntry)] == ["error"]
    assert len(got) == 1
    assert raw_data(raw_only.get_many(10, timeout=0)) == [b"raw"]
    assert leveled_only.missed == raw_only.missed == 0


def test_close_wakes_a_reader_waiting_in_another_thread(tree: LogTree) -> None:
    reader = tree.read("root.a", stream=True)
    results: list[object] = []
    thread = threading.Thread(target=lambda: results.append(reader.get()))
    thread.start()
    time.sleep(0.02)  # let it block; the assertion below holds either way
    reader.close()
    thread.join(timeout=10)
    assert not thread.is_alive()
    assert results == [None]


def test_entries_queued_before_close_can_still_be_taken_but_no_new_ones(tree: LogTree) -> None:
    reader = tree.read("root.a", stream=True)
    tree.write_raw("root.a", b"before\n")
    reader.close()
    reader.close()
    tree.write_raw("root.a", b"after\n")
    assert reader.closed
    assert raw_data(list(reader)) == [b"before"]
    assert reader.get(timeout=0) is None


def test_iteration_yields_entries_until_the_reader_is_closed(tree: LogTree) -> None:
    reader = tree.read("root.a", stream=True)

    def writer() -> None:
        for i in range(3):
            tree.write_raw("root.a", b"%d\n" % i)
        reader.close()

    thread = threading.Thread(target=writer)
    thread.start()
    got = raw_data(list(reader))
    thread.join(timeout=10)
    assert got == [b"0", b"1", b"2"]


def test_getting_from_a_reader_without_stream_raises(tree: LogTree) -> None:
    reader = tree.read("root.a", backlog=5)
    assert not reader.streaming
    assert reader.missed == 0
    with pytest.raises(LogTreeError) as caught:
        reader.get(timeout=0)
    assert str(caught.value) == "cannot get stream entries from a reader opened without stream=True"


def test_a_closed_reader_is_forgotten_by_the_tree(tree: LogTree) -> None:
    reader = tree.read("root", subtree=True, stream=True, buffer=1)
    tree.write_raw("root.a", b"1\n")
    reader.close()
    tree.write_raw("root.a", b"2\n3\n")
    tree.write_raw("root.b", b"4\n")
    assert reader.missed == 0
    assert reader.delivered == 1


def test_take_gap_tells_exactly_after_which_entry_entries_went_missing(tree: LogTree) -> None:
    reader = tree.read("root.a", stream=True, buffer=3)
    tree.write_raw("root.a", b"0\n1\n2\n3\n4\n")  # 0-2 queued, 3-4 missed
    tree.write_raw("root.a", b"5\n")  # missed, same gap
    assert raw_data([reader.get(timeout=0)]) == [b"0"]
    assert reader.take_gap() == 0
    tree.write_raw("root.a", b"6\n")  # queued after the gap
    assert raw_data(reader.get_many(100, timeout=0)) == [b"1", b"2"]
    assert reader.take_gap() == 3
    assert reader.take_gap() == 0
    assert raw_data(reader.get_many(100, timeout=0)) == [b"6"]
    assert reader.take_gap() == 0
    assert reader.missed == 3


def test_take_gap_includes_older_gaps_not_asked_about(tree: LogTree) -> None:
    reader = tree.read("root.a", stream=True, buffer=1)
    tree.write_raw("root.a", b"0\n1\n")  # 1 missed after 0
    assert reader.get(timeout=0) is not None
    tree.write_raw("root.a", b"2\n3\n4\n")  # 3, 4 missed after 2
    assert reader.get(timeout=0) is not None
    assert reader.take_gap() == 3
