"""The raw line splitter, as a pure core: chunks in, lines out."""

from __future__ import annotations

import tracemalloc
from itertools import pairwise

from hypothesis import given, settings
from hypothesis import strategies as st

from actors.logtree import MAX_LINE_LENGTH, LineSplitter


def feed_all(chunks: list[bytes], *, flush: bool = False) -> list[tuple[bytes, int]]:
    splitter = LineSplitter()
    out: list[tuple[bytes, int]] = []
    for chunk in chunks:
        lines, lengths = splitter.feed(chunk)
        out.extend(zip(lines, lengths, strict=True))
    if flush:
        lines, lengths = splitter.flush()
        out.extend(zip(lines, lengths, strict=True))
    return out


def test_lines_are_split_on_newline_and_crlf_is_stripped() -> None:
    assert feed_all([b"one\ntwo\r\nthree\n"]) == [(b"one", 3), (b"two", 3), (b"three", 5)]


def test_only_one_trailing_cr_is_stripped_and_inner_crs_are_kept() -> None:
    assert feed_all([b"a\r\r\nb\rc\n"]) == [(b"a\r", 2), (b"b\rc", 3)]


def test_empty_lines_are_lines() -> None:
    assert feed_all([b"\n\r\nx\n\n"]) == [(b"", 0), (b"", 0), (b"x", 1), (b"", 0)]


def test_a_line_without_trailing_newline_is_kept_until_more_data_arrives() -> None:
    splitter = LineSplitter()
    assert splitter.feed(b"first\nsecond half") == ([b"first"], [5])
    assert splitter.pending == len(b"second half")
    assert splitter.feed(b" and the rest\n") == ([b"second half and the rest"], [24])
    assert splitter.pending == 0


def test_flush_emits_the_partial_line_once() -> None:
    splitter = LineSplitter()
    splitter.feed(b"no newline\r")
    assert splitter.flush() == ([b"no newline"], [10])
    assert splitter.flush() == ([], [])


def test_a_line_delivered_one_byte_at_a_time_is_joined() -> None:
    data = b"hello world\r\nbye\n"
    assert feed_all([data[i : i + 1] for i in range(len(data))]) == [
        (b"hello world", 11),
        (b"bye", 3),
    ]


def test_crlf_split_across_two_chunks_is_stripped() -> None:
    assert feed_all([b"abc\r", b"\ndef\n"]) == [(b"abc", 3), (b"def", 3)]


def test_cr_ending_a_chunk_followed_by_crlf_keeps_one_cr() -> None:
    assert feed_all([b"abc\r", b"\r\n"]) == [(b"abc\r", 4)]


def test_a_long_line_in_one_chunk_is_cut_and_keeps_its_original_length() -> None:
    out = feed_all([b"short\n" + b"x" * 5000 + b"\nafter\n"])
    assert out == [(b"short", 5), (b"x" * MAX_LINE_LENGTH, 5000), (b"after", 5)]


def test_a_line_of_exactly_the_limit_plus_crlf_is_not_cut() -> None:
    line = b"y" * MAX_LINE_LENGTH
    assert feed_all([line + b"\r", b"\n"]) == [(line, MAX_LINE_LENGTH)]
    assert feed_all([line + b"\r\n"]) == [(line, MAX_LINE_LENGTH)]


def test_a_cut_line_ending_in_crlf_across_chunks_counts_without_the_cr() -> None:
    assert feed_all([b"z" * 3000 + b"\r", b"\n"]) == [(b"z" * MAX_LINE_LENGTH, 3000)]


def test_a_ten_mib_line_in_64k_chunks_is_cut_and_costs_constant_memory() -> None:
    chunk = (bytes(range(256)) * 256).replace(b"\n", b"n")  # 64 KiB of junk, no newline
    splitter = LineSplitter()
    tracemalloc.start()
    try:
        for _ in range(160):
            assert splitter.feed(chunk) == ([], [])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 16 * 1024
    assert splitter.pending == 10 * 2**20
    lines, lengths = splitter.feed(b"\n")
    assert lines == [chunk[:MAX_LINE_LENGTH]]
    assert lengths == [10 * 2**20]


def test_a_ten_mib_line_in_one_chunk_is_cut() -> None:
    assert feed_all([b"q" * (10 * 2**20) + b"\n"]) == [(b"q" * MAX_LINE_LENGTH, 10 * 2**20)]


def reference_lines(data: bytes) -> list[tuple[bytes, int]]:
    """The splitting rules, written the slow and obvious way."""
    out = []
    for line in data.split(b"\n")[:-1]:
        if line.endswith(b"\r"):
            line = line[:-1]
        out.append((line[:MAX_LINE_LENGTH], len(line)))
    return out


@settings(max_examples=200, deadline=None)
@given(
    pieces=st.lists(
        st.one_of(
            st.sampled_from([b"\n", b"\r", b"\r\n", b"a", b"\xff"]),
            st.integers(min_value=1, max_value=2100).map(lambda n: b"b" * n),
        ),
        max_size=40,
    ),
    cuts=st.lists(st.integers(min_value=0, max_value=100_000), max_size=8),
)
def test_any_chunking_of_a_stream_gives_the_same_lines(
    pieces: list[bytes], cuts: list[int]
) -> None:
    data = b"".join(pieces) + b"\n"
    bounds = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    chunks = [data[a:b] for a, b in pairwise(bounds)]
    assert feed_all(chunks) == reference_lines(data)
