"""logrus lines, as containerd writes them: text, or JSON with `--log-format json`.

Text (logrus' `TextFormatter` without colours)::

    time="2026-12-04T02:36:55.921039556Z" level=info msg="loading \\"x\\"..." type=io.c.v1

* The line starts with `time=` or `level=` and is a run of `key=value` pairs
  separated by spaces. A value is either bare
  (no space, no `"`) or a Go-quoted string (`strconv.Quote`: `\\"`, `\\\\`,
  `\\n`, `\\t`, `\\xNN`, `\\uNNNN` … are unescaped). A key without `=` or with
  an empty value has the value `""`. Anything else on the line (a stray `"`)
  makes it not logrus.
* `level` (trace, debug, info, warning/warn, error, fatal, panic) and `msg` are
  required; `time` is optional (RFC 3339, any zone, 0 to 9 fraction digits; a bad
  time makes the line not logrus). The other keys are the entry's fields, in order.
* At most `actors.logtree.parse.line.MAX_FIELDS` fields.

JSON (`JSONFormatter`): one object per line with string `level` and `msg`, an
optional string `time`; other members are fields, non-string values as their JSON
text. Nesting deeper than Python's recursion limit is not JSON here (None).
"""

from __future__ import annotations

import json
import re
from typing import Any

from actors.logtree.parse.line import MAX_FIELDS, ParsedLine
from actors.logtree.parse.times import HourCache, rfc3339_hour_start
from actors.supervisor.core.severity import Severity

__all__ = [
    "LEVELS",
    "parse_logrus",
    "parse_logrus_json",
    "parse_logrus_text",
    "parse_rfc3339",
    "unescape",
    "unquote",
]

#: Logrus level names -> severity (trace joins debug; panic joins fatal).
LEVELS = {
    "trace": Severity.DEBUG,
    "debug": Severity.DEBUG,
    "info": Severity.INFO,
    "warning": Severity.WARNING,
    "warn": Severity.WARNING,
    "error": Severity.ERROR,
    "fatal": Severity.FATAL,
    "panic": Severity.FATAL,
}

#: A `key[=value]` pair after optional spaces, or (third group) a byte that is not.
_PAIR = re.compile(rb' *([^ ="]+)(?:=("[^"\\]*(?:\\.[^"\\]*)*"|[^ "]*))?|(.)', re.DOTALL).findall

_ESCAPE = re.compile(
    rb"\\(?:x([0-9a-fA-F]{2})|u([0-9a-fA-F]{4})|U([0-9a-fA-F]{8})|([0-7]{3})|(.))", re.DOTALL
)
_SIMPLE = {
    b"n": b"\n",
    b"t": b"\t",
    b"r": b"\r",
    b"a": b"\a",
    b"b": b"\b",
    b"f": b"\f",
    b"v": b"\v",
    b"\\": b"\\",
    b'"': b'"',
    b"'": b"'",
}
_RFC3339 = re.compile(
    r"((\d{4})-(\d\d)-(\d\d)[Tt ](\d\d)):(\d\d):(\d\d)(?:\.(\d{1,9}))?"
    r"(?:([Zz])|([+-])(\d\d):(\d\d))"
).fullmatch
_UNSEEN = -1e300


def _unescape_one(m: re.Match[bytes]) -> bytes:
    hex2, u4, u8, octal, other = m.groups()
    if hex2 is not None:
        return bytes((int(hex2, 16),))
    if octal is not None:
        return bytes((int(octal, 8) & 0xFF,))
    if u4 is not None or u8 is not None:
        point = int(u4 or u8, 16)
        if point > 0x10FFFF:
            return m.group(0)
        return chr(point).encode("utf-8", "surrogatepass")
    return _SIMPLE.get(other, m.group(0))


