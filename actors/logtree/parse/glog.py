"""glog/klog lines, as runsc and many Go programs write them.

Format::

    I1204 02:46:05.465477   25623 main.go:230] message
    ^^^^^ ^^^^^^^^^^^^^^^   ^^^^^ ^^^^^^^^^^^  ^^^^^^^
    level+MMDD  time        pid   file:line    message (the rest of the line)

* The level letter is ``I``, ``W``, ``E``, ``F`` or runsc's ``D`` (debug, see
  :mod:`actors.logtree.severity`).
* The fraction may have 1 to 9 digits or be missing; the pid column may be padded
  with any number of spaces; one space after ``]`` is dropped, the rest is the message.
* Year and zone are inferred (see :mod:`actors.logtree.parse.times`).
* Anything else — another letter, a bad date, no ``]`` — is not glog: None.
"""

from __future__ import annotations

import re
from functools import partial

from actors.logtree.parse.line import ParsedLine
from actors.logtree.parse.times import HourCache, glog_hour_start
from actors.logtree.severity import Severity

__all__ = ["parse_glog"]

_GLOG = re.compile(
    rb"([DIWEF])(\d{4} \d\d:\d\d:\d\d)(?:\.(\d{1,9}))? +(\d{1,10}) "
    rb"([^ :\]]{1,256}):(\d{1,9})\] ?"
).match
_UNSEEN = -1e300
"""Not a cached second (a real one is a finite time near now)."""
_SEVERITY = {ord(s.code): s for s in Severity}
_SCALE = [0.0] + [10.0**-n for n in range(1, 10)]
"""``_SCALE[n]`` turns an ``n``-digit fraction into seconds."""
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
            line[m.end() :].decode("utf-8", "backslashreplace"),
            None,
        )
    )


def _second_start(key: bytes, now: float) -> float | None:
    """Epoch seconds of a glog second (``b"MMDD HH:MM:SS"``), or None when it names none."""
    month, day, hour, minute, second = (int(key[i : i + 2]) for i in (0, 2, 5, 8, 11))
    start = glog_hour_start(month, day, hour, now)
    if start is None or minute > 59 or second > 60:
        return None
    return start + minute * 60 + second
