"""The common shape of containerd's logrus text lines, parsed a run of lines at a time.

containerd 1.6 and 2.x write (logrus' `TextFormatter`, `RFC3339NanoFixed` times)::

    time="2026-12-05T07:04:41.733583924Z" level=info msg="skip \\"aufs\\"..." error="…" type=io.c
    time="2026-12-07T07:22:11.061001357Z" level=info msg="loading plugin" id=io.c.content type=io.c
    time="2026-12-07T07:22:11.086957040Z" level=info msg=serving... address=/run/c.sock

`actors.logtree.parse.logrus.parse_logrus_text` reads any logrus line, with a
Python-level step per pair. This module reads the lines of the common shape with one
regular expression match per line (`logrus_matches`, a C loop) and C-level work per
column of a run of them (`parse_logrus_run`), about four times faster; the stream
sends every other line to `parse_logrus_text`, one by one.

The rule: for every line this module takes, it gives exactly the entry that
`parse_logrus_text` gives (tests compare them on the captures and on random lines).
So the common shape (`_COMMON`) is a subset of what the text parser reads:

* The line starts `time="…" level=L msg=`, exactly one space between the pairs, the
  time RFC 3339 with ASCII digits, `L` a logrus level name.
* Then the message and at most `MAX_FIELDS` ` key=value` pairs, each after exactly
  one space, none named `time`, `level` or `msg` (the text parser lets the later
  one win), and nothing else to the end of the line.
* A value is bare (`[^ "]*`, as the text parser's) or quoted. A quoted value runs to
  the first `"` that no backslash is just before (`_QUOTED`).

That last rule is Go's string (a backslash escapes the byte after it) as long as no
backslash escapes another: after `\\\\` a `"` ends the string. So the parts are
checked after the match, column by column: `\\"` becomes `"`, and a line where a
backslash is left anywhere (an escaped backslash, another escape, a byte that is
not UTF-8, shown as `\\xNN`) is parsed again by `parse_logrus_text`. A backslash
taken for escaping a `"` that it does not escape is always left: two backslashes
come before that `"`.

The rest, per run:

* Each line is decoded (UTF-8, bad bytes as `\\xNN`) before it is matched, so the parts
  come out as text: the same text as decoding each part on its own (a UTF-8
  sequence never spans an ASCII byte, and every boundary is ASCII).
* The match captures the message and the first three pairs; the dicts of fields are
  built from those columns, and the rarer pairs after the third are read by `_MORE`.
* The whole second with its zone is looked up in the stream's `HourCache`, filled
  by `parse_rfc3339` (the text parser's), and the fraction is added as one decimal
  number, as `parse_rfc3339` adds it: both give the same float.
"""

from __future__ import annotations

import re
from itertools import compress, repeat
from operator import add, itemgetter, methodcaller
from typing import NamedTuple

from actors.logtree.parse.line import MAX_FIELDS
from actors.logtree.parse.logrus import LEVELS, parse_logrus_text, parse_rfc3339
from actors.logtree.parse.times import HourCache

__all__ = ["LogrusRun", "logrus_matches", "parse_logrus_run"]

#: A quoted value's text: up to the next `"`, and past it while a backslash is just before it.
#: Possessive, so each byte is looked at once.
_QUOTED = r'(?>[^"]*+(?:(?<=\\)"[^"]*+)*+)'
#: A bare value: `[^ "]*`, spelled as ranges, which the regular expression engine checks faster
#: than a negated set.
_BARE = r"[\x00-\x1f!#-\U0010ffff]*+"
#: A key of a pair after the message (`[^ ="]+`, as ranges), not one that the text parser would
#: let win.
_KEY = r"(?!(?:time|level|msg)=)[\x00-\x1f!#-<>-\U0010ffff]++"
#: A pair after the message, captured: key, opening quote (or `""`), value text. `{q}` is the
#: number of its quote group.
_CAPTURED = r" (" + _KEY + r')=(")?((?({q})' + _QUOTED + "|" + _BARE + r'))(?({q})")'
#: The common shape. Groups: time without fraction, fraction (with its dot, or `""`), zone,
#: level, the message's opening quote (or `""`), message, key, quote and value of the first
#: three pairs, then the other pairs. Each pair is optional within the one before it, and
#: atomic: a pair's extent follows from where it starts, so a pair given back could only be
#: matched again the same way, and a key that is not a pair's is looked at once.
_COMMON = re.compile(
    "".join(
        (
            r'time="(\d{4}-\d\d-\d\d[Tt ]\d\d:\d\d:\d\d)(\.\d{1,9}|)([Zz]|[+-]\d\d:\d\d)" ',
            r"level=(trace|debug|info|warning|warn|error|fatal|panic) ",
            r'msg=(")?((?(5)' + _QUOTED + "|" + _BARE + r'))(?(5)")',
            "(?>(?:" + _CAPTURED.format(q=8),
            "(?>(?:" + _CAPTURED.format(q=11),
            "(?>(?:" + _CAPTURED.format(q=14),
            rf'((?: {_KEY}=(?:"{_QUOTED}"|{_BARE})){{0,{MAX_FIELDS - 3}}}+)',
            ")?))?))?)\\Z",
        )
    ),
    re.DOTALL | re.ASCII,
).match
#: The pairs after the third (of a line without a backslash): key, opening quote, value text.
_MORE = re.compile(
    r" (" + _KEY + r')=(")?((?(2)' + _QUOTED + "|" + _BARE + r'))(?(2)")', re.DOTALL
).findall

