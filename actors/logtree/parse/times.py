"""Turning the time text of a log line into seconds since the Unix epoch: pure, cached.

* glog (`I1205 07:04:54.546508`) has no year and no zone. The time is read in the
  local time zone of the parsing process (the writer runs on the same host), and the
  year is the one of `now - 1`, `now` or `now + 1` that puts the time closest to
  `now`: a line written on 31 December and parsed on 1 January is last year's, a
  line from a clock running a little ahead on 31 December is next year's. (Monogon's
  `KLogParser` corrects only the first case and drops lines more than an hour ahead;
  we keep every line: a time is data, never a reason to drop.)
* logrus (`2026-12-04T02:36:55.921039556Z`) is RFC 3339: the zone is in the text.
* Fractions of any length (1 to 9 digits) are read exactly; the result is a float,
  whose resolution near today is about 0.2 µs.

Speed: the epoch of each second (glog, and RFC 3339 in runs of logrus lines) or hour
(RFC 3339) seen is cached per parser, bounded, so a line costs a dictionary look-up
and a few integer conversions.
"""

from __future__ import annotations

import calendar
from datetime import datetime

__all__ = ["HourCache", "glog_hour_start", "rfc3339_hour_start"]

#: Hours kept in one cache before it is emptied (a hostile stream cannot grow it).
_CACHE_LIMIT = 4096

#: A glog cache is emptied when `now` moved this far since its first entry, so the year choice
#: follows the clock across a New Year.
_RECHECK_SECONDS = 3600.0


class HourCache:
    """Epoch seconds of seconds or hours, keyed by their text as the line gives it."""

    __slots__ = ("hours", "seconds", "since")

    def __init__(self) -> None:
        #: Time text (glog `b"1205 07:04:54"`, RFC 3339 `b"2026-12-05T07"`) -> epoch seconds of
        #: its start, or None when the text names no valid time.
        self.hours: dict[bytes, float | None] = {}
        #: RFC 3339 whole seconds with their zone (`"2026-12-05T07:04:41Z"`) -> epoch seconds, or
        #: None when the text names no valid time (`actors.logtree.parse.logrus_run`).
        self.seconds: dict[str, float | None] = {}
        #: `now` when the first entry was added (glog's year choice depends on it).
        self.since = 0.0

    def make_room(self, count: int) -> None:
        """Empties the cache when `count` more entries would pass its bound."""
        if len(self.hours) + len(self.seconds) + count > _CACHE_LIMIT:
            self.hours.clear()
            self.seconds.clear()

    def check(self, now: float) -> None:
        """Empties the cache when it is full or `now` moved too far since it filled."""
        if len(self.hours) >= _CACHE_LIMIT or abs(now - self.since) >= _RECHECK_SECONDS:
            self.hours.clear()
            self.seconds.clear()
            self.since = now


def glog_hour_start(month: int, day: int, hour: int, now: float) -> float | None:
    """Epoch seconds of a glog hour (local time) in the year that puts it nearest `now`.

    Args:
        month: 1 to 12.
        day: 1 to 31.
        hour: 0 to 23.
        now: the current time, seconds since the Unix epoch.

    Returns:
        The hour's start, or None when no year of the three has that date (`0230`, or
        `0229` with no leap year near).
    """
    year = datetime.fromtimestamp(now).year
    best: float | None = None
    for candidate in (year, year - 1, year + 1):
        try:
            start = datetime(candidate, month, day, hour).timestamp()
        except (ValueError, OverflowError):
            continue
        if best is None or abs(start - now) < abs(best - now):
            best = start
    return best


def rfc3339_hour_start(year: int, month: int, day: int, hour: int) -> float | None:
    """Epoch seconds of an hour given in UTC, or None when the date is invalid."""
    try:
        datetime(year, month, day, hour)
    except ValueError:
        return None
    return float(calendar.timegm((year, month, day, hour, 0, 0, 0, 0, 0)))
