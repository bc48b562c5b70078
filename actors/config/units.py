"""Quantities with units in the config file: durations and byte sizes.

Rules:
    * A duration is a string of one or more `<number><unit>` terms, units `h`,
      `m`, `s`, `ms` (`"500ms"`, `"5s"`, `"2m"`, `"1h30m"`, `"1.5s"`),
      or the bare string `"0"`, as Go's `time.ParseDuration` reads them. A bare
      TOML number is refused: `5` could mean seconds or milliseconds, so the unit
      must be written. Signs are refused too (no policy knob can be negative), and
      so is anything longer than a year (no timer needs that; it would only hide a
      typo like `"6000000h"`) or, but for zero, shorter than a millisecond (no
      timer is that fine; `"0.000001s"` is a typo or a probe).
    * A size is a TOML integer of bytes, or a string `<integer><unit>` with a
      binary unit `B`, `KiB`, `MiB`, `GiB` (`"64KiB"`, `"1MiB"`).
      Decimal units (`KB`, `MB`) are refused as ambiguous.
    * Every error is a `ValueError` whose message starts with the offending value
      (`!r`) and says what is allowed, so that the config loader only prefixes it
      with the file and the key.

This module is pure: no I/O.
"""

from __future__ import annotations

import re

__all__ = [
    "MAX_DURATION",
    "MIN_DURATION",
    "format_duration",
    "format_size",
    "parse_duration",
    "parse_size",
]

#: The longest duration accepted, in seconds (365 days).
MAX_DURATION = 365 * 24 * 3600.0
#: The shortest duration accepted besides zero, in seconds (1 ms).
MIN_DURATION = 0.001

_DURATION_UNITS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
_DURATION_TERM = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")
_DURATION = re.compile(r"(?:\d+(?:\.\d+)?(?:ms|h|m|s))+")
_DURATION_EXAMPLES = 'e.g. "500ms", "5s", "2m" or "1h30m"'

_SIZE_UNITS = {"B": 1, "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30}
_SIZE = re.compile(r"(\d+)(B|KiB|MiB|GiB)")
_SIZE_HINT = 'use a number of bytes or e.g. "64KiB", "1MiB"'


def parse_duration(value: object) -> float:
    """Reads a config duration.

    Args:
        value: what the TOML file holds for the key.

    Returns:
        The duration in seconds, >= 0.

    Raises:
        ValueError: `value` is not a duration string; the message starts with
            `value!r` and says what is allowed.
    """
    if isinstance(value, bool) or not isinstance(value, str):
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            raise ValueError(
                f"{value!r} is not a duration: a bare number has no unit; "
                f"write a string, {_DURATION_EXAMPLES}"
            )
        raise ValueError(f"{value!r} is not a duration; use {_DURATION_EXAMPLES}")
    if value == "0":
        return 0.0
    if value[:1] in ("-", "+") and _DURATION.fullmatch(value[1:]):
        if value[0] == "-":
            raise ValueError(f"{value!r} is negative; use a duration >= 0, {_DURATION_EXAMPLES}")
        raise ValueError(f"{value!r} is not a duration: drop the sign; use {_DURATION_EXAMPLES}")
    if not _DURATION.fullmatch(value):
        raise ValueError(f"{value!r} is not a duration; use {_DURATION_EXAMPLES}")
    seconds = sum(
        float(number) * _DURATION_UNITS[unit] for number, unit in _DURATION_TERM.findall(value)
    )
    if seconds > MAX_DURATION:
        raise ValueError(f"{value!r} is longer than a year; use {_DURATION_EXAMPLES}")
    if 0 < seconds < MIN_DURATION:
        raise ValueError(
            f'{value!r} is shorter than a millisecond; use "0" or at least "1ms", '
            f"{_DURATION_EXAMPLES}"
        )
    return seconds


def format_duration(seconds: float) -> str:
    """Writes seconds as the shortest duration string `parse_duration` reads back.

    Whole hours, minutes and seconds become `h`/`m`/`s` terms; a remainder
    below one second becomes milliseconds (`0.5` → `"500ms"`, `90` →
    `"1m30s"`, `0` → `"0s"`).
    """
    millis = round(seconds * 1000)
    if millis == 0:
        return "0s"
    hours, millis = divmod(millis, 3_600_000)
    minutes, millis = divmod(millis, 60_000)
    secs, millis = divmod(millis, 1000)
    terms = [(hours, "h"), (minutes, "m"), (secs, "s"), (millis, "ms")]
    return "".join(f"{n}{unit}" for n, unit in terms if n)


def parse_size(value: object) -> int:
    """Reads a config byte size.

    Args:
        value: what the TOML file holds for the key: an integer of bytes or a
            string with a binary unit.

    Returns:
        The size in bytes (may be 0 or negative only if given as an integer; the
        caller checks bounds).

    Raises:
        ValueError: `value` is not a size; the message starts with `value!r`.
    """
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 0:
            raise ValueError(f"{value!r} is negative; {_SIZE_HINT}")
        return value
    if isinstance(value, str):
        m = _SIZE.fullmatch(value)
        if m:
            return int(m.group(1)) * _SIZE_UNITS[m.group(2)]
    raise ValueError(f"{value!r} is not a size; {_SIZE_HINT}")


def format_size(size: int) -> str:
    """Writes bytes with the largest binary unit that divides them (`"1MiB"`)."""
    for unit in ("GiB", "MiB", "KiB"):
        if size and size % _SIZE_UNITS[unit] == 0:
            return f"{size // _SIZE_UNITS[unit]}{unit}"
    return f"{size}B"
