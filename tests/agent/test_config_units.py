"""Durations and sizes as the config file writes them."""

from __future__ import annotations

import pytest

from actors.config.units import format_duration, format_size, parse_duration, parse_size

EXAMPLES = 'e.g. "500ms", "5s", "2m" or "1h30m"'


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("0", 0.0),
        ("0s", 0.0),
        ("500ms", 0.5),
        ("5s", 5.0),
        ("1.5s", 1.5),
        ("2m", 120.0),
        ("1h", 3600.0),
        ("1m30s", 90.0),
        ("1h2m3s4ms", 3723.004),
        ("8760h", 31536000.0),
    ],
)
def test_durations_are_read_in_seconds(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("5 s", f"'5 s' is not a duration; use {EXAMPLES}"),
        ("5", f"'5' is not a duration; use {EXAMPLES}"),
        ("", f"'' is not a duration; use {EXAMPLES}"),
        ("5S", f"'5S' is not a duration; use {EXAMPLES}"),
        ("1d", f"'1d' is not a duration; use {EXAMPLES}"),
        (".5s", f"'.5s' is not a duration; use {EXAMPLES}"),
        ("-5s", f"'-5s' is negative; use a duration >= 0, {EXAMPLES}"),
        ("+5s", f"'+5s' is not a duration: drop the sign; use {EXAMPLES}"),
        ("8761h", f"'8761h' is longer than a year; use {EXAMPLES}"),
        (5, f"5 is not a duration: a bare number has no unit; write a string, {EXAMPLES}"),
        (0.5, f"0.5 is not a duration: a bare number has no unit; write a string, {EXAMPLES}"),
        (True, f"True is not a duration; use {EXAMPLES}"),
        ([], f"[] is not a duration; use {EXAMPLES}"),
    ],
)
def test_bad_durations_say_what_is_wrong_and_what_to_write(value: object, message: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_duration(value)
    assert str(caught.value) == message


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0s"),
        (0.5, "500ms"),
        (5, "5s"),
        (90, "1m30s"),
        (3600, "1h"),
        (600, "10m"),
        (1.25, "1s250ms"),
    ],
)
def test_durations_are_written_so_that_they_read_back(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize(
    ("value", "size"),
    [(4096, 4096), ("4096B", 4096), ("64KiB", 65536), ("1MiB", 1 << 20), ("2GiB", 2 << 30)],
)
def test_sizes_are_read_in_bytes(value: object, size: int) -> None:
    assert parse_size(value) == size


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("1MB", '\'1MB\' is not a size; use a number of bytes or e.g. "64KiB", "1MiB"'),
        ("1 MiB", '\'1 MiB\' is not a size; use a number of bytes or e.g. "64KiB", "1MiB"'),
        ("1.5MiB", '\'1.5MiB\' is not a size; use a number of bytes or e.g. "64KiB", "1MiB"'),
        (-1, '-1 is negative; use a number of bytes or e.g. "64KiB", "1MiB"'),
        (1.0, '1.0 is not a size; use a number of bytes or e.g. "64KiB", "1MiB"'),
        (False, 'False is not a size; use a number of bytes or e.g. "64KiB", "1MiB"'),
    ],
)
def test_bad_sizes_say_what_to_write(value: object, message: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_size(value)
    assert str(caught.value) == message


def test_sizes_are_written_with_the_largest_binary_unit() -> None:
    assert [format_size(n) for n in (0, 100, 4096, 1 << 20, 3 << 30, 1536)] == [
        "0B",
        "100B",
        "4KiB",
        "1MiB",
        "3GiB",
        "1536B",
    ]
