"""The column-wise logrus path gives exactly the text parser's entries, line for line.

`actors.logtree.parse.logrus_run` reads runs of lines of containerd's common shape;
`parse_logrus_text` reads any line. For every line the first takes, both must give
the same severity, time (the same float), message and fields: checked on the captures
of containerd 1.6 and 2.1, on chosen edge cases, and on random lines. A stream with
the column-wise path must store what a stream without it stores.
"""

from __future__ import annotations

import contextlib
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
from actors.logtree.parse.logrus import parse_logrus_text
from actors.logtree.parse.logrus_run import LogrusRun, logrus_matches, parse_logrus_run

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
                mock.patch.object(stream, "logrus_matches", lambda lines: [None] * len(lines))
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
    matches = logrus_matches(lines)
    taken = [i for i, m in enumerate(matches) if m is not None]
    if not taken:
        return 0
    common = [m for m in matches if m is not None]
    run = parse_logrus_run([lines[i] for i in taken], common, NOW, HourCache())
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
    assert all(m is not None for m in logrus_matches(lines))


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
        b"level=info msg=x",  # no time: the text parser's
        b'time="2026-12-04T02:36:55Z"  level=info msg=x',  # two spaces
        b'time="2026-12-04T02:36:55Z" level=info msg=x ',  # a trailing space
        b'time="2026-12-04T02:36:55Z" level=info msg=x msg=y',  # the later msg wins
        b'time="2026-12-04T02:36:55Z" level=info msg=x k=v level=error',
        b'time="2026-12-04T02:36:55Z" level=INFO msg=x',
        b'time="2026-12-04T02:36:55.1234567890Z" level=info msg=x',
        b'time="2026-12-04T02:36:55Z" level=info msg="x" ' + FIELDS_64 + b" k=v",
        b'time="2026-12-04T02:36:55Z" level=info msg="x"k=v',
    ],
)
def test_lines_of_other_shapes_are_left_to_the_text_parser(line: bytes) -> None:
    assert logrus_matches([line]) == [None]


def test_a_run_with_a_bad_time_is_left_to_the_text_parser_line_by_line() -> None:
    lines = [
        b'time="2026-12-04T02:36:55Z" level=info msg=a',
        b'time="2026-02-30T02:36:55Z" level=info msg=b',
    ]
    matches = logrus_matches(lines)
    assert parse_logrus_run(lines, matches, NOW, HourCache()) is None  # type: ignore[arg-type]
    assert parse_logrus_text(lines[1], NOW, HourCache()) is None


def test_an_escaped_backslash_that_makes_a_line_not_logrus_leaves_the_run_to_the_text_parser() -> (
    None
):
    # Go reads msg="a\\" then k=\"x" (a bare value, then a stray quote): not logrus. The
    # pattern took `a\\" k=\"x` for the message; the backslash left tells.
    line = rb'time="2026-12-04T02:36:55Z" level=info msg="a\\" k=\"x"'
    matches = logrus_matches([line])
    assert matches[0] is not None
    assert parse_logrus_text(line, NOW, HourCache()) is None
    assert parse_logrus_run([line], matches, NOW, HourCache()) is None  # type: ignore[arg-type]


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
        assert logrus_matches([line]) == [None]
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
