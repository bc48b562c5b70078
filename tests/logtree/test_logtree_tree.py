"""The log tree as a store: writing, retention, verbosity and backlog reads."""

from __future__ import annotations

import threading

import pytest

from actors.logtree import (
    MAX_LINE_LENGTH,
    LeveledEntry,
    LogTree,
    LogTreeError,
    RawEntry,
    Severity,
)
from tests.support.log_entries import T0, FakeClock, leveled, raw_data, texts


def raw_lines(tree: LogTree, dn: str, *, subtree: bool = False) -> list[bytes]:
    return raw_data(tree.read(dn, subtree=subtree, backlog=None).backlog)


def write_numbered(tree: LogTree, dn: str, count: int) -> None:
    tree.write_raw(dn, b"".join(b"%d\n" % i for i in range(count)))


# Writing.


def test_raw_lines_become_entries_with_seq_dn_length_and_clock_time(
    tree: LogTree, clock: FakeClock
) -> None:
    tree.write_raw("root.a", b"one\r\ntwo\n")
    clock.now = T0 + 1
    tree.write_raw("root.a", b"three\n", timestamp=T0 + 5)
    assert tree.read("root.a", backlog=None).backlog == [
        RawEntry(seq=1, dn="root.a", data=b"one", original_length=3, timestamp=T0),
        RawEntry(seq=2, dn="root.a", data=b"two", original_length=3, timestamp=T0),
        RawEntry(seq=3, dn="root.a", data=b"three", original_length=5, timestamp=T0 + 5),
    ]


def test_leveled_entries_are_stored_as_stamped_copies(tree: LogTree) -> None:
    entry = leveled("root.a", "hello")
    tree.write_raw("root.a", b"raw\n")
    tree.write_leveled(entry)
    backlog = tree.read("root.a", backlog=None).backlog
    assert backlog[1] == LeveledEntry(
        dn="root.a",
        severity=Severity.INFO,
        lines=("hello",),
        timestamp=T0,
        file="main.py",
        line=1,
        seq=2,
    )
    assert entry.seq == 0


def test_a_partial_line_is_kept_across_writes_until_completed(tree: LogTree) -> None:
    tree.write_raw("root.runsc", b"first half of a line from process one, ")
    assert raw_lines(tree, "root.runsc") == []
    tree.write_raw("root.runsc", b"second half from process two\nnext")
    assert raw_lines(tree, "root.runsc") == [
        b"first half of a line from process one, second half from process two"
    ]


def test_flush_raw_stores_the_buffered_partial_line(tree: LogTree) -> None:
    tree.write_raw("root.a", b"done\nunfinished")
    tree.write_raw("root.b", b"other")
    tree.flush_raw("root.a")
    assert raw_lines(tree, "root.a") == [b"done", b"unfinished"]
    assert raw_lines(tree, "root.b") == []
    tree.flush_all_raw()
    assert raw_lines(tree, "root.b") == [b"other"]


def test_flush_raw_of_a_dn_never_written_changes_nothing(tree: LogTree) -> None:
    tree.flush_raw("root.never")
    assert tree.dns() == []
    with pytest.raises(LogTreeError) as caught:
        tree.flush_raw("root.Never")
    assert str(caught.value) == (
        "dn 'root.Never' is invalid: part 'Never' does not match [a-z0-9_]{1,64}"
    )


def test_a_ten_mib_line_is_stored_cut_with_its_original_length(tree: LogTree) -> None:
    chunk = b"\xff" * 65536
    for _ in range(160):
        tree.write_raw("root.big", chunk)
    tree.write_raw("root.big", b"\r\n")
    [entry] = tree.read("root.big", backlog=None).backlog
    assert isinstance(entry, RawEntry)
    assert entry.data == b"\xff" * MAX_LINE_LENGTH
    assert entry.original_length == 10 * 2**20
    assert entry.cut


def test_bytearray_and_memoryview_data_are_stored_as_bytes(tree: LogTree) -> None:
    tree.write_raw("root.a", bytearray(b"x\n"))
    tree.write_raw("root.a", memoryview(b"y\n"))
    assert [type(d) for d in raw_lines(tree, "root.a")] == [bytes, bytes]


def test_writing_to_an_invalid_dn_raises_and_stores_nothing(tree: LogTree) -> None:
    with pytest.raises(LogTreeError) as caught:
        tree.write_raw("root.A", b"x\n")
    assert str(caught.value) == "dn 'root.A' is invalid: part 'A' does not match [a-z0-9_]{1,64}"
    with pytest.raises(LogTreeError) as caught:
        tree.write_leveled(leveled("root..x"))
    assert str(caught.value) == "dn 'root..x' is invalid: part '' does not match [a-z0-9_]{1,64}"
    assert tree.dns() == []


