"""Rendering entries: glog-like text lines for people, dicts for JSON.

Text format (one output line per entry line, no trailing newline)::

    root.containerd.preseed  I1128 14:49:14.624512 preseed.py:88] imported k8s.io/pause.tar
    root.containerd  R1128 14:49:14.624512] level=info msg="starting containerd"
    root.containerd.runsc  R1128 14:49:14.700001] D1128 14:49:14.700 debug... (cut, 10485760 bytes)
    root.containerd.runsc  D1205 07:04:54.546508 specutils.go:75] Spec:
    root.containerd  W1205 07:04:41.733973] failed to load plugin error="devmapper not configured"

* DN, two spaces, then a glog header: the severity letter (`D`/`I`/`W`/`E`/`F`)
  or `R` for a raw line, month and day, time of day with microseconds, and for
  leveled entries with a source `file:line`; then `] ` and the text.
* The time is the entry's own: the logging call's, or the time a parsed line gave (a
  raw line's is the time it reached the tree).
* A parsed entry's fields follow its first line as ` key=value`, the value quoted
  (JSON style) when it is empty or holds a space, `"`, `=` or a control character.
* A leveled entry of several lines gives several output lines, each with the same full
  prefix, so every output line can be grepped on its own.
* A raw line that was cut ends with ` (cut, N bytes)`, N being its original length.
* Raw bytes that are not UTF-8 are shown as `\\xNN` escapes; formatting never raises.
* Times are UTC unless another time zone is given.

Terminal escapes: most of an entry comes from outside (a FIFO writer, containerd's
output, a runnable's messages), and it must not drive the terminal, the journal or a
pager that shows it. The characters that could (`TERMINAL_UNSAFE`: C0 controls but
tab, DEL, C1 controls U+0080-U+009F, and the bidi overrides and isolates U+202A-U+202E
and U+2066-U+2069) are escaped in one place per format, on the whole output line or
document, so every field is covered, the ones added later too:

* text (`format_entry`, `format_entries`): each output line goes through
  `escape_terminal`: `\\xNN` for C0 and DEL, `\\uNNNN` for C1 and bidi. Tab stays:
  it only moves the cursor forward (Go's goroutine dumps indent with it).
* JSON (`entry_to_json`): `json.dumps` escapes C0 itself; DEL, C1 and bidi become
  `\\u` escapes too, which decode to the same text.

Dict format (`entry_to_dict`), the schema of JSON lines sinks and `--json`
output; every key is always present for its kind:

====================  =========  ====================================================
key                   kind       value
====================  =========  ====================================================
`seq`               both       int, tree-wide order of storage
`dn`                both       str, e.g. `"root.containerd"`
`kind`              both       `"leveled"` or `"raw"`
`time`              both       float, seconds since the Unix epoch
`severity`          leveled    `"DEBUG"`, `"INFO"`, `"WARNING"`, `"ERROR"`, `"FATAL"`
`file`              leveled    str, source file base name (`""` when none)
`line`              leveled    int, source line (0 when unknown)
`source`            leveled    str, `"file:line"`, or `""` when the entry has none
`pid`               leveled    int, the writer's pid or thread id, or null
`fields`            leveled    object of str, a parsed line's `key=value` fields, and
                                 runsc's `sandbox` and `container` of the line
`lines`             leveled    list of str, the message lines
`message`           leveled    str, the lines joined with `"\\n"`
`raw`               leveled    str, the original line(s) of a parsed entry (UTF-8,
                                 bad bytes as `\\xNN`), null for a logging call
`original_length`   leveled    int, the first original line's length, or null
`data`              raw        str, the line as UTF-8 with bad bytes as `\\xNN`
`original_length`   raw        int, length in bytes before cutting
`cut`               raw        bool, true when `data` was cut from a longer line
`fields`            raw        object of str, what the stream's reader learned about
                                 the line (runsc's `sandbox`, `container`)
====================  =========  ====================================================
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime, tzinfo
from functools import lru_cache
from typing import Any

from actors.logtree.entry import Entry, LeveledEntry, ParsedEntry, RawEntry
from actors.supervisor.core.severity import Severity

__all__ = [
    "TERMINAL_UNSAFE",
    "decode_raw",
    "entry_to_dict",
    "entry_to_json",
    "escape_terminal",
    "format_entries",
    "format_entry",
    "format_time",
    "syslog_priority",
]


#: Code points that must not reach a terminal raw: C0 controls but tab, DEL, C1 controls, and the
#: bidi overrides and isolates. A line from the FIFO must not move a terminal's cursor, erase a
#: line, set a title, or reorder what is shown so that it fakes another entry.
TERMINAL_UNSAFE = frozenset(
    (
        *range(0x00, 0x09),
        *range(0x0A, 0x20),
        *range(0x7F, 0xA0),
        *range(0x202A, 0x202F),
        *range(0x2066, 0x206A),
    )
)


def _table(spell: Callable[[int], str]) -> list[str]:
    """A `str.translate` table: `spell(c)` for each `c` of `TERMINAL_UNSAFE`, the rest as is.

    A list indexed by code point (characters past its end stay as they are): a look-up
    that finds is several times faster than a dict's look-up that misses.
    """
    return [spell(c) if c in TERMINAL_UNSAFE else chr(c) for c in range(max(TERMINAL_UNSAFE) + 1)]


#: Text escapes: `\\xNN` below U+0080 (as for bytes that are not UTF-8), `\\uNNNN` above.
_TEXT_ESCAPES = _table(lambda c: f"\\x{c:02x}" if c < 0x80 else f"\\u{c:04x}")
#: JSON escapes: inside a JSON string, the same text.
_JSON_ESCAPES = _table(lambda c: f"\\u{c:04x}")


def escape_terminal(text: str) -> str:
    """`text` with the characters of `TERMINAL_UNSAFE` escaped (`\\xNN`, `\\uNNNN`).

    Text without them comes back as it is. Every character of the set is a control
    or format character, which `str.isprintable` refuses, so printable text (most
    lines) costs one C-level check.
    """
    if text.isprintable():
        return text
    return text.translate(_TEXT_ESCAPES)


def decode_raw(data: bytes) -> str:
    """Decodes raw log bytes as UTF-8, escaping invalid bytes as `\\xNN`."""
    return data.decode("utf-8", "backslashreplace")


def format_time(timestamp: float, tz: tzinfo | None = UTC) -> str:
    """Formats a Unix time as glog does: `MMDD HH:MM:SS.ffffff`.

    Args:
        timestamp: seconds since the Unix epoch.
        tz: time zone to show the time in; `None` for the local zone.
    """
    seconds, micros = divmod(round(timestamp * 1_000_000), 1_000_000)
    return f"{_seconds_text(seconds, tz)}.{micros:06d}"


@lru_cache(maxsize=256)
def _seconds_text(seconds: int, tz: tzinfo | None) -> str:
    """`MMDD HH:MM:SS` of a whole second; cached, as entries come in bursts."""
    return f"{datetime.fromtimestamp(seconds, tz):%m%d %H:%M:%S}"


def format_entry(entry: Entry, tz: tzinfo | None = UTC) -> str:
    """Renders an entry as one or more text lines joined by `\\n`.

    Args:
        entry: the entry.
        tz: time zone of the shown time; `None` for the local zone.

    Returns:
        The text, without a trailing newline, `TERMINAL_UNSAFE` characters escaped.
    """
    if isinstance(entry, RawEntry):
        return escape_terminal(_raw_prefix(entry, tz) + _raw_text(entry))
    return "\n".join(map(escape_terminal, _leveled_lines(entry, tz)))


def _raw_prefix(entry: RawEntry, tz: tzinfo | None) -> str:
    """`dn  R<time>] `: the prefix of a raw line."""
    return f"{entry.dn}  R{format_time(entry.timestamp, tz)}] "


def _raw_text(entry: RawEntry) -> str:
    """A raw line's text, not escaped: its bytes decoded, and whether it was cut."""
    text = entry.data.decode("utf-8", "backslashreplace")
    if entry.original_length > len(entry.data):
        text = f"{text} (cut, {entry.original_length} bytes)"
    return text


