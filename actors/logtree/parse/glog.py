"""glog/klog lines, as runsc and many Go programs write them.

Format::

    I1204 02:46:05.465477   25623 main.go:230] message
    ^^^^^ ^^^^^^^^^^^^^^^   ^^^^^ ^^^^^^^^^^^  ^^^^^^^
    level+MMDD  time        pid   file:line    message (the rest of the line)

* The level letter is `I`, `W`, `E`, `F` or runsc's `D` (debug, see
  `actors.supervisor.core.severity`).
* The fraction may have 1 to 9 digits or be missing; the pid column may be padded
  with any number of spaces; one space after `]` is dropped, the rest is the message.
* Year and zone are inferred (see `actors.logtree.parse.times`).
* Anything else — another letter, a bad date, no `]` — is not glog: None.
* The message is returned as its byte offset in the line (it is the line's tail, as
  is): the child sends the line once, and the text is decoded only when shown.
"""

from __future__ import annotations

import re
from functools import partial
from operator import add, methodcaller
from typing import NamedTuple

from actors.logtree.parse.line import ParsedLine
from actors.logtree.parse.times import HourCache, glog_hour_start
from actors.supervisor.core.severity import Severity

__all__ = ["GlogRun", "glog_matches", "parse_glog", "parse_glog_run"]

_HEADER = (
    rb"([DIWEF])(\d{4} \d\d:\d\d:\d\d)(?:\.(\d{1,9}))? +(\d{1,10}) "
    rb"([^ :\]]{1,256}):(\d{1,9})\] ?"
)
_GLOG = re.compile(_HEADER).match
_GROUPS = methodcaller("groups")
_END = methodcaller("end")
#: Not a cached second (a real one is a finite time near now).
_UNSEEN = -1e300
_SEVERITY = {ord(s.code): s for s in Severity}
#: `_SCALE[n]` turns an `n`-digit fraction into seconds.
_SCALE = [0.0] + [10.0**-n for n in range(1, 10)]
_new = partial(tuple.__new__, ParsedLine)


def parse_glog(line: bytes, now: float, cache: HourCache) -> ParsedLine | None:
    """Parses one glog line (without its newline).

    Args:
        line: the line's bytes.
        now: the current time, for the year and for the cache.
        cache: the stream's time cache.

    Returns:
        The parts, or None when the line is not glog.
    """
    m = _GLOG(line)
    if m is None:
        return None
    code, key, frac, pid, file, lineno = m.groups()
    seconds = cache.hours
    when = seconds.get(key, _UNSEEN)
    if when == _UNSEEN:
        cache.check(now)
        when = seconds[key] = _second_start(key, now)
    if when is None:
        return None
    if frac:
        when += int(frac) * _SCALE[len(frac)]
    return _new(
        (
            _SEVERITY[code[0]],
            when,
            file.decode("utf-8", "backslashreplace"),
            int(lineno),
            int(pid),
            m.end(),
            None,
        )
    )


def _second_start(key: bytes, now: float) -> float | None:
    """Epoch seconds of a glog second (`b"MMDD HH:MM:SS"`), or None when it names none."""
    month, day, hour, minute, second = (int(key[i : i + 2]) for i in (0, 2, 5, 8, 11))
    start = glog_hour_start(month, day, hour, now)
    if start is None or minute > 59 or second > 60:
        return None
    return start + minute * 60 + second


class GlogRun(NamedTuple):
    """The parts of a run of glog lines, as columns."""

    #: The level letters, one byte per line.
    codes: bytes
    #: Each line's time, seconds since the Unix epoch.
    times: list[float]
    #: Each line's `(file, line, pid)` as the bytes the line gives.
    origins: list[tuple[bytes, bytes, bytes]]
    #: Where each line's message starts (the header's length).
    offsets: list[int]


def glog_matches(lines: list[bytes]) -> list[re.Match[bytes] | None]:
    """Each line's glog header match, or None for a line that is not glog (C loop)."""
    return list(map(_GLOG, lines))


def parse_glog_run(matches: list[re.Match[bytes]], now: float, cache: HourCache) -> GlogRun | None:
    """Parses a run of lines that all have a glog header, with C-level column work.

    The same results as `parse_glog` line by line.

    Args:
        matches: the lines' header matches (from `glog_matches`), none None.
        now: the current time, for the year and for the cache.
        cache: the stream's time cache.

    Returns:
        The run's columns, or None when a line names no valid time (parse those
        lines one by one).
    """
    codes, seconds, fractions, pids, files, lines = zip(*map(_GROUPS, matches), strict=True)
    known = cache.hours
    if not known.keys() >= set(seconds):
        cache.check(now)
        for key in set(seconds).difference(known):
            known[key] = _second_start(key, now)
    starts = list(map(known.get, seconds))
    if None in starts:
        return None
    digits = [b"" if f is None else f for f in fractions] if None in fractions else fractions
    times = list(map(add, starts, map(float, map(b"0.".__add__, digits))))
    return GlogRun(
        b"".join(codes),
        times,
        list(zip(files, lines, pids, strict=True)),
        list(map(_END, matches)),
    )
