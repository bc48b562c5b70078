"""Text and dict rendering of entries."""

from __future__ import annotations

import json
from datetime import timedelta, timezone

from actors.logtree import (
    Entry,
    LeveledEntry,
    RawEntry,
    Severity,
    entry_to_dict,
    format_entries,
    format_entry,
    format_time,
)
from actors.logtree.format import format_fields
from tests.support.log_entries import T0, leveled


def raw(data: bytes, original_length: int | None = None, timestamp: float = T0) -> RawEntry:
    length = len(data) if original_length is None else original_length
    return RawEntry(
        seq=7, dn="root.containerd", data=data, original_length=length, timestamp=timestamp
    )


def test_a_leveled_entry_is_formatted_like_glog() -> None:
    entry = leveled(
        "root.containerd.preseed",
        "imported k8s.io/pause.tar",
        timestamp=T0 + 0.624512,
        file="preseed.py",
        line=88,
    )
    assert format_entry(entry) == (
        "root.containerd.preseed  I1114 22:13:20.624512 preseed.py:88] imported k8s.io/pause.tar"
    )


def test_each_severity_shows_its_letter() -> None:
    letters = [format_entry(leveled("root", "x", severity=s)).split("  ")[1][0] for s in Severity]
    assert letters == ["D", "I", "W", "E", "F"]


def test_every_line_of_a_multi_line_entry_gets_the_full_prefix() -> None:
    entry = leveled("root.a", "current tags:", " - one", "", file="tags.py", line=3)
    assert format_entry(entry).split("\n") == [
        "root.a  I1114 22:13:20.000000 tags.py:3] current tags:",
        "root.a  I1114 22:13:20.000000 tags.py:3]  - one",
        "root.a  I1114 22:13:20.000000 tags.py:3] ",
    ]


def test_a_raw_entry_is_marked_with_r_and_has_no_source_location() -> None:
    assert format_entry(raw(b'level=info msg="starting"')) == (
        'root.containerd  R1114 22:13:20.000000] level=info msg="starting"'
    )


def test_a_cut_raw_line_shows_its_original_length() -> None:
    assert format_entry(raw(b"x" * 4, original_length=10 * 2**20)) == (
        "root.containerd  R1114 22:13:20.000000] xxxx (cut, 10485760 bytes)"
    )


def test_invalid_utf8_in_raw_data_is_escaped_and_valid_utf8_is_kept() -> None:
    entry = raw(b"\xff\xfeok \xc3\xa9 \xe2\x82 \x00end")
    assert format_entry(entry) == (
        "root.containerd  R1114 22:13:20.000000] \\xff\\xfeok \u00e9 \\xe2\\x82 \\x00end"
    )


def test_microseconds_are_rounded_and_carry_into_the_seconds() -> None:
    assert format_time(T0 + 0.9999996) == "1114 22:13:21.000000"
    assert format_time(T0 + 0.0000004) == "1114 22:13:20.000000"
    assert format_time(T0 + 1.000002) == "1114 22:13:21.000002"


def test_another_time_zone_can_be_shown() -> None:
    assert format_time(T0, timezone(timedelta(hours=2))) == "1115 00:13:20.000000"


def test_entry_to_dict_of_a_raw_entry() -> None:
    assert entry_to_dict(raw(b"\xffab", original_length=2000)) == {
        "seq": 7,
        "dn": "root.containerd",
        "kind": "raw",
        "time": T0,
        "data": "\\xffab",
        "original_length": 2000,
        "cut": True,
        "fields": {},
    }


def test_entry_to_dict_of_a_leveled_entry() -> None:
    entry = LeveledEntry(
        dn="root.a",
        severity=Severity.WARNING,
        lines=("one", "two"),
        timestamp=T0 + 0.5,
        file="a.py",
        line=12,
        seq=3,
    )
    assert entry_to_dict(entry) == {
        "seq": 3,
        "dn": "root.a",
        "kind": "leveled",
        "time": T0 + 0.5,
        "severity": "WARNING",
        "file": "a.py",
        "line": 12,
        "source": "a.py:12",
        "pid": None,
        "fields": {},
        "lines": ["one", "two"],
        "message": "one\ntwo",
        "raw": None,
        "original_length": None,
    }


def test_entry_to_dict_of_junk_bytes_survives_a_json_round_trip() -> None:
    junk = bytes(range(256))
    decoded = json.loads(json.dumps(entry_to_dict(raw(junk)), ensure_ascii=False))
    assert decoded["data"] == junk.decode("utf-8", "backslashreplace")
    assert decoded["data"][:128] == junk[:128].decode("ascii")
    assert decoded["data"][128:] == "".join(f"\\x{b:02x}" for b in range(128, 256))


def test_format_entries_renders_like_format_entry_line_by_line() -> None:
    entries: list[Entry] = [
        raw(b"a"),
        raw(b"b"),
        raw(b"cut", original_length=5000),
        raw(b"later", timestamp=T0 + 1.5),
        RawEntry(seq=9, dn="root.other", data=b"\xff", original_length=1, timestamp=T0 + 1.5),
        leveled("root.a", "one", "two"),
        raw(b"after"),
    ]
    assert format_entries(entries) == "".join(format_entry(e) + "\n" for e in entries)
    assert format_entries([]) == ""


def test_terminal_control_characters_are_escaped_in_text_but_tabs_are_kept() -> None:
    spoof = b"ok\x1b[1A\x1b[2K\rroot.other  I1128 00:00:00.000000 x.py:1] forged\tend\x7f"
    expected_tail = (
        "ok\\x1b[1A\\x1b[2K\\x0droot.other  I1128 00:00:00.000000 x.py:1] forged\tend\\x7f"
    )
    assert format_entry(raw(spoof)).endswith("] " + expected_tail)
    assert format_entries([raw(spoof)]).endswith("] " + expected_tail + "\n")
    entry = leveled("root.a", "bell\x07 and\x1b]0;title\x07")
    assert format_entry(entry).endswith("] bell\\x07 and\\x1b]0;title\\x07")


def test_json_keeps_control_characters_as_json_escapes() -> None:
    doc = json.loads(json.dumps(entry_to_dict(raw(b"a\x1bb\rc"))))
    assert doc["data"] == "a\x1bb\rc"


def test_runsc_attribution_fields_come_last_with_ids_cut_to_12_in_text_whole_in_json() -> None:
    sandbox, container = "8c4b" + "0" * 60, "b9dd" + "1" * 60
    entry = RawEntry(3, "root.containerd.runsc", b"590: A <- P[24:4]", 17, T0)
    attributed = entry._replace(fields={"container": container, "sandbox": sandbox})
    assert entry_to_dict(attributed)["fields"] == {"container": container, "sandbox": sandbox}
    assert format_fields({"container": container, "k": "v w", "sandbox": sandbox}) == (
        ' k="v w" sandbox=8c4b00000000 container=b9dd11111111'
    )
    assert format_fields({"sandbox": "pod-a"}) == " sandbox=pod-a"
