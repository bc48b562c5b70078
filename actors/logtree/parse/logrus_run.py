"""The common shape of containerd's logrus text lines, parsed a run of lines at a time.

containerd 1.6 and 2.x write (logrus' `TextFormatter`, `RFC3339NanoFixed` times)::

    time="2026-12-05T07:04:41.733583924Z" level=info msg="skip \\"aufs\\"..." error="…" type=io.c
    time="2026-12-07T07:22:11.061001357Z" level=info msg="loading plugin" id=io.c.content type=io.c
    time="2026-12-07T07:22:11.086957040Z" level=info msg=serving... address=/run/c.sock

`actors.logtree.parse.logrus.parse_logrus_text` reads any logrus line, with a
Python-level step per pair. This module reads the lines of the common shape with one
regular expression call per block of lines (`logrus_parts`: one C loop that gives
each line's groups) and C-level work per column of a run of them (`parse_logrus_run`),
about seven times faster; the stream sends every other line to `parse_logrus_text`,
one by one.

The rule: for every line this module takes, it gives exactly the entry that
`parse_logrus_text` gives (tests compare them on the captures and on random lines).
So the common shape (`_COMMON`) is a subset of what the text parser reads:

* The line starts `time="…" level=L msg=`, exactly one space between the pairs, the
  time RFC 3339 with ASCII digits, `L` a logrus level name.
* Then the message and at most `MAX_FIELDS` ` key=value` pairs, each after exactly
  one space, and nothing else to the end of the line. A pair named `time`, `level`
  or `msg` (the text parser lets the later one win) is not of the shape after the
  third pair; among the first three, its line is parsed again by `parse_logrus_text`.
* A value is bare (`[^ "]*`, as the text parser's) or quoted. A quoted value runs to
  the first `"` that no backslash is just before (`_QUOTED`).

That last rule is Go's string (a backslash escapes the byte after it) as long as no
backslash escapes another: after `\\\\` a `"` ends the string. So the parts are
checked after the match, column by column: in quoted values `\\"` becomes `"`, and a
line where a backslash is left in one (an escaped backslash, another escape, a byte
that is not UTF-8, shown as `\\xNN`) is parsed again by `parse_logrus_text`. (A
bare value is the text parser's as it is, backslashes and all.) A backslash
taken for escaping a `"` that it does not escape is always left: two backslashes
come before that `"`.

The rest, per run:

* The lines are joined by `\\n` and decoded as one text (UTF-8, bad bytes as `\\xNN`)
  before they are matched, so the parts come out as text: the same text as decoding
  each part on its own (a UTF-8 sequence never spans an ASCII byte, and every
  boundary, `\\n` included, is ASCII).
* The pattern is matched at each line's start in turn (`findall`): a line of another
  shape is taken whole by the pattern's second alternative. Nothing of the shape but
  a quoted value can take a `\\n`, so a match only runs past its line's end inside a
  quoted value that its line does not close; then fewer matches than lines come back,
  and the lines are matched again one by one.
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

__all__ = ["LogrusRun", "logrus_parts", "parse_logrus_run"]

#: A quoted value's text: up to the next `"`, and past it while a backslash is just before it.
#: Possessive, so each byte is looked at once. (It may run past a line's end, over `\n`, in a
#: block of lines: `logrus_parts` finds that out.)
_QUOTED = r'(?>[^"]*+(?:(?<=\\)"[^"]*+)*+)'
#: A bare value (a line holds no `\n`: `[^ "]*`, as the text parser's). A negated set, not
#: the same set spelled as ranges up to U+10FFFF: matching with ranges is ~6% faster, but
#: each such set costs ~2.3 ms to compile (a 64K-entry map), 65 ms for the patterns below,
#: paid when the zygote, or a spawned host, imports this module, while containerd starts.
_BARE = r'[^\n "]*+'
#: A key of a pair after the message (`[^ ="]+`). A key the text parser would let win
#: (`time`, `level`, `msg`) is looked for afterwards among the first three, column-wise.
_ANY_KEY = r'[^\n ="]++'
#: A key of a pair after the third, not one that the text parser would let win.
_KEY = r"(?!(?:time|level|msg)=)" + _ANY_KEY
#: A value, captured: quoted (its text; `{q}` open) or bare (`{b}` open); the other group `""`.
_VALUE = r'(?:"(' + _QUOTED + r')"|(' + _BARE + "))"
#: The common shape, up to the line's end. Groups: time without fraction, fraction (with its
#: dot, or `""`), zone, level, the message (quoted text, bare text), key and value (quoted
#: text, bare text) of the first three pairs, then the other pairs. A pair is possessive, and
#: so is each optional pair: its extent follows from where it starts, so a pair given back could
#: only be matched again the same way, and a key that is not a pair's is looked at once.
_SHAPE = "".join(
    (
        r'time="(\d{4}-\d\d-\d\d[Tt ]\d\d:\d\d:\d\d)(\.\d{1,9}|)([Zz]|[+-]\d\d:\d\d)" ',
        r"level=(info|debug|warning|warn|error|trace|fatal|panic) ",
        r"msg=" + _VALUE,
        *(r"(?: (" + _ANY_KEY + ")=" + _VALUE + ")?+",) * 3,
        rf'((?: {_KEY}=(?:"{_QUOTED}"|{_BARE})){{0,{MAX_FIELDS - 3}}}+)',
    )
)
#: One line of the common shape.
_LINE = re.compile(_SHAPE + r"\Z", re.DOTALL | re.ASCII)
_COMMON = _LINE.match
#: Each line of a block (each ending in `\n`): the common shape's groups, or all `""` for a
#: line of another shape (the second alternative, which takes any line).
_BLOCK = re.compile("(?:" + _SHAPE + r"\n|[^\n]*+\n)", re.DOTALL | re.ASCII).findall
#: The pairs after the third (of a line without a backslash): key, opening quote, value text.
_MORE = re.compile(
    r" (" + _KEY + r')=(")?((?(2)' + _QUOTED + "|" + _BARE + r'))(?(2)")', re.DOTALL
).findall

#: The parts of a line of another shape.
_OTHER = ("",) * _LINE.groups
_DECODE = methodcaller("decode", "utf-8", "backslashreplace")
_KEY_VALUE = itemgetter(0, 2)
#: Keys that the text parser reads as the entry's own, not as fields: the later one wins.
_RESERVED = frozenset({"time", "level", "msg"})
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


def logrus_parts(lines: list[bytes]) -> list[tuple[str, ...]]:
    """Each line's parts of the common shape (regular expression groups, `""` when absent).

    The first part (the time) of a line of another shape is `""`; a line of the common
    shape always has one. The lines (none holding a `\\n`, as a `LineSplitter` gives
    them) are decoded and matched as one block, one C loop (see the module doc); a
    block where a match ran past a line's end is matched again line by line.
    """
    count = len(lines)
    if not count:
        return []
    found: list[tuple[str, ...]] = _BLOCK(
        b"\n".join(lines).decode("utf-8", "backslashreplace") + "\n"
    )
    if len(found) == count:
        return found
    return list(map(_line_parts, map(_DECODE, lines)))


def _line_parts(text: str) -> tuple[str, ...]:
    """The parts of one decoded line (see `logrus_parts`)."""
    m = None if "\n" in text else _COMMON(text)
    return _OTHER if m is None else m.groups("")


def parse_logrus_run(
    lines: list[bytes], parts: list[tuple[str, ...]], now: float, cache: HourCache
) -> LogrusRun | None:
    """Parses a run of lines of the common shape, with C-level column work.

    The same results as `actors.logtree.parse.logrus.parse_logrus_text` line by line.

    Args:
        lines: the lines.
        parts: their parts (from `logrus_parts`), each of the common shape.
        now: the current time (for lines parsed again, which have their own time too).
        cache: the stream's time cache.

    Returns:
        The run's columns, or None when a line names no valid time, or is not logrus
        after all (an escaped backslash before a `"`): parse those lines one by one.
    """
    seconds, fractions, zones, levels, mq, mb, k1, q1, b1, k2, q2, b2, k3, q3, b3, more = zip(
        *parts, strict=True
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
    quoted, v1, v2, v3, again = _unquoted(mq, q1, q2, q3)
    texts = list(map(add, quoted, mb)) if any(mb) else quoted
    fields: list[dict[str, str] | None] = [
        (
            (
                ({a: b or c, d: e or f, g: h or i} if g else {a: b or c, d: e or f})
                if d
                else {a: b or c}
            )
            if a
            else None
        )
        for a, b, c, d, e, f, g, h, i in zip(k1, v1, b1, k2, v2, b2, k3, v3, b3, strict=True)
    ]
    for column in (k1, k2, k3):
        if not _RESERVED.isdisjoint(column):
            again.update(compress(range(len(column)), map(_RESERVED.__contains__, column)))
    for i in compress(range(len(more)), more):
        pairs = fields[i]
        if pairs is None or "\\" in more[i]:
            again.add(i)
        else:
            pairs.update(map(_KEY_VALUE, _MORE(more[i])))
    digits = fractions if "" not in fractions else map("0".__add__, fractions)
    codes = bytes(map(_CODES.__getitem__, levels))
    times = list(map(add, starts, map(float, digits)))
    if again:
        edited = bytearray(codes)
        for i in sorted(again):
            parsed = parse_logrus_text(lines[i], now, cache)
            if parsed is None:  # an escaped backslash: not of the common shape after all
                return None
            edited[i] = ord(parsed.severity.code)
            times[i] = parsed.timestamp
            texts[i] = parsed.message(lines[i])
            fields[i] = parsed.fields
        codes = bytes(edited)
    return LogrusRun(codes, times, texts, fields)


def _unquoted(
    *columns: tuple[str, ...],
) -> tuple[list[str], list[str], list[str], list[str], set[int]]:
    """Quoted texts with `\\"` as `"`, and the lines where a backslash is left in one.

    Exact where no backslash is left (see the module doc). The texts hold no `\\n`, so
    a column is joined by it, replaced in one call and split again.
    """
    out: list[list[str]] = []
    again: set[int] = set()
    for column in columns:
        joined = "\n".join(column)
        if "\\" not in joined:
            out.append(list(column))
            continue
        joined = joined.replace('\\"', '"')
        texts = joined.split("\n")
        out.append(texts)
        if "\\" in joined:
            again.update(compress(range(len(texts)), map(str.__contains__, texts, repeat("\\"))))
    return out[0], out[1], out[2], out[3], again
