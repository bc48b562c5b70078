"""Properties of the parsers, on any bytes: they never raise and never lose a byte."""

from __future__ import annotations

from datetime import datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from actors.logtree import LogTree, ParsedEntry, RawEntry
from actors.logtree.parse import PARSE_LIMIT, HourCache, ParseFormat, StreamParser, parse_line

NOW = datetime(2026, 12, 5, 8, 0, 0).timestamp()
PROPS = settings(max_examples=400, deadline=None, derandomize=True, database=None)

#: Pieces that steer random lines into the parsers' interesting paths.
_PIECES = [
    b"I1204 02:46:05.465477   25623 main.go:230] ",
    b"D1231 23:59:59.9 1 x.go:1]",
    b"W0229 00:00:00 1 a:1] ",
    b'time="2026-12-04T02:36:55.921039556Z" ',
    b'time="2026-13-04T02:36:55+01:00" ',
    b"level=info ",
    b"level=panic ",
    b'msg="a \\"b\\" \\\\ \\x41 \\u00e9 \\U0010FFFF \\777"',
    b"msg=bare ",
    b"k= v ",
    b'"',
    b"\\",
    b'{"level":"error","msg":"m","time":"2026-12-04T02:36:55Z","n":[1,{"x":null}]}',
    b"{",
    b"panic: ",
    b"goroutine 1 [running]:",
    b"\t",
    b"\r",
    b"\xff\xfe",
    b"\x1b[2J",
    b" ",
]
lines = st.lists(st.sampled_from(_PIECES) | st.binary(max_size=40), max_size=12).map(
    lambda parts: b"".join(parts).replace(b"\n", b" ")
)
formats = st.sampled_from(list(ParseFormat))


@PROPS
@given(fmt=formats, line=lines)
def test_parsing_a_line_never_raises_and_a_stream_keeps_it_byte_for_byte(
    fmt: ParseFormat, line: bytes
) -> None:
    parse_line(fmt, line, NOW, HourCache())
    if fmt is ParseFormat.RAW:
        return
    parser = StreamParser(fmt)
    parser.feed(line + b"\n", NOW)
    parser.close_entry()
    batch = parser.take(keep_open=False)
    assert batch is not None and len(batch) == 1
    line = line.removesuffix(b"\r")  # the line ending is CRLF: not part of the line
    if batch.heads:
        assert batch.heads == [line[:PARSE_LIMIT]] and batch.mores == [b""]
    else:
        assert batch.raws == [[0, line[:1024], len(line)]]


@PROPS
@given(
    fmt=formats.filter(lambda f: f is not ParseFormat.RAW),
    text=st.lists(lines, max_size=20),
    cuts=st.lists(st.integers(min_value=0, max_value=400), max_size=6),
)
def test_a_stream_in_any_chunks_is_stored_as_its_lines_in_order(
    fmt: ParseFormat, text: list[bytes], cuts: list[int]
) -> None:
    data = b"".join(line[:900] + b"\n" for line in text)
    bounds = sorted({0, len(data), *(c for c in cuts if c < len(data))})
    parser = StreamParser(fmt)
    tree = LogTree(clock=lambda: NOW)
    for start, end in zip(bounds, bounds[1:], strict=False):
        parser.feed(data[start:end], NOW)
        batch = parser.take()
        if batch is not None:
            tree.write_parsed("root.p", batch)
    parser.close_entry()
    batch = parser.take(keep_open=False)
    if batch is not None:
        tree.write_parsed("root.p", batch)
    stored = tree.read("root.p", backlog=None).backlog
    originals = [e.raw if isinstance(e, ParsedEntry) else e.data for e in stored]
    assert all(isinstance(e, ParsedEntry | RawEntry) for e in stored)
    assert b"".join(o + b"\n" for o in originals) == data.replace(b"\r\n", b"\n")
