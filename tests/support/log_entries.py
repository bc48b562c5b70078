"""Helpers for the log tree tests: a fake clock and an entry builder."""

from __future__ import annotations

from collections.abc import Iterable

from actors.logtree import Entry, LeveledEntry, RawEntry, Severity

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
