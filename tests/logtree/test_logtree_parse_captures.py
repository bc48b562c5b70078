"""The parsers on real output, captured once from the programs this node runs.

* ``data/containerd-1.6.log``: containerd 1.6.20 (Debian 12) starting with the test
  config of ``tests/support/containerd_daemon.py``, a ``ctr images pull bad//ref``, and its
  shutdown on SIGTERM (logrus text). ``data/containerd-1.6-json.log``: the same with
  ``[debug] format = "json"`` and ``level = "debug"``.
* ``data/containerd-2.1.log``, ``data/containerd-2.1-json.log``: the same with containerd
  2.1.9 (Debian sid, ``scripts/containerd-versions sid``): its plugin lines carry ``id=``
  and ``type=``, some messages are bare (``msg=serving...``), and the CRI plugin's
  config is one quoted JSON value full of ``\"``.
* ``data/runsc-do-debug.log``: ``runsc --rootless --network=none --debug do echo hi``:
  the ``do``, ``gofer`` and the first 250 lines of the ``boot`` debug logs (glog with
  runsc's ``D``, multi-line spec and seccomp dumps).

Paths of the capturing machine were replaced by ``/run/nc-containerd``.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from actors.logtree import LogTree, ParsedEntry, RawEntry, Severity
from actors.logtree.parse import Batch, ParseFormat, StreamParser

DATA = Path(__file__).parent / "data"
NOW = datetime(2026, 12, 5, 8, 0, 0).timestamp()
"""Parsing time: an hour after the captures, local time like the runsc lines."""


def parse_file(name: str, fmt: ParseFormat, chunk: int = 65536) -> list[ParsedEntry | RawEntry]:
    """Feeds a capture in chunks through a parser and stores the batches in a tree."""
    data = (DATA / name).read_bytes()
    parser = StreamParser(fmt)
    tree = LogTree(clock=lambda: NOW)
    for start in range(0, len(data), chunk):
        parser.feed(data[start : start + chunk], NOW)
        batch = parser.take()
        if batch is not None:
            tree.write_parsed("root.x", batch)
    parser.close_entry()
    last: Batch | None = parser.take(keep_open=False)
    if last is not None:
        tree.write_parsed("root.x", last)
    entries = tree.read("root.x", backlog=None).backlog
    assert all(isinstance(e, ParsedEntry | RawEntry) for e in entries)
    return entries  # type: ignore[return-value]


def original(entry: ParsedEntry | RawEntry) -> bytes:
    return entry.raw if isinstance(entry, ParsedEntry) else entry.data


@pytest.mark.parametrize(
    ("name", "fmt"),
    [
        ("containerd-1.6.log", ParseFormat.LOGRUS),
        ("containerd-1.6-json.log", ParseFormat.LOGRUS),
        ("containerd-2.1.log", ParseFormat.LOGRUS),
        ("containerd-2.1-json.log", ParseFormat.LOGRUS),
        ("runsc-do-debug.log", ParseFormat.GLOG),
        ("containerd-1.6.log", ParseFormat.AUTO),
        ("containerd-1.6-json.log", ParseFormat.AUTO),
        ("containerd-2.1.log", ParseFormat.AUTO),
        ("runsc-do-debug.log", ParseFormat.AUTO),
    ],
)
@pytest.mark.parametrize("chunk", [65536, 4096, 97])
def test_every_captured_line_parses_or_stays_raw_byte_for_byte(
    name: str, fmt: ParseFormat, chunk: int
) -> None:
    data = (DATA / name).read_bytes()
    entries = parse_file(name, fmt, chunk)
    assert b"\n".join(map(original, entries)) + b"\n" == data
    assert [e.seq for e in entries] == sorted(e.seq for e in entries)


def test_every_containerd_line_is_a_leveled_entry_with_containerds_own_time() -> None:
    for name in (
        "containerd-1.6.log",
        "containerd-1.6-json.log",
        "containerd-2.1.log",
        "containerd-2.1-json.log",
    ):
        entries = parse_file(name, ParseFormat.LOGRUS)
        assert all(isinstance(e, ParsedEntry) for e in entries), name
        times = [e.timestamp for e in entries]
        assert len(set(times)) > len(times) // 2, name


def test_chosen_containerd_text_lines_give_severity_time_message_and_fields() -> None:
    entries = parse_file("containerd-1.6.log", ParseFormat.LOGRUS)
    first = entries[0]
    assert isinstance(first, ParsedEntry)
    assert first.severity is Severity.INFO
    assert first.timestamp == pytest.approx(1796454281.725311943, abs=1e-6)
    assert first.text == "starting containerd"
    assert first.fields == {"revision": "1.6.20~ds1-1+deb12u3", "version": "1.6.20~ds1"}
    assert (first.file, first.line, first.pid) == ("", 0, 0)

    skip = entries[3]
    assert isinstance(skip, ParsedEntry)
    assert skip.text == 'skip loading plugin "io.containerd.snapshotter.v1.aufs"...'
    assert skip.fields == {
        "error": 'aufs is not supported (modprobe aufs failed: exec: "modprobe": '
        'executable file not found in $PATH ""): skip plugin',
        "type": "io.containerd.snapshotter.v1",
    }

    by_severity = {s: [e for e in entries if e.severity is s] for s in Severity}
    assert [e.text for e in by_severity[Severity.WARNING]] == [
        "failed to load plugin io.containerd.snapshotter.v1.devmapper",
        "could not use snapshotter devmapper in metadata plugin",
    ]
    (error,) = by_severity[Severity.ERROR]
    assert isinstance(error, ParsedEntry)
    assert error.text.startswith("failed to load cni during init")
    assert error.fields == {
        "error": "cni config load failed: no network config found in /etc/cni/net.d: "
        "cni plugin not initialized: failed to load cni config"
    }
    assert entries[-1].text == "Stream server stopped"  # type: ignore[union-attr]


def test_chosen_containerd_json_lines_give_the_same_parts_as_text() -> None:
    entries = parse_file("containerd-1.6-json.log", ParseFormat.LOGRUS)
    first = entries[0]
    assert isinstance(first, ParsedEntry)
    assert (first.severity, first.text) == (Severity.INFO, "starting containerd")
    assert first.timestamp == pytest.approx(1796454285.770668329, abs=1e-6)
    assert first.fields == {"revision": "1.6.20~ds1-1+deb12u3", "version": "1.6.20~ds1"}
    counts = {s: sum(1 for e in entries if e.severity is s) for s in Severity}  # type: ignore[union-attr]
    assert counts == {
        Severity.DEBUG: 5,
        Severity.INFO: 59,
        Severity.WARNING: 2,
        Severity.ERROR: 1,
        Severity.FATAL: 0,
    }


def test_chosen_containerd_2_lines_give_ids_bare_messages_and_the_quoted_cri_config() -> None:
    entries = parse_file("containerd-2.1.log", ParseFormat.LOGRUS)
    assert all(isinstance(e, ParsedEntry) for e in entries)
    parsed = [e for e in entries if isinstance(e, ParsedEntry)]
    first = parsed[0]
    assert (first.severity, first.text) == (Severity.INFO, "starting containerd")
    assert first.fields == {"revision": "", "version": "2.1.9+unknown"}
    skip = parsed[7]
    assert skip.timestamp == pytest.approx(1796628131.063258186, abs=1e-6)
    assert (skip.text, skip.fields) == (
        "skip loading plugin",
        {
            "error": "no scratch file generator: skip plugin",
            "id": "io.containerd.snapshotter.v1.blockfile",
            "type": "io.containerd.snapshotter.v1",
        },
    )
    serving = [e for e in parsed if e.text == "serving..."]
    assert [e.fields for e in serving] == [
        {"address": "/run/nc-containerd/containerd.sock.ttrpc"},
        {"address": "/run/nc-containerd/containerd.sock"},
    ]
    (cri,) = [e for e in parsed if e.text == "starting cri plugin"]
    assert cri.fields is not None
    assert cri.fields["config"].startswith('{"containerd":{"defaultRuntimeName":"runc",')


def test_chosen_runsc_lines_give_severity_local_time_pid_and_source() -> None:
    entries = parse_file("runsc-do-debug.log", ParseFormat.GLOG)
    first = entries[0]
    assert isinstance(first, ParsedEntry)
    assert first.severity is Severity.INFO
    assert first.timestamp == pytest.approx(datetime(2026, 12, 5, 7, 4, 54, 546402).timestamp())
    assert (first.file, first.line, first.pid) == ("main.go", 216, 6418)
    assert first.text == "***************************"
    debug = [e for e in entries if isinstance(e, ParsedEntry) and e.severity is Severity.DEBUG]
    warnings = [e for e in entries if isinstance(e, ParsedEntry) and e.severity is Severity.WARNING]
    assert len(debug) > 200 and len(warnings) == 6
    assert not any(isinstance(e, ParsedEntry) and e.fields for e in entries)


def test_runscs_multi_line_spec_dump_stays_with_the_entry_that_started_it() -> None:
    entries = parse_file("runsc-do-debug.log", ParseFormat.GLOG)
    specs = [e for e in entries if isinstance(e, ParsedEntry) and e.text == "Spec:"]
    assert len(specs) == 3
    for spec in specs:
        lines = spec.lines
        assert lines[0] == "Spec:" and lines[1] == "{" and lines[-1] == "}"
        assert '  "ociVersion": "",' in lines
        assert (spec.file, spec.line) == ("specutils.go", 75)
    dumps = [e for e in entries if isinstance(e, ParsedEntry) and e.text == "Seccomp program dump:"]
    # 406 lines of the first dump up to "Seccomp filters installed."; the capture ends
    # 85 lines into the second.
    assert [len(d.lines) for d in dumps] == [1 + 406, 1 + 85]
    assert dumps[0].lines[1:3] == ("0: A <- P[4:4]", "1: pc += (A == 3221225534) ? 1 [3] : 0 [2]")
