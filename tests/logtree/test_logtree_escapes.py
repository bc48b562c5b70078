"""Terminal escapes: no field of an entry reaches an output with a raw control or bidi character.

Field by field (a raw line; a logging call's message and source file; a glog line's
message, source file and continuation lines; a logrus line's message, keys and values,
raw and from Go escapes; a parsed entry's original line), each holding every character
SECURITY.md promises to escape, through every output: `format_entry`,
`format_entries`, the stderr sink, the stderr sink under the journal (`<N>` prefixes),
the JSON lines sink, `entry_to_json`, and `json.dumps(entry_to_dict(...))` as
`node-containerd logs --json` writes it. Text output keeps tab (it only moves the
cursor forward); JSON escapes it.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import pytest

from actors.logtree import (
    TERMINAL_UNSAFE,
    Entry,
    JsonLinesSink,
    LeveledEntry,
    LogTree,
    ParsedEntry,
    ParseFormat,
    RawEntry,
    Severity,
    StderrSink,
    StreamParser,
    entry_to_dict,
    entry_to_json,
    escape_terminal,
    format_entries,
    format_entry,
)

pytestmark = pytest.mark.timeout(60)

NOW = datetime(2026, 12, 5, 8, 0, 0).timestamp()
DN = "root.containerd.runsc"
#: How every output line of an entry starts: its DN (after a syslog priority under the journal).
PREFIX = re.compile(r"(<[0-7]>)?" + re.escape(DN) + "  [DIWEFR]")

#: What SECURITY.md promises: C0 controls but tab, DEL, C1 controls, bidi overrides and isolates.
PROMISED = frozenset(
    [*range(0x00, 0x09), *range(0x0A, 0x20), 0x7F, *range(0x80, 0xA0)]
    + [*range(0x202A, 0x202F), *range(0x2066, 0x206A)]
)
#: Every promised character, and tab, in one string.
EVIL = "".join(map(chr, sorted(PROMISED))) + "\t"
#: The same without the line ending characters, for what a line can hold as it is.
EVIL_LINE = EVIL.replace("\n", "").replace("\r", "")
#: `EVIL` as Go escapes in a quoted logrus value (they unquote to the characters).
EVIL_GO = "".join(f"\\u{ord(c):04x}" for c in EVIL).encode()
#: A raw byte that is not UTF-8 and a C1 control as UTF-8, for good measure.
EVIL_BYTES = EVIL_LINE.encode() + b"\xff\x9b"


def raw_unsafe(text: str) -> list[str]:
    """The promised characters found in `text`, as `U+XXXX`."""
    return [f"U+{ord(c):04X}" for c in text if ord(c) in PROMISED]


def parsed(fmt: ParseFormat, line: bytes, *more: bytes) -> ParsedEntry:
    """The entry a stream parser and the tree make of `line` and its continuation lines."""
    parser = StreamParser(fmt)
    parser.feed(b"".join(x + b"\n" for x in (line, *more)), NOW)
    parser.close_entry()
    batch = parser.take(keep_open=False)
    assert batch is not None
    tree = LogTree(clock=lambda: NOW)
    tree.write_parsed(DN, batch)
    (entry,) = tree.read(DN, backlog=None).backlog
    assert isinstance(entry, ParsedEntry), entry
    return entry


def raw_entry(data: bytes, original_length: int | None = None) -> RawEntry:
    length = len(data) if original_length is None else original_length
    return RawEntry(seq=1, dn=DN, data=data, original_length=length, timestamp=NOW)


def leveled(*, lines: tuple[str, ...] = ("m",), file: str = "x.py") -> LeveledEntry:
    return LeveledEntry(
        dn=DN, severity=Severity.ERROR, lines=lines, timestamp=NOW, file=file, line=7
    )


#: One entry per outside field, each field holding the promised characters.
FIELDS: dict[str, Callable[[], Entry]] = {
    "raw line": lambda: raw_entry(EVIL_BYTES),
    "raw line, cut": lambda: raw_entry((EVIL_BYTES * 20)[:1024], original_length=10_000),
    "logging call message": lambda: leveled(lines=(EVIL_LINE, "second " + EVIL_LINE)),
    "logging call file": lambda: leveled(file=EVIL),
    "glog message": lambda: parsed(ParseFormat.GLOG, b"E1204 02:46:05.1 7 a.go:1] " + EVIL_BYTES),
    "glog file": lambda: parsed(
        ParseFormat.GLOG, b"W1204 02:46:05.1 7 " + EVIL_BYTES.replace(b" ", b"") + b":42] m"
    ),
    "glog continuation lines": lambda: parsed(
        ParseFormat.GLOG, b"I1204 02:46:05.1 7 a.go:1] dump", EVIL_BYTES, b"\t" + EVIL_BYTES
    ),
    "logrus message": lambda: parsed(
        ParseFormat.LOGRUS, b'time="2026-12-04T02:36:55Z" level=info msg="' + EVIL_GO + b'"'
    ),
    "logrus message, raw bytes": lambda: parsed(
        ParseFormat.LOGRUS,
        b'time="2026-12-04T02:36:55Z" level=info msg="'
        + EVIL_BYTES.replace(b'"', b"").replace(b"\\", b"")
        + b'"',
    ),
    "logrus value": lambda: parsed(
        ParseFormat.LOGRUS, b'time="2026-12-04T02:36:55Z" level=warning msg=m k="' + EVIL_GO + b'"'
    ),
    "logrus bare value": lambda: parsed(
        ParseFormat.LOGRUS,
        b'time="2026-12-04T02:36:55Z" level=warning msg=m k=' + re.sub(b'[ "]', b"", EVIL_BYTES),
    ),
    "logrus key": lambda: parsed(
        ParseFormat.LOGRUS,
        b'time="2026-12-04T02:36:55Z" level=error msg=m '
        + re.sub(b'[ ="]', b"", EVIL_BYTES)
        + b"=v",
    ),
    "logrus JSON value and key": lambda: parsed(
        ParseFormat.LOGRUS,
        json.dumps({"level": "info", "msg": EVIL, EVIL: EVIL, "n": [EVIL]}).encode(),
    ),
    "Go panic line": lambda: parsed(ParseFormat.LOGRUS, b"panic: " + EVIL_BYTES),
}


def text_outputs(entry: Entry) -> dict[str, str]:
    """Every text rendering of `entry`, sinks included."""
    out = {"format_entry": format_entry(entry), "format_entries": format_entries([entry] * 2)}
    for journal in (False, True):
        tree = LogTree(clock=lambda: NOW)
        stream = io.StringIO()
        sink = StderrSink(tree, stream, min_severity=Severity.DEBUG, journal=journal)
        store(tree, entry)
        assert sink.stop(timeout=10) and sink.errors == 0
        out[f"stderr sink{', journal' if journal else ''}"] = stream.getvalue()
    return out


def store(tree: LogTree, entry: Entry) -> None:
    """Stores `entry` (or one equal to it but for `seq`) in `tree`."""
    if isinstance(entry, RawEntry):
        tree.write_raw(DN, entry.data.ljust(entry.original_length, b"x") + b"\n")
    elif isinstance(entry, LeveledEntry):
        tree.write_leveled(entry)
    else:
        parser = StreamParser(ParseFormat.LOGRUS if b"msg" in entry.head else ParseFormat.GLOG)
        parser.feed(entry.raw + b"\n", NOW)
        parser.close_entry()
        batch = parser.take(keep_open=False)
        assert batch is not None
        tree.write_parsed(DN, batch)


@pytest.mark.parametrize("field", FIELDS)
def test_no_text_output_holds_a_raw_control_or_bidi_character(field: str) -> None:
    entry = FIELDS[field]()
    for output, text in text_outputs(entry).items():
        lines = text.removesuffix("\n").split("\n")
        for line in lines:
            assert raw_unsafe(line) == [], f"{field}, {output}: {line!r}"
            # A newline in a field would start a line without the entry's prefix.
            assert PREFIX.match(line), f"{field}, {output}: {line!r}"


@pytest.mark.parametrize("field", FIELDS)
def test_no_json_output_holds_a_raw_control_or_bidi_character_and_the_text_is_kept(
    field: str, tmp_path: Path
) -> None:
    entry = FIELDS[field]()
    doc = entry_to_dict(entry)
    tree = LogTree(clock=lambda: NOW)
    sink = JsonLinesSink(tree, tmp_path / "log.jsonl", min_severity=Severity.DEBUG)
    store(tree, entry)
    assert sink.stop(timeout=10) and sink.errors == 0
    outputs = {
        "entry_to_json": entry_to_json(entry),
        "logs --json": json.dumps(doc),
        "JSON lines sink": (tmp_path / "log.jsonl").read_text(encoding="utf-8").removesuffix("\n"),
    }
    for output, text in outputs.items():
        assert raw_unsafe(text) == [] and "\t" not in text, f"{field}, {output}: {text!r}"
        assert "\n" not in text, f"{field}, {output}"
        decoded = json.loads(text)
        assert {k: v for k, v in decoded.items() if k != "seq"} == {
            k: v for k, v in doc.items() if k != "seq"
        }, f"{field}, {output}"


def test_the_escaped_class_is_exactly_what_security_md_promises() -> None:
    assert TERMINAL_UNSAFE == PROMISED
    assert (
        escape_terminal(EVIL)
        == "".join(f"\\x{ord(c):02x}" if ord(c) < 0x80 else f"\\u{ord(c):04x}" for c in EVIL[:-1])
        + "\t"
    )
    assert escape_terminal("plain é ü 日本 \U0001f600") == "plain é ü 日本 \U0001f600"
    assert escape_terminal("\x1b é 日本 \U0001f600 \u200b\u2028") == (
        "\\x1b é 日本 \U0001f600 \u200b\u2028"
    )
    # `escape_terminal` lets printable text through untouched: none of the set may be printable.
    assert not any(chr(c).isprintable() for c in TERMINAL_UNSAFE)


def test_a_forged_line_cannot_erase_or_reorder_the_prefix_of_its_entry() -> None:
    forged = "\x1b[2K\r\u202eroot.containerd  I1205 00:00:00.000000 x.go:1] hi\u202c"
    entry = parsed(ParseFormat.GLOG, b"I1204 02:46:05.1 7 a.go:1] " + forged.encode())
    assert format_entry(entry) == (
        f"{DN}  I1204 02:46:05.100000 a.go:1] "
        "\\x1b[2K\\x0d\\u202eroot.containerd  I1205 00:00:00.000000 x.go:1] hi\\u202c"
    )