_GROUPS = methodcaller("groups", "")
_DECODE = methodcaller("decode", "utf-8", "backslashreplace")
_KEY_VALUE = itemgetter(0, 2)
#: Level name -> severity code byte.
_CODES = {name: ord(severity.code) for name, severity in LEVELS.items()}


class LogrusRun(NamedTuple):
    """The parts of a run of logrus lines of the common shape, as columns."""

    #: Severity code bytes (`b"DIWEF"`), one per line.
    codes: bytes
    #: Each line's time, seconds since the Unix epoch.
    times: list[float]
    #: Each line's message.
    texts: list[str]
    #: Each line's other pairs, or None when it has none.
    fields: list[dict[str, str] | None]


def logrus_matches(lines: list[bytes]) -> list[re.Match[str] | None]:
    """Each line's match of the common shape, or None for a line of another shape (C loop)."""
    return list(map(_COMMON, map(_DECODE, lines)))


def parse_logrus_run(
    lines: list[bytes], matches: list[re.Match[str]], now: float, cache: HourCache
) -> LogrusRun | None:
    """Parses a run of lines of the common shape, with C-level column work.

    The same results as `actors.logtree.parse.logrus.parse_logrus_text` line by line.

    Args:
        lines: the lines.
        matches: their matches (from `logrus_matches`), none None.
        now: the current time (for lines parsed again, which have their own time too).
        cache: the stream's time cache.

    Returns:
        The run's columns, or None when a line names no valid time, or is not logrus
        after all (an escaped backslash before a `"`): parse those lines one by one.
    """
    seconds, fractions, zones, levels, _, messages, k1, _, q1, k2, _, q2, k3, _, q3, more = zip(
        *map(_GROUPS, matches), strict=True
    )
    keys = list(map(add, seconds, zones))
    starts = list(map(cache.seconds.get, keys))
    if None in starts:
        missing = set(keys).difference(cache.seconds)
        cache.make_room(2 * len(missing))  # each whole second, and its hour (`parse_rfc3339`)
        for key in missing:
            cache.seconds[key] = parse_rfc3339(key, cache)
        starts = list(map(cache.seconds.get, keys))
        if None in starts:
            return None
    texts = _unquoted(messages)
    v1, v2, v3 = _unquoted(q1), _unquoted(q2), _unquoted(q3)
    fields: list[dict[str, str] | None] = [
        (({a: b, c: d, e: f} if e else {a: b, c: d}) if c else {a: b}) if a else None
        for a, b, c, d, e, f in zip(k1, v1, k2, v2, k3, v3, strict=True)
    ]
    again = _left(texts) | _left(v1) | _left(v2) | _left(v3)
    for i in compress(range(len(more)), more):
        pairs = fields[i]
        if pairs is None or "\\" in more[i]:
            again.add(i)
        else:
            pairs.update(map(_KEY_VALUE, _MORE(more[i])))
    for i in sorted(again):
        parsed = parse_logrus_text(lines[i], now, cache)
        if parsed is None:  # an escaped backslash: not of the common shape after all
            return None
        texts[i] = parsed.message(lines[i])
        fields[i] = parsed.fields
    digits = fractions if "" not in fractions else map("0".__add__, fractions)
    return LogrusRun(
        bytes(map(_CODES.__getitem__, levels)),
        list(map(add, starts, map(float, digits))),
        texts,
        fields,
    )


def _left(column: list[str] | tuple[str, ...]) -> set[int]:
    """The indexes of the texts of `column` that hold a backslash."""
    if "\\" not in "".join(column):
        return set()
    return set(compress(range(len(column)), map(str.__contains__, column, repeat("\\"))))


def _unquoted(column: tuple[str, ...]) -> list[str]:
    """Each text with `\\"` as `"` (exact where no backslash is left, see the module doc)."""
    if '\\"' not in "".join(column):
        return list(column)
    return list(map(str.replace, column, repeat('\\"'), repeat('"')))
