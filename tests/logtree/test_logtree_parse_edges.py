"""The parsers' edge cases: years, fractions, quoting, continuation, bounds, hostile input."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest

from actors.logtree import LogTree, ParsedEntry, RawEntry, Severity
from actors.logtree.entry import MAX_LINE_LENGTH
from actors.logtree.parse import (
    MAX_FIELDS,
    MORE_LINES,
    PARSE_LIMIT,
    HourCache,
    ParsedLine,
    ParseFormat,
    StreamParser,
    parse_glog,
    parse_line,
    parse_logrus,
    unquote,
)

NOW = datetime(2026, 12, 5, 8, 0, 0).timestamp()


def local(*parts: int) -> float:
    return datetime(*parts).timestamp()  # type: ignore[arg-type]


def glog(line: bytes, now: float = NOW) -> ParsedLine | None:
    return parse_glog(line, now, HourCache())


def logrus(line: bytes, now: float = NOW) -> ParsedLine | None:
    return parse_logrus(line, now, HourCache())


def stored(fmt: ParseFormat, *chunks: bytes, now: float = NOW) -> list[ParsedEntry | RawEntry]:
    parser = StreamParser(fmt)
    tree = LogTree(clock=lambda: now)
    for chunk in chunks:
        parser.feed(chunk, now)
        batch = parser.take()
        if batch is not None:
            tree.write_parsed("root.x", batch)
    parser.close_entry()
    batch = parser.take(keep_open=False)
    if batch is not None:
        tree.write_parsed("root.x", batch)
    return tree.read("root.x", backlog=None).backlog  # type: ignore[return-value]


# glog.


def test_a_glog_line_gives_all_its_parts() -> None:
    line = b"E1204 02:46:05.465477   25623 main.go:230] it broke: [x]"
    parsed = glog(line)
    assert parsed == ParsedLine(
        Severity.ERROR, local(2026, 12, 4, 2, 46, 5, 465477), "main.go", 230, 25623, 43, None
    )
    assert parsed.message(line) == "it broke: [x]"


def test_runscs_d_lines_are_debug_and_each_glog_letter_has_its_severity() -> None:
    letters = {c: glog(c.encode() + b"1204 02:46:05.1 1 a.go:1] x") for c in "DIWEF"}
    assert {c: p.severity for c, p in letters.items() if p} == {
        "D": Severity.DEBUG,
        "I": Severity.INFO,
        "W": Severity.WARNING,
        "E": Severity.ERROR,
        "F": Severity.FATAL,
    }
    assert glog(b"X1204 02:46:05.1 1 a.go:1] x") is None


@pytest.mark.parametrize(
    ("frac", "micros"), [(b"", 0), (b".5", 500000), (b".465477", 465477), (b".000000001", 0)]
)
def test_glog_fractions_of_any_length_are_read_exactly(frac: bytes, micros: int) -> None:
    parsed = glog(b"I1204 02:46:05" + frac + b" 7 a.go:1] x")
    assert parsed is not None
    assert parsed.timestamp == pytest.approx(local(2026, 12, 4, 2, 46, 5, micros), abs=2e-6)


def test_a_glog_line_from_new_years_eve_read_after_midnight_is_last_years() -> None:
    now = local(2027, 1, 1, 0, 0, 1)
    parsed = glog(b"I1231 23:59:59.999999 1 a.go:1] almost", now)
    assert parsed is not None
    assert parsed.timestamp == pytest.approx(local(2026, 12, 31, 23, 59, 59, 999999))


def test_a_glog_line_from_a_clock_ahead_into_new_year_read_before_midnight_is_next_years() -> None:
    now = local(2026, 12, 31, 23, 59, 58)
    parsed = glog(b"I0101 00:00:01.000000 1 a.go:1] early", now)
    assert parsed is not None
    assert parsed.timestamp == pytest.approx(local(2027, 1, 1, 0, 0, 1))


def test_february_29th_takes_the_nearest_leap_year_and_bad_dates_are_not_glog() -> None:
    parsed = glog(b"I0229 12:00:00 1 a.go:1] leap", local(2028, 3, 1))
    assert parsed is not None and parsed.timestamp == local(2028, 2, 29, 12)
    for bad in (b"I0230 12:00:00 1 a.go:1] x", b"I1301 12:00:00 1 a.go:1] x"):
        assert glog(bad) is None
    assert glog(b"I1204 24:00:00 1 a.go:1] x") is None
    assert glog(b"I1204 23:60:00 1 a.go:1] x") is None


def test_glog_without_source_or_bracket_is_not_glog() -> None:
    for line in (b"I1204 02:46:05.1 1 main.go] x", b"I1204 02:46:05.1 1 main.go:3 x", b"I1204"):
        assert glog(line) is None


# logrus.


def test_msg_with_escaped_quotes_and_backslashes_is_unquoted() -> None:
    parsed = logrus(rb'time="2026-12-04T02:36:55Z" level=error msg="a \"b\" c\\d \\\"e\\\"" k=v')
    assert parsed is not None
    assert parsed.text == 'a "b" c\\d \\"e\\"'
    assert parsed.fields == {"k": "v"}


def test_go_escapes_in_values_are_decoded_and_bad_bytes_shown_as_hex() -> None:
    assert unquote(rb'"tab\there\nnl \u00e9 \U0001F600 \x41 \xff \101 \q"') == (
        "tab\there\nnl \u00e9 \U0001f600 A \\xff A \\q"
    )
    assert unquote(b"bare") == "bare"


def test_keys_without_values_have_empty_values() -> None:
    parsed = logrus(b'level=warning msg=hi flag empty= "x"=' + b"1"[:0] + b"")
    assert parsed is None  # a stray quote makes a line not logrus
    parsed = logrus(b"level=warning msg=hi flag empty=")
    assert parsed is not None
    assert (parsed.severity, parsed.text, parsed.fields) == (
        Severity.WARNING,
        "hi",
        {"flag": "", "empty": ""},
    )
    assert parsed.timestamp == NOW  # no time= : the time of reading


@pytest.mark.parametrize(
    ("stamp", "expected"),
    [
        ("2026-12-04T02:36:55Z", datetime(2026, 12, 4, 2, 36, 55, tzinfo=UTC).timestamp()),
        (
            "2026-12-04T02:36:55.5Z",
            datetime(2026, 12, 4, 2, 36, 55, 500000, tzinfo=UTC).timestamp(),
        ),
        ("2026-12-04T02:36:55.921039556Z", 1796351815.921039556),
        ("2026-12-04T03:36:55.921039+01:00", 1796351815.921039),
    ],
)
def test_rfc3339_times_are_exact_with_any_fraction_and_zone(stamp: str, expected: float) -> None:
    parsed = logrus(f'time="{stamp}" level=info msg=x'.encode())
    assert parsed is not None
    assert parsed.timestamp == pytest.approx(expected, abs=1e-6)


def test_logrus_levels_map_onto_the_five_severities() -> None:
    got = {
        level: logrus(f"level={level} msg=x".encode())
        for level in ("trace", "debug", "info", "warning", "warn", "error", "fatal", "panic")
    }
    assert {k: v.severity for k, v in got.items() if v} == {
        "trace": Severity.DEBUG,
        "debug": Severity.DEBUG,
        "info": Severity.INFO,
        "warning": Severity.WARNING,
        "warn": Severity.WARNING,
        "error": Severity.ERROR,
        "fatal": Severity.FATAL,
        "panic": Severity.FATAL,
    }
    assert logrus(b"level=loud msg=x") is None


def test_lines_that_only_look_like_logrus_are_not_logrus() -> None:
    for line in (
        b"hello level=info msg=x",  # must start with time= or level=
        b'time="yesterday" level=info msg=x',  # a bad time
        b"time=2026-12-04T02:36:55Z level=info",  # no msg
        b'level=info msg="unterminated',
        b'{"level": "info"}',
        b'{"level": 3, "msg": "x"}',
        b"[" * 100_000,
        b"{" + b'"a":[' * 5000,
    ):
        assert logrus(line) is None, line[:40]


def test_logrus_json_members_other_than_level_msg_time_are_text_fields() -> None:
    parsed = logrus(b'{"level":"warning","msg":"m","n":3,"b":true,"o":{"k":[1]},"s":"t"}')
    assert parsed is not None
    assert parsed.fields == {"n": "3", "b": "true", "o": '{"k": [1]}', "s": "t"}


def test_a_line_with_too_many_fields_stays_raw() -> None:
    fields = b" ".join(b"k%d=v" % i for i in range(MAX_FIELDS + 1))
    assert logrus(b"level=info msg=x " + fields) is None
    fields = b" ".join(b"k%d=v" % i for i in range(MAX_FIELDS))
    parsed = logrus(b"level=info msg=x " + fields)
    assert parsed is not None and parsed.fields is not None and len(parsed.fields) == MAX_FIELDS


# Streams.


def test_a_line_longer_than_the_chunk_size_split_across_chunks_is_parsed_whole() -> None:
    line = b'time="2026-12-04T02:36:55Z" level=error msg="' + b"x" * 3000 + b'" k=v\n'
    chunks = [line[i : i + 512] for i in range(0, len(line), 512)]
    (entry,) = stored(ParseFormat.LOGRUS, *chunks)
    assert isinstance(entry, ParsedEntry)
    assert (entry.severity, entry.text, entry.fields) == (Severity.ERROR, "x" * 3000, {"k": "v"})
    assert entry.raw == line[:-1]


def test_a_go_panic_and_its_goroutine_dump_are_one_fatal_entry() -> None:
    text = (
        b'time="2026-12-04T02:36:55Z" level=info msg=ok\n'
        b"panic: runtime error: index out of range [3] with length 3\n"
        b"\n"
        b"goroutine 1 [running]:\n"
        b"main.main()\n"
        b"\t/src/main.go:12 +0x1d\n"
        b"exit status 2\n"
        b'time="2026-12-04T02:36:56Z" level=info msg=next\n'
    )
    ok, panic, following = stored(ParseFormat.LOGRUS, text[:70], text[70:])
    assert isinstance(panic, ParsedEntry) and isinstance(following, ParsedEntry)
    assert (panic.severity, panic.timestamp) == (Severity.FATAL, NOW)
    assert panic.lines == (
        "panic: runtime error: index out of range [3] with length 3",
        "",
        "goroutine 1 [running]:",
        "main.main()",
        "\t/src/main.go:12 +0x1d",
        "exit status 2",
    )
    assert following.text == "next"
    assert b"\n".join(e.raw for e in (ok, panic, following)) + b"\n" == text  # type: ignore[union-attr]


def test_continuation_lines_stop_at_the_bound_and_the_rest_stays_raw() -> None:
    text = b"I1204 02:46:05.1 1 a.go:1] dump:\n" + b"".join(
        b"line %d\n" % i for i in range(MORE_LINES + 3)
    )
    entries = stored(ParseFormat.GLOG, text)
    head = entries[0]
    assert isinstance(head, ParsedEntry) and len(head.lines) == 1 + MORE_LINES
    assert [e.data for e in entries[1:]] == [
        b"line %d" % i for i in range(MORE_LINES, MORE_LINES + 3)
    ]  # type: ignore[union-attr]


def test_lines_without_an_entry_before_them_stay_raw_entries_exactly() -> None:
    text = b"\x1b[31mnot glog\xff\r\nI1204 02:46:05.1 1 a.go:1] x\n"
    raw, entry = stored(ParseFormat.GLOG, text)
    assert raw == RawEntry(raw.seq, "root.x", b"\x1b[31mnot glog\xff", 14, NOW)
    assert isinstance(entry, ParsedEntry) and entry.text == "x"


def test_invalid_utf8_is_kept_in_raw_and_escaped_in_the_message() -> None:
    (entry,) = stored(ParseFormat.GLOG, b"W1204 02:46:05.1 1 a.go:1] bad \xff\xfe byte\n")
    assert isinstance(entry, ParsedEntry)
    assert entry.text == "bad \\xff\\xfe byte"
    assert entry.raw == b"W1204 02:46:05.1 1 a.go:1] bad \xff\xfe byte"


def test_a_multi_mib_line_is_cut_to_the_parse_limit_and_counted() -> None:
    huge = b"I1204 02:46:05.1 1 a.go:1] " + b"y" * (5 << 20) + b"\n"
    started = time.monotonic()
    entries = stored(ParseFormat.GLOG, *(huge[i : i + 65536] for i in range(0, len(huge), 65536)))
    assert time.monotonic() - started < 30
    (entry,) = entries
    assert isinstance(entry, ParsedEntry)
    assert (len(entry.head), entry.original_length, entry.cut) == (PARSE_LIMIT, len(huge) - 1, True)
    logrus_huge = b'level=info msg="' + b"z" * (5 << 20) + b'"\n'
    (raw,) = stored(ParseFormat.LOGRUS, logrus_huge)
    assert isinstance(raw, RawEntry)
    assert (len(raw.data), raw.original_length) == (MAX_LINE_LENGTH, len(logrus_huge) - 1)


def test_a_forged_timestamp_neither_reorders_nor_drops_other_entries() -> None:
    text = (
        b"I1204 02:46:05.1 1 a.go:1] first\n"
        b"I0101 00:00:00.0 1 a.go:1] forged, far in the past\n"
        b"I1204 02:46:06.1 1 a.go:1] third\n"
    )
    entries = stored(ParseFormat.GLOG, text)
    assert [e.text for e in entries] == ["first", "forged, far in the past", "third"]  # type: ignore[union-attr]
    assert [e.seq for e in entries] == [1, 2, 3]


def test_auto_reads_each_line_in_its_own_format() -> None:
    text = (
        b"I1204 02:46:05.1 1 a.go:1] glog\n"
        b'{"level":"error","msg":"json"}\n'
        b'time="2026-12-04T02:36:55Z" level=warning msg=text\n'
        b"plain\n"
    )
    entries = stored(ParseFormat.AUTO, text)
    assert [
        (type(e).__name__, e.severity if isinstance(e, ParsedEntry) else None) for e in entries
    ] == [
        ("ParsedEntry", Severity.INFO),
        ("ParsedEntry", Severity.ERROR),
        ("ParsedEntry", Severity.WARNING),
    ]
    assert entries[-1].lines == ("text", "plain")  # type: ignore[union-attr]
    assert parse_line(ParseFormat.RAW, b"I1204 02:46:05.1 1 a.go:1] glog", NOW) is None


def test_an_entry_held_for_continuation_lines_leaves_with_a_later_take() -> None:
    parser = StreamParser(ParseFormat.GLOG)
    parser.feed(b"I1204 02:46:05.1 1 a.go:1] one\nI1204 02:46:05.1 1 a.go:1] two\n", NOW)
    batch = parser.take()
    assert batch is not None and batch.texts == [27] and batch.heads[0][27:] == b"one"
    assert parser.open and parser.take() is None
    parser.feed(b"  more of two\n", NOW)
    parser.close_entry()
    batch = parser.take()
    assert batch is not None and batch.heads[0][27:] == b"two"
    assert batch.mores == [b"\n  more of two"] and batch.origin_table == [["a.go", 1, 1]]
    with pytest.raises(ValueError) as caught:
        StreamParser(ParseFormat.RAW)
    assert str(caught.value) == "a raw stream is not parsed"
