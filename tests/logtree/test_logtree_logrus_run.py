"""The column-wise logrus path gives exactly the text parser's entries, line for line.

`actors.logtree.parse.logrus_run` reads runs of lines of containerd's common shape;
`parse_logrus_text` reads any line. For every line the first takes, both must give
the same severity, time (the same float), message and fields: checked on the captures
of containerd 1.6 and 2.1, on chosen edge cases, and on random lines. A stream with
the column-wise path must store what a stream without it stores.
"""

from __future__ import annotations

import contextlib
import itertools
import time
from datetime import datetime
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from actors.logtree.parse import (
    PARSE_LIMIT,
    HourCache,
    ParsedLine,
    ParseFormat,
    StreamParser,
    stream,
)
from actors.logtree.parse.line import message_of
from actors.logtree.parse.logrus import parse_logrus_text
from actors.logtree.parse.logrus_run import LogrusRun, logrus_parts, parse_logrus_run

DATA = Path(__file__).parent / "data"
NOW = datetime(2026, 12, 5, 8, 0, 0).timestamp()
PROPS = settings(max_examples=500, deadline=None, derandomize=True, database=None)
CAPTURES = ["containerd-1.6.log", "containerd-2.1.log"]
FIELDS_64 = b" ".join(b"k%d=v" % i for i in range(64))


def entry(parsed: ParsedLine, line: bytes) -> tuple[Any, ...]:
    return (parsed.severity.code, parsed.timestamp, parsed.message(line), parsed.fields)


def run_entries(run: LogrusRun) -> list[tuple[Any, ...]]:
    return [
        (chr(code), when, text, fields)
        for code, when, text, fields in zip(
            run.codes, run.times, run.texts, run.fields, strict=True
        )
    ]


def stream_records(fmt: ParseFormat, lines: list[bytes], column_wise: bool = True) -> Any:
    """The columns a stream parser makes of `lines`, with or without the column-wise path."""
    parser = StreamParser(fmt)
    with contextlib.ExitStack() as stack:
        if not column_wise:
            stack.enter_context(
                mock.patch.object(stream, "logrus_parts", lambda lines: [("",)] * len(lines))
            )
        parser.feed(b"".join(line + b"\n" for line in lines), NOW)
    parser.close_entry()
    batch = parser.take(keep_open=False)
    return None if batch is None else batch.columns()


def check_run(lines: list[bytes]) -> int:
    """Asserts that each run of common-shape lines parses as the text parser parses each line.

    Returns:
        How many lines the column-wise path took.
    """
    parts = logrus_parts(lines)
    taken = [i for i, p in enumerate(parts) if p[0]]
    if not taken:
        return 0
    run = parse_logrus_run([lines[i] for i in taken], [parts[i] for i in taken], NOW, HourCache())
    if run is None:  # a bad time: the stream parses these lines one by one
        return 0
    expected = []
    for i in taken:
        parsed = parse_logrus_text(lines[i], NOW, HourCache())
        assert parsed is not None, lines[i]
        expected.append(entry(parsed, lines[i]))
    assert run_entries(run) == expected
    return len(taken)


@pytest.mark.parametrize("name", CAPTURES)
def test_every_captured_containerd_text_line_is_of_the_common_shape(name: str) -> None:
    lines = (DATA / name).read_bytes().splitlines()
    assert all(p[0] for p in logrus_parts(lines))


@pytest.mark.parametrize("name", CAPTURES)
@pytest.mark.parametrize("size", [1, 7, 1000])
def test_captured_lines_in_runs_of_any_size_give_the_text_parsers_entries(
    name: str, size: int
) -> None:
    lines = (DATA / name).read_bytes().splitlines()
    for start in range(0, len(lines), size):
        assert check_run(lines[start : start + size]) == len(lines[start : start + size])


@pytest.mark.parametrize(
    "line",
    [
        # Escapes: only \" (replaced), others (parsed again).
        rb'time="2026-12-04T02:36:55.921039556Z" level=info msg="a \"b\" c" k="x \"y\""',
        rb'time="2026-12-04T02:36:55Z" level=error msg="tab\there \x41 \u00e9 \q" k=v',
        rb'time="2026-12-04T02:36:55Z" level=info msg=C:\dir k="v" j="\n"',
        # Times: zones, no fraction, one digit, a leap second, a space for the T.
        b'time="2026-12-04T03:36:55.921039+01:00" level=info msg=x',
        b'time="2026-12-04T01:06:55-01:30" level=warn msg=x',
        b'time="2026-12-04 02:36:60.5z" level=trace msg=x',
        # Pairs: none, bare and empty values, three and more, duplicates, bad UTF-8.
        b'time="2026-12-04T02:36:55Z" level=info msg=serving... address=/run/c.sock',
        b'time="2026-12-04T02:36:55Z" level=info msg="" a= b="" c=d e="f g"',
        b'time="2026-12-04T02:36:55Z" level=info msg=m k=1 k=2 j=3 k=4',
        b'time="2026-12-04T02:36:55Z" level=info msg="\xff\xfe" k\xff=v\xc3 j="\xe2\x82"',
        b'time="2026-12-04T02:36:55Z" level=panic msg="x" ' + FIELDS_64,
    ],
)
def test_edge_cases_of_the_common_shape_give_the_text_parsers_entry(line: bytes) -> None:
    assert check_run([line]) == 1