def test_dns_lists_every_dn_written_to_sorted(tree: LogTree) -> None:
    tree.write_raw("root.b", b"x\n")
    tree.write_leveled(leveled("root.a.c"))
    tree.write_raw("root", b"partial")
    assert tree.dns() == ["root", "root.a.c", "root.b"]


def test_seq_increases_by_one_per_entry_across_all_dns(tree: LogTree) -> None:
    tree.write_raw("root.a", b"1\n2\n")
    tree.write_leveled(leveled("root.b"))
    tree.write_raw("root.a", b"3\n")
    seqs = [e.seq for e in tree.read("root", subtree=True, backlog=None).backlog]
    assert seqs == [1, 2, 3, 4]


# Retention.


def test_retention_keeps_the_newest_8192_entries_per_dn_independently(tree: LogTree) -> None:
    write_numbered(tree, "root.a", 9000)
    write_numbered(tree, "root.b", 100)
    assert raw_lines(tree, "root.a") == [b"%d" % i for i in range(808, 9000)]
    assert raw_lines(tree, "root.b") == [b"%d" % i for i in range(100)]


def test_retention_counts_leveled_and_raw_entries_together() -> None:
    tree = LogTree(max_entries_per_dn=4)
    tree.write_raw("root.a", b"r1\nr2\n")
    tree.write_leveled(leveled("root.a", "l1"))
    tree.write_leveled(leveled("root.a", "l2"))
    tree.write_raw("root.a", b"r3\n")
    kinds = [e.kind for e in tree.read("root.a", backlog=None).backlog]
    assert kinds == ["raw", "leveled", "leveled", "raw"]


def test_a_tree_must_keep_at_least_one_entry_per_dn() -> None:
    with pytest.raises(LogTreeError) as caught:
        LogTree(max_entries_per_dn=0)
    assert str(caught.value) == "max_entries_per_dn 0 is not positive"


# Filters and backlog.


def fill_family(tree: LogTree) -> None:
    tree.write_raw("root.a", b"a1\n")
    tree.write_raw("root.ab", b"ab1\n")
    tree.write_raw("root.a.b", b"ab.1\n")
    tree.write_raw("root", b"root1\n")
    tree.write_raw("root.a", b"a2\n")
    tree.write_raw("root.a.b.c", b"abc1\n")


def test_an_exact_read_returns_only_that_dn(tree: LogTree) -> None:
    fill_family(tree)
    assert raw_lines(tree, "root.a") == [b"a1", b"a2"]


def test_a_subtree_read_merges_descendants_in_seq_order_but_not_prefix_siblings(
    tree: LogTree,
) -> None:
    fill_family(tree)
    assert raw_lines(tree, "root.a", subtree=True) == [b"a1", b"ab.1", b"a2", b"abc1"]


def test_a_subtree_read_of_the_empty_pattern_returns_the_whole_tree(tree: LogTree) -> None:
    fill_family(tree)
    assert len(tree.read("", subtree=True, backlog=None).backlog) == 6


def test_backlog_returns_the_last_n_entries_oldest_first(tree: LogTree) -> None:
    write_numbered(tree, "root.a", 50)
    assert raw_data(tree.read("root.a", backlog=3).backlog) == [b"47", b"48", b"49"]


def test_backlog_last_n_of_a_subtree_is_taken_across_dns(tree: LogTree) -> None:
    fill_family(tree)
    assert raw_data(tree.read("root", subtree=True, backlog=3).backlog) == [
        b"root1",
        b"a2",
        b"abc1",
    ]


def test_backlog_zero_returns_nothing_and_none_returns_everything(tree: LogTree) -> None:
    write_numbered(tree, "root.a", 10)
    assert tree.read("root.a").backlog == []
    assert len(tree.read("root.a", backlog=None).backlog) == 10
    assert len(tree.read("root.a", backlog=100).backlog) == 10


def test_reading_a_dn_never_written_returns_an_empty_backlog(tree: LogTree) -> None:
    assert tree.read("root.nothing", backlog=None).backlog == []


def mixed(tree: LogTree) -> None:
    tree.write_leveled(leveled("root.a", "info"))
    tree.write_raw("root.a", b"raw1\n")
    tree.write_leveled(leveled("root.a", "warning", severity=Severity.WARNING))
    tree.write_leveled(leveled("root.a", "error", severity=Severity.ERROR))
    tree.write_raw("root.a", b"raw2\n")


def test_only_raw_and_only_leveled_reads(tree: LogTree) -> None:
    mixed(tree)
    assert texts(tree.read("root.a", backlog=None, leveled=False).backlog) == ["raw1", "raw2"]
    assert texts(tree.read("root.a", backlog=None, raw=False).backlog) == [
        "info",
        "warning",
        "error",
    ]


def test_min_severity_filters_leveled_entries_and_keeps_raw_ones(tree: LogTree) -> None:
    mixed(tree)
    reader = tree.read("root.a", backlog=None, min_severity=Severity.WARNING)
    assert texts(reader.backlog) == ["raw1", "warning", "error", "raw2"]