def _leveled_lines(entry: LeveledEntry | ParsedEntry, tz: tzinfo | None) -> list[str]:
    """The output lines of a leveled entry, not escaped, each with the full prefix."""
    when = format_time(entry.timestamp, tz)
    source = f" {entry.file}:{entry.line}" if entry.file or type(entry) is LeveledEntry else ""
    prefix = f"{entry.dn}  {entry.severity.code}{when}{source}] "
    lines = entry.lines
    if entry.fields:
        lines = (lines[0] + format_fields(entry.fields), *lines[1:])
    return [prefix + line for line in lines]


_NEEDS_QUOTES = re.compile(r'[\s"=\x00-\x1f\x7f]|^$').search


def format_fields(fields: Mapping[str, str]) -> str:
    """` key=value` for each field, values quoted JSON-style when they need it.

    runsc's `sandbox` and `container` come last, in that order, their IDs of 64 hex
    digits shown as their first `SHORT_ID` (as crictl shows them); JSON has them whole.
    """
    items = [(k, v) for k, v in fields.items() if k not in _ATTRIBUTION]
    items += [(k, fields[k]) for k in _ATTRIBUTION if k in fields]
    return "".join(
        f" {key}={json.dumps(value, ensure_ascii=False) if _NEEDS_QUOTES(value) else value}"
        for key, value in map(_shown, items)
    )