@pytest.mark.parametrize(
    "line",
    [
        rb'time="2026-12-04T02:36:55Z" level=info msg="ends in a backslash \\" k="v"',
        rb'time="2026-12-04T02:36:55Z" level=info msg="\\" k=\"x" j="y"',
        rb'time="2026-12-04T02:36:55Z" level=info msg=x k="a\\\"b" j="c\\"',
        rb'time="2026-12-04T02:36:55Z" level=info msg="a\\\\\"" k=v',
    ],
)
def test_lines_with_an_escaped_backslash_give_the_text_parsers_entry_either_way(
    line: bytes,
) -> None:
    check_run([line])  # where the column-wise path takes the line, the same entry
    assert stream_records(ParseFormat.LOGRUS, [line]) == stream_records(
        ParseFormat.LOGRUS, [line], column_wise=False
    )


@pytest.mark.parametrize(
    "line",
    [
        b'time="2026-12-04T02:36:55Z" level=info msg=x msg=y',  # the later msg wins
        b'time="2026-12-04T02:36:55Z" level=info msg=x k=v level=error',
        b'time="2026-12-04T02:36:55Z" level=info msg=x k=v j=w time="2026-12-04T02:36:56Z"',
    ],
)
def test_a_pair_named_time_level_or_msg_among_the_first_three_gives_the_text_parsers_entry(
    line: bytes,
) -> None:
    assert check_run([line]) == 1
    assert stream_records(ParseFormat.LOGRUS, [line]) == stream_records(
        ParseFormat.LOGRUS, [line], column_wise=False
    )


@pytest.mark.parametrize(
    "line",
    [
        b"level=info msg=x",  # no time: the text parser's
        b'time="2026-12-04T02:36:55Z"  level=info msg=x',  # two spaces
        b'time="2026-12-04T02:36:55Z" level=info msg=x ',  # a trailing space
        b'time="2026-12-04T02:36:55Z" level=info msg=x a=1 b=2 c=3 msg=y',  # msg after three
        b'time="2026-12-04T02:36:55Z" level=INFO msg=x',
        b'time="2026-12-04T02:36:55.1234567890Z" level=info msg=x',
        b'time="2026-12-04T02:36:55Z" level=info msg="x" ' + FIELDS_64 + b" k=v",
        b'time="2026-12-04T02:36:55Z" level=info msg="x"k=v',
    ],
)
def test_lines_of_other_shapes_are_left_to_the_text_parser(line: bytes) -> None:
    assert not logrus_parts([line])[0][0]


def test_a_run_with_a_bad_time_is_left_to_the_text_parser_line_by_line() -> None:
    lines = [
        b'time="2026-12-04T02:36:55Z" level=info msg=a',
        b'time="2026-02-30T02:36:55Z" level=info msg=b',
    ]
    assert parse_logrus_run(lines, logrus_parts(lines), NOW, HourCache()) is None
    assert parse_logrus_text(lines[1], NOW, HourCache()) is None


def test_an_escaped_backslash_that_makes_a_line_not_logrus_leaves_the_run_to_the_text_parser() -> (
    None
):
    # Go reads msg="a\\" then k=\"x" (a bare value, then a stray quote): not logrus. The
    # pattern took `a\\" k=\"x` for the message; the backslash left tells.
    line = rb'time="2026-12-04T02:36:55Z" level=info msg="a\\" k=\"x"'
    parts = logrus_parts([line])
    assert parts[0][0]
    assert parse_logrus_text(line, NOW, HourCache()) is None
    assert parse_logrus_run([line], parts, NOW, HourCache()) is None


@pytest.mark.parametrize(
    "tail",
    [
        " k=v" * 1000 + " X",  # many pairs, then one that is not
        " k" * 2000,  # keys without values
        " " + "k" * 4000,  # one long key without a value
        ' k="' + 'a\\"' * 1300,  # a quoted value that never ends
        ' k="a b"' * 500 + " =",
        " k==" * 1000,
    ],
)
def test_a_hostile_line_of_the_parse_limit_is_refused_in_linear_time(tail: str) -> None:
    line = ('time="2026-12-04T02:36:55Z" level=info msg=x' + tail)[:PARSE_LIMIT].encode()
    started = time.perf_counter()
    for _ in range(10):
        assert not logrus_parts([line])[0][0]
    # About 50 µs each here; backtracking that grew with the square of the length would take
    # hundreds of milliseconds.
    assert (time.perf_counter() - started) / 10 < 0.02