def test_backlog_last_n_counts_only_entries_that_pass_the_filters(tree: LogTree) -> None:
    mixed(tree)
    reader = tree.read("root.a", backlog=2, raw=False, min_severity=Severity.INFO)
    assert texts(reader.backlog) == ["warning", "error"]
    reader = tree.read("root.a", backlog=2, leveled=False)
    assert texts(reader.backlog) == ["raw1", "raw2"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"leveled": False, "raw": False}, "cannot read with both leveled=False and raw=False"),
        ({"backlog": -1}, "backlog -1 is invalid: expected None or an int >= 0"),
        ({"backlog": 1.5}, "backlog 1.5 is invalid: expected None or an int >= 0"),
        ({"buffer": 0}, "stream buffer 0 is invalid: expected an int >= 1"),
    ],
)
def test_invalid_read_options_are_rejected(
    tree: LogTree, kwargs: dict[str, object], message: str
) -> None:
    with pytest.raises(LogTreeError) as caught:
        tree.read("root", **kwargs)  # type: ignore[arg-type]
    assert str(caught.value) == message


def test_an_exact_read_of_the_empty_dn_is_rejected(tree: LogTree) -> None:
    with pytest.raises(LogTreeError) as caught:
        tree.read("")
    assert str(caught.value) == "dn '' is invalid: part '' does not match [a-z0-9_]{1,64}"


# Verbosity.


def test_set_min_severity_drops_leveled_entries_below_it_at_write_time(tree: LogTree) -> None:
    tree.set_min_severity("root.a", Severity.WARNING)
    mixed(tree)
    tree.write_leveled(leveled("root.a.child", "child info"))
    tree.write_leveled(leveled("root.ab", "sibling info"))
    assert texts(tree.read("root.a", backlog=None).backlog) == ["raw1", "warning", "error", "raw2"]
    assert texts(tree.read("root.a.child", backlog=None).backlog) == []
    assert texts(tree.read("root.ab", backlog=None).backlog) == ["sibling info"]


def test_the_most_specific_verbosity_pattern_wins(tree: LogTree) -> None:
    tree.write_leveled(leveled("root.a.b", "before"))  # the DN exists before the settings
    tree.set_min_severity("", Severity.ERROR)
    tree.set_min_severity("root.a", Severity.INFO)
    for dn in ("root.a.b", "root.x"):
        tree.write_leveled(leveled(dn, "info"))
        tree.write_leveled(leveled(dn, "fatal", severity=Severity.FATAL))
    assert texts(tree.read("root.a.b", backlog=None).backlog) == ["before", "info", "fatal"]
    assert texts(tree.read("root.x", backlog=None).backlog) == ["fatal"]


def test_set_min_severity_rejects_an_invalid_pattern(tree: LogTree) -> None:
    with pytest.raises(LogTreeError) as caught:
        tree.set_min_severity("root.", Severity.ERROR)
    assert str(caught.value) == "dn 'root.' is invalid: part '' does not match [a-z0-9_]{1,64}"


# Atomic multi-line entries.


def test_multi_line_leveled_entries_stay_whole_while_threads_write_concurrently(
    tree: LogTree,
) -> None:
    def writer(name: str) -> None:
        for i in range(300):
            tree.write_leveled(leveled("root.a", f"{name} {i} head", f"{name} {i} tail"))
            tree.write_raw("root.a", f"{name} raw {i}\n".encode())

    threads = [threading.Thread(target=writer, args=(f"t{n}",)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
        assert not thread.is_alive()
    entries = tree.read("root.a", backlog=None).backlog
    multi = [e for e in entries if isinstance(e, LeveledEntry)]
    assert len(multi) == 1200
    for entry in multi:
        head, tail = entry.lines
        assert tail == head.replace("head", "tail")
    assert [e.seq for e in entries] == list(range(1, 2401))


def test_a_leveled_entry_rejects_a_line_holding_a_newline() -> None:
    with pytest.raises(LogTreeError) as caught:
        leveled("root.a", "two\nlines")
    assert str(caught.value) == "leveled entry line 'two\\nlines' is not a string without newline"


def test_a_leveled_entry_needs_at_least_one_line() -> None:
    with pytest.raises(LogTreeError) as caught:
        LeveledEntry(dn="root", severity=Severity.INFO, lines=(), timestamp=0, file="", line=0)
    assert str(caught.value) == "leveled entry lines () is not a non-empty tuple"


def test_from_message_splits_a_message_into_lines() -> None:
    entry = LeveledEntry.from_message(
        "root.a", Severity.ERROR, "failed:\r\n  reason\n", timestamp=T0, file="x.py", line=9
    )
    assert entry.lines == ("failed:", "  reason", "")
    assert entry.message == "failed:\n  reason\n"
