"""Helpers for the log tree tests: a fake clock, an entry builder, recorded runsc logs."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from actors.logtree import Entry, LeveledEntry, RawEntry, Severity
from actors.logtree.parse import ParseFormat, StreamParser
from actors.logtree.parse.runsc import RunscAttribution
from messages.wire import ParsedBatch

T0 = 1_700_000_000.0
"""2023-11-14 22:13:20 UTC, the fake clock's start."""


class FakeClock:
    """A wall clock that only moves when told to."""

    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def leveled(
    dn: str,
    *lines: str,
    severity: Severity = Severity.INFO,
    timestamp: float = T0,
    file: str = "main.py",
    line: int = 1,
) -> LeveledEntry:
    """A leveled entry with sensible defaults; one line ``message`` unless given."""
    return LeveledEntry(
        dn=dn,
        severity=severity,
        lines=lines or ("message",),
        timestamp=timestamp,
        file=file,
        line=line,
    )


def raw_data(entries: Iterable[Entry | None]) -> list[bytes]:
    """The data of raw entries; fails on anything else."""
    out = []
    for entry in entries:
        assert isinstance(entry, RawEntry), entry
        out.append(entry.data)
    return out


def texts(entries: Iterable[Entry]) -> list[str]:
    """Raw data decoded, or leveled messages, in order."""
    return [e.data.decode() if isinstance(e, RawEntry) else e.message for e in entries]


#: The recorded runsc logs of real pods (`tests/logtree/data/runsc-*.log.gz`).
RUNSC_DATA = Path(__file__).resolve().parents[1] / "logtree" / "data"
#: {recording: {"pods": [{"sandbox": ID, "container": ID}], "how": what ran}}.
RUNSC_PODS: dict[str, Any] = json.loads((RUNSC_DATA / "runsc-pods.json").read_text())


def runsc_recording(name: str) -> bytes:
    """The bytes of a recorded runsc log, e.g. `runsc-pod-beside-pod.log.gz`."""
    return gzip.decompress((RUNSC_DATA / name).read_bytes())


def attributed_batches(data: bytes, chunk: int = 65536, now: float = T0) -> list[ParsedBatch]:
    """`data` as the runsc pump sends it: parsed, attributed, as `parsed` wire messages."""
    attribution = RunscAttribution()
    parser = StreamParser(
        ParseFormat.GLOG, attribute=attribution.annotate, hold=attribution.hold_back
    )
    out = []
    for start in range(0, len(data), chunk):
        parser.feed(data[start : start + chunk], now)
        batch = parser.take()
        if batch is not None:
            out.append(ParsedBatch(**batch.columns()))
    parser.flush_line(now)
    parser.close_entry()
    batch = parser.take(keep_open=False)
    if batch is not None:
        out.append(ParsedBatch(**batch.columns()))
    return out