# Random lines, built from the pieces of the common shape and of what breaks it.

_TEXT = st.lists(
    st.sampled_from(
        [b'\\"', b"\\\\", b"\\", b'"', b" ", b"=", b"a", b"xyz", b"\\n", b"\\x41", b"\\u00e9"]
        + [b"\xff", b"\xc3\xa9", b"\xe2\x80\xae", b"\t", b"\x1b", b"msg=", b'\\\\"', b"\\777"]
    ),
    max_size=6,
).map(b"".join)
_VALUE = st.one_of(
    _TEXT.map(lambda t: b'"' + t + b'"'),
    _TEXT.map(lambda t: t.replace(b" ", b"").replace(b'"', b"")),
    _TEXT,
)
_TIME = st.sampled_from(
    [
        b"2026-12-04T02:36:55.921039556Z",
        b"2026-12-04T02:36:55Z",
        b"2026-12-04T03:36:55.5+01:00",
        b"2026-12-04 02:36:55.1z",
        b"2026-13-04T02:36:55Z",
        b"2026-12-04T02:61:55Z",
        b"2026-12-04T02:36:60.9-00:30",
        b"2028-02-29T00:00:00.123456789Z",
        b"2026-12-04T02:36:55.Z",
    ]
)
_LEVEL = st.sampled_from([b"info", b"debug", b"warning", b"warn", b"error", b"fatal", b"loud"])
_KEY = st.sampled_from([b"k", b"id", b"error", b"msg", b"level", b"time", b"x\xff", b"a\\b", b""])
_PAIR = st.tuples(_KEY, _VALUE, st.booleans()).map(lambda p: p[0] + b"=" + p[1] if p[2] else p[0])
_SEPARATOR = st.sampled_from([b" "] * 12 + [b"  ", b""])


_TIDY_KEY = st.sampled_from([b"k", b"id", b"error", b"type", b"x\xff", b"a\\b"])
_TIDY_PAIR = st.tuples(_TIDY_KEY, _VALUE.filter(lambda v: b" " not in v.strip(b'"'))).map(b"=".join)


@st.composite
def logrus_lines(draw: st.DrawFn) -> bytes:
    """A line of the common shape, or near it: random times, values, pairs, spacing.

    Half of them are tidy (single spaces, keys the common shape allows), so that the
    column-wise path takes many.
    """
    tidy = draw(st.booleans())
    parts = [b'time="' + draw(_TIME) + b'"', b"level=" + draw(_LEVEL), b"msg=" + draw(_VALUE)]
    parts += draw(st.lists(_TIDY_PAIR if tidy else _PAIR, max_size=5))
    line = parts[0]
    for part in parts[1:]:
        line += (b" " if tidy else draw(_SEPARATOR)) + part
    return line


@PROPS
@given(lines=st.lists(logrus_lines(), min_size=1, max_size=6))
def test_random_lines_the_column_wise_path_takes_give_the_text_parsers_entries(
    lines: list[bytes],
) -> None:
    for line in lines:
        check_run([line])
    check_run(lines)


@PROPS
@given(
    fmt=st.sampled_from([ParseFormat.LOGRUS, ParseFormat.AUTO]),
    lines=st.lists(
        logrus_lines()
        | st.sampled_from([b"panic: x", b"\tgoroutine 1", b"I1204 02:46:05 1 a:1] m"]),
        max_size=12,
    ),
)
def test_a_stream_stores_the_same_records_with_and_without_the_column_wise_path(
    fmt: ParseFormat, lines: list[bytes]
) -> None:
    assert stream_records(fmt, lines) == stream_records(fmt, lines, column_wise=False)


# Blocks: the lines of a chunk are matched as one text.

_OTHER_PIECES = st.sampled_from(
    [
        b'time="2026-12-04T02:36:55Z" level=info msg="open',  # a quote this line does not close
        b'close" k=v',
        b'" j="x',
        b"\xe2\x82",  # UTF-8 cut short at the line's end
        b"\xc3",
        b"\tgoroutine 1 [running]:",
        b"",
    ]
)


@PROPS
@given(lines=st.lists(logrus_lines() | _OTHER_PIECES, max_size=12))
def test_a_block_of_lines_has_the_parts_its_lines_have_one_by_one(lines: list[bytes]) -> None:
    assert logrus_parts(lines) == [logrus_parts([line])[0] for line in lines]


