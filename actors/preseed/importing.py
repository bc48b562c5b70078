"""The `importing` fact: the preseed's imports under way, as `status` shows them.

`root.containerd.preseed` reports it (`ImportsUnderWay`, fed by each file's
progress callback) and `node-containerd status` renders it (`ImportProgress.text`):
one home for its shape, read by both sides.

The fact's value is a list, one map per file being imported, sorted by file:
`{"file": "k8s.io/big.tar", "bytes_done": 327155712, "bytes_total": 549453824,
"bytes_per_second": 99614720.0}` — `file` in the display form every preseed line
uses, bytes of blob content sent to containerd out of what the archive holds, the
rate since the file's import began. The fact is withdrawn (None) when no import is
under way.

Rules: at most one report per second per file (`REPORT_INTERVAL`), the first as
soon as a file reports progress; one more when a file's import ends, success or
failure, without it. Files beyond `MAX_LISTED`, or beyond what a fact may hold, are
left out of the list. The clock is injected.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from messages.fact_values import MAX_FACT_SIZE, fact_size

__all__ = [
    "IMPORTING_FACT",
    "MAX_LISTED",
    "REPORT_INTERVAL",
    "ImportProgress",
    "ImportsUnderWay",
    "imports_of",
]

#: The fact's name, under `root.containerd.preseed`.
IMPORTING_FACT = "importing"
#: Seconds between two reports for one file.
REPORT_INTERVAL = 1.0
#: Files listed at most (a fact holds at most 4 KiB; imports run at most 4 at once
#: by default).
MAX_LISTED = 8

_MIB = 1 << 20


@dataclass(frozen=True, slots=True)
class ImportProgress:
    """One file's import under way."""

    #: The file, `<namespace>/<name>` in display form.
    file: str
    #: Bytes of blob content sent so far.
    bytes_done: int
    #: Bytes of blob content the import will send at most.
    bytes_total: int
    #: Average rate since the import began, in bytes per second.
    bytes_per_second: float

    def to_fact(self) -> dict[str, Any]:
        """This file's entry of the fact's value."""
        return {
            "file": self.file,
            "bytes_done": self.bytes_done,
            "bytes_total": self.bytes_total,
            "bytes_per_second": self.bytes_per_second,
        }

    @classmethod
    def from_fact(cls, value: Any) -> ImportProgress | None:
        """One entry of the fact's value, or None if it does not have this shape."""
        if not isinstance(value, dict):
            return None
        file = value.get("file")
        numbers = [value.get(k) for k in ("bytes_done", "bytes_total", "bytes_per_second")]
        given = [float(v) for v in numbers if isinstance(v, int | float) and type(v) is not bool]
        if not isinstance(file, str) or len(given) != len(numbers):
            return None
        done, total, rate = given
        return cls(file, int(done), int(total), rate)

    def text(self) -> str:
        """`importing k8s.io/big.tar: 312 MiB of 524 MiB (60%), 95 MiB/s`."""
        percent = 100 * self.bytes_done // self.bytes_total if self.bytes_total else 100
        return (
            f"importing {self.file}: {self.bytes_done // _MIB} MiB of "
            f"{self.bytes_total // _MIB} MiB ({percent}%), "
            f"{self.bytes_per_second / _MIB:.0f} MiB/s"
        )


def imports_of(value: Any) -> list[ImportProgress]:
    """The imports a value of the fact lists (those of a known shape)."""
    if not isinstance(value, list):
        return []
    found = (ImportProgress.from_fact(v) for v in value)
    return [p for p in found if p is not None]


@dataclass(slots=True)
class _File:
    """What is known of one file's import."""

    #: When its first progress came (monotonic seconds).
    started: float
    #: When it may be reported again (monotonic seconds).
    due: float
    #: Whether it was reported at all (its end then needs a report too).
    reported: bool = False
    #: Its latest progress.
    progress: ImportProgress | None = None


class ImportsUnderWay:
    """The imports under way, reported as the `importing` fact. Thread-safe.

    Args:
        report: sends the fact's new value (a list, or None to withdraw it); called
            under this object's lock, so reports arrive in order.
        clock: monotonic seconds.
        interval: seconds between two reports for one file.
    """

    def __init__(
        self,
        report: Callable[[list[dict[str, Any]] | None], None],
        clock: Callable[[], float] = time.monotonic,
        interval: float = REPORT_INTERVAL,
    ) -> None:
        self._report = report
        self._clock = clock
        self._interval = interval
        self._lock = threading.Lock()
        self._files: dict[str, _File] = {}

    def progress(self, file: str, done: int, total: int) -> None:
        """`file`'s import has sent `done` of `total` bytes (from its importing thread)."""
        now = self._clock()
        with self._lock:
            entry = self._files.get(file)
            if entry is None:
                entry = self._files[file] = _File(started=now, due=now)
            elapsed = now - entry.started
            rate = done / elapsed if elapsed > 0 else 0.0
            entry.progress = ImportProgress(file, done, total, rate)
            if now < entry.due:
                return
            entry.due = now + self._interval
            entry.reported = True
            self._send()

    def ended(self, file: str) -> None:
        """`file`'s import ended, whatever its outcome; reported if it ever was."""
        with self._lock:
            entry = self._files.pop(file, None)
            if entry is not None and entry.reported:
                self._send()

    def _send(self) -> None:
        listed = [
            e.progress.to_fact()
            for _, e in sorted(self._files.items())
            if e.reported and e.progress is not None
        ][:MAX_LISTED]
        while listed and fact_size(listed, 0) > MAX_FACT_SIZE:
            listed.pop()
        self._report(listed or None)