#: Characters of a sandbox or container ID shown in text.
SHORT_ID = 12
#: The fields of a runsc line's attribution (`actors.logtree.parse.runsc`), in shown order.
_ATTRIBUTION = ("sandbox", "container")
_LONG_ID = re.compile(r"[0-9a-f]{64}").fullmatch


def _shown(item: tuple[str, str]) -> tuple[str, str]:
    key, value = item
    if key in _ATTRIBUTION and _LONG_ID(value):
        return key, value[:SHORT_ID]
    return key, value


def syslog_priority(entry: Entry) -> int:
    """The syslog priority of an entry for `<N>` prefixes (journald's stderr).

    A leveled entry's is its severity's (`Severity.syslog`); a raw line has no
    severity and is INFO's (6).
    """
    if isinstance(entry, RawEntry):
        return Severity.INFO.syslog
    return entry.severity.syslog


def format_entries(entries: Iterable[Entry], tz: tzinfo | None = UTC) -> str:
    """Renders entries as `format_entry` does, each line ending in `\\n`.

    Faster than calling `format_entry` per entry: raw lines of one chunk share
    their DN and time, so their prefix is built once, and the lines are escaped
    with one `map`.

    Args:
        entries: the entries, in the order to show them.
        tz: time zone of the shown time; `None` for the local zone.
    """
    out: list[str] = []
    last_key: tuple[str, float] | None = None
    raw_prefix = ""
    for entry in entries:
        if isinstance(entry, RawEntry):
            key = (entry.dn, entry.timestamp)
            if key != last_key:
                last_key = key
                raw_prefix = _raw_prefix(entry, tz)
            out.append(raw_prefix + _raw_text(entry))
        else:
            out.extend(_leveled_lines(entry, tz))
    out.append("")
    return "\n".join(map(escape_terminal, out))


def entry_to_json(entry: Entry) -> str:
    """One line of JSON for an entry (`entry_to_dict`), `TERMINAL_UNSAFE` characters escaped.

    UTF-8 text as it is (`ensure_ascii=False`), but for `TERMINAL_UNSAFE`, which is
    written as `\\u` escapes: a reader of the JSON gets the same strings, a terminal
    showing the file gets no control character.
    """
    text = json.dumps(entry_to_dict(entry), ensure_ascii=False)
    return text if text.isprintable() else text.translate(_JSON_ESCAPES)


def entry_to_dict(entry: Entry) -> dict[str, Any]:
    """Returns a JSON-ready dict for an entry (schema in the module docstring)."""
    if isinstance(entry, RawEntry):
        return {
            "seq": entry.seq,
            "dn": entry.dn,
            "kind": "raw",
            "time": entry.timestamp,
            "data": decode_raw(entry.data),
            "original_length": entry.original_length,
            "cut": entry.original_length > len(entry.data),
            "fields": dict(entry.fields or {}),
        }
    return {
        "seq": entry.seq,
        "dn": entry.dn,
        "kind": "leveled",
        "time": entry.timestamp,
        "severity": entry.severity.name,
        "file": entry.file,
        "line": entry.line,
        "source": f"{entry.file}:{entry.line}" if entry.file else "",
        "pid": entry.pid or None,
        "fields": dict(entry.fields or {}),
        "lines": list(entry.lines),
        "message": entry.message,
        "raw": decode_raw(entry.raw) if isinstance(entry, ParsedEntry) else None,
        "original_length": entry.original_length if isinstance(entry, ParsedEntry) else None,
    }