def test_a_quote_that_runs_over_the_end_of_its_line_is_no_match_and_the_next_lines_still_are() -> (
    None
):
    first = b'time="2026-12-04T02:36:55Z" level=info msg="open'
    second = b'close" k=v'
    third = b'time="2026-12-04T02:36:56Z" level=info msg=x k="y z"'
    parts = logrus_parts([first, second, third])
    assert [bool(p[0]) for p in parts] == [False, False, True]
    assert parts[2] == logrus_parts([third])[0]
    assert stream_records(ParseFormat.LOGRUS, [first, second, third]) == stream_records(
        ParseFormat.LOGRUS, [first, second, third], column_wise=False
    )


# containerd's own lines: logrus' TextFormatter quotes a value with Go's strconv.Quote unless
# every character is one of `_BARE_SAFE`.

_BARE_SAFE = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._/@^+")
_GO_ESCAPES = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t"}
_GO_ESCAPES |= {"\v": "\\v", "\\": "\\\\", '"': '\\"'}


def go_value(text: str) -> bytes:
    """`text` as logrus' TextFormatter writes a value: bare, or quoted as Go quotes it."""
    if text and set(text) <= _BARE_SAFE:
        return text.encode()
    out = []
    for char in text:
        if char in _GO_ESCAPES:
            out.append(_GO_ESCAPES[char])
        elif not char.isprintable():
            out.append(f"\\x{ord(char):02x}" if ord(char) < 0x80 else f"\\u{ord(char):04x}")
        else:
            out.append(char)
    return ('"' + "".join(out) + '"').encode()


_WORDS = st.sampled_from(
    ["loading plugin", "io.containerd.snapshotter.v1.btrfs", "skip", '"modprobe"', "$PATH"]
    + ["failed: exec:", "C:\\dir", 'a\\"b', "é", "世界", "\x1b[0m", "tab\there", "line\nnext"]
    + ["...", " ", "=", "", "serving...", "/run/containerd/containerd.sock", "\\"]
)
_GO_TEXT = st.lists(_WORDS, max_size=4).map("".join)
_FIELD_KEYS = st.sampled_from(
    ["type", "id", "error", "revision", "version", "address", "path", "runtime", "namespace"]
)
_NANOS = st.integers(min_value=0, max_value=999_999_999)


@st.composite
def containerd_lines(draw: st.DrawFn) -> bytes:
    """A line as containerd 1.6 (`msg="loading plugin \\"…\\"..." type=…`) or 2.x
    (`msg="loading plugin" id=… type=…`) writes it: RFC 3339 nanosecond times, a level,
    a message and a few fields, quoted or bare as logrus decides."""
    when = draw(st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2030, 12, 31)))
    stamp = when.strftime("%Y-%m-%dT%H:%M:%S") + f".{draw(_NANOS):09d}Z"
    level = draw(st.sampled_from(["info", "debug", "warning", "error", "trace", "fatal", "panic"]))
    msg = draw(_GO_TEXT)
    if draw(st.booleans()):  # 1.6: the plugin's name in the message
        msg = f'loading plugin "{draw(_WORDS)}"...'
    line = f'time="{stamp}" level={level} msg='.encode() + go_value(msg)
    for key in draw(st.lists(_FIELD_KEYS, max_size=5)):
        line += b" " + key.encode() + b"=" + go_value(draw(_GO_TEXT))
    return line


@PROPS
@given(
    lines=st.lists(containerd_lines(), min_size=1, max_size=30),
    cuts=st.lists(st.integers(min_value=0, max_value=3000), max_size=4),
)
def test_containerd_lines_in_any_chunks_are_stored_as_the_text_parser_parses_each(
    lines: list[bytes], cuts: list[int]
) -> None:
    # The column-wise path takes every line but one with a `\\` (an escaped backslash can end
    # a quoted value where the shape's pattern does not see an end).
    parts = logrus_parts(lines)
    assert all(p[0] for line, p in zip(lines, parts, strict=True) if b"\\\\" not in line)
    data = b"".join(line + b"\n" for line in lines)
    parser = StreamParser(ParseFormat.LOGRUS)
    for start, end in itertools.pairwise(
        sorted({0, len(data), *(c for c in cuts if c < len(data))})
    ):
        parser.feed(data[start:end], NOW)
    parser.close_entry()
    batch = parser.take(keep_open=False)
    assert batch is not None and not batch.raws and batch.heads == lines
    stored = [
        (chr(code), when, message_of(text, head), fields)
        for code, when, text, head, fields in zip(
            batch.codes, batch.times, batch.texts, batch.heads, batch.fields, strict=True
        )
    ]
    expected = []
    for line in lines:
        parsed = parse_logrus_text(line, NOW, HourCache())
        assert parsed is not None, line
        expected.append(entry(parsed, line))
    assert stored == expected