def unquote(value: bytes) -> str:
    """A logrus value as text: a Go-quoted string unescaped, a bare one as is.

    Bytes that are not UTF-8 (from `\\xNN` escapes or raw) become `\\xNN` text.
    """
    if value[:1] == b'"':
        return unescape(value[1:-1])
    return value.decode("utf-8", "backslashreplace")


def unescape(text: bytes) -> str:
    """The text of a Go-quoted string, given without its quotes, unescaped (see `unquote`).

    When every backslash is one of a `\\"` (the common case: containerd quotes names in
    its messages), no backslash escapes another, and replacing them is the same as
    unescaping them one by one.
    """
    if b"\\" in text:
        if text.count(b"\\") == text.count(b'\\"'):
            text = text.replace(b'\\"', b'"')
        else:
            text = _ESCAPE.sub(_unescape_one, text)
    return text.decode("utf-8", "backslashreplace")


def parse_rfc3339(text: str, cache: HourCache) -> float | None:
    """Seconds since the epoch of an RFC 3339 time, or None when it is not one.

    The whole second (with the zone's offset) is an integer, exact as a float; the
    fraction, read as one decimal number, is added to it last, so that the result is
    the same float however the parts were found (`actors.logtree.parse.logrus_run`
    adds the fraction itself to the whole second this gives for the time without it).
    """
    m = _RFC3339(text)
    if m is None:
        return None
    key, year, month, day, hour, minute, second, frac, zulu, sign, oh, om = m.groups()
    hours = cache.hours
    bkey = key.encode()
    start = hours.get(bkey, _UNSEEN)
    if start == _UNSEEN:
        cache.make_room(1)
        start = hours[bkey] = rfc3339_hour_start(int(year), int(month), int(day), int(hour))
    if start is None or int(minute) > 59 or int(second) > 60:
        return None
    offset = 0 if zulu else (int(oh) * 3600 + int(om) * 60) * (1 if sign == "+" else -1)
    when = start + (int(minute) * 60 + int(second) - offset)
    if frac:
        when += float("0." + frac)
    return when


def parse_logrus_text(line: bytes, now: float, cache: HourCache) -> ParsedLine | None:
    """Parses one logrus text line; None when it is not one (see the module doc)."""
    if not line.startswith((b"time=", b"level=")):
        return None
    pairs = _PAIR(line)
    if len(pairs) > MAX_FIELDS + 3:
        return None
    values: dict[str, str] = {}
    for key, value, stray in pairs:
        if stray:
            return None
        values[key.decode("utf-8", "backslashreplace")] = unquote(value) if value else ""
    return _entry(values, now, cache)


def parse_logrus_json(line: bytes, now: float, cache: HourCache) -> ParsedLine | None:
    """Parses one logrus JSON line; None when it is not one (see the module doc)."""
    try:
        obj: Any = json.loads(line)
    except (ValueError, RecursionError):
        return None
    if type(obj) is not dict or len(obj) > MAX_FIELDS + 3:
        return None
    if type(obj.get("msg")) is not str or type(obj.get("level")) is not str:
        return None
    values = {k: v if type(v) is str else json.dumps(v, ensure_ascii=False) for k, v in obj.items()}
    return _entry(values, now, cache)


def parse_logrus(line: bytes, now: float, cache: HourCache) -> ParsedLine | None:
    """Parses a logrus line, JSON when it starts with `{`, else text."""
    if line[:1] == b"{":
        return parse_logrus_json(line, now, cache)
    return parse_logrus_text(line, now, cache)


def _entry(values: dict[str, str], now: float, cache: HourCache) -> ParsedLine | None:
    """Builds the entry from the line's key/value pairs; None without level or msg."""
    severity = LEVELS.get(values.pop("level", ""))
    text = values.pop("msg", None)
    if severity is None or text is None:
        return None
    stamp = values.pop("time", None)
    if len(values) > MAX_FIELDS:
        return None
    when = now if stamp is None else parse_rfc3339(stamp, cache)
    if when is None:
        return None
    return ParsedLine(severity, when, "", 0, 0, text, values or None)
