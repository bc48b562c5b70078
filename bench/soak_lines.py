"""Numbered lines through the runsc FIFO: the writer, the reader of the JSON log, the loss books.

`LineWriter` (a thread) writes `soak <9-digit seq> xxx…\\n` lines of a fixed length into
the FIFO at a steady rate, a batch per tick. Each batch is one `write` of at most
`PIPE_BUF` bytes, so the kernel takes it whole or not at all: a batch refused with
`EAGAIN` (pipe full while no pump runs) is retried on the next tick and only lines the
kernel took count as written. The FIFO is opened read-write and non-blocking, like the
agent's own descriptors: the open never blocks and a write never raises `EPIPE` while
no pump holds the read end. Every batch is booked with its wall-clock time, so a lost
line can be placed in time.

`JsonLogFollower` reads the agent's JSON log sink (`[log] json_file`, every entry of
every DN, appended as it happens) incrementally: the numbered lines that reached
`root.containerd.runsc`, the supervisor's ``rescheduling supervised node … with backoff
D s` entries (the backoff each restart actually drew), and the sink's own `missed``
records. The in-memory log tree keeps only 8192 entries per DN, so counts come from here.

`account_losses` turns the received sequence into gaps, and charges each gap to a death
of the pump whose window covers the time the missing lines were written; what no death
explains is reported as unexplained (a graceful restart must lose nothing).
"""

from __future__ import annotations

import bisect
import itertools
import json
import os
import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "DeathWindow",
    "JsonLogFollower",
    "LineWriter",
    "LossReport",
    "account_losses",
    "loss_bound_lines",
]

RUNSC_DN = "root.containerd.runsc"
PIPE_BUF = 4096
_LINE = re.compile(r"soak (\d{9}) x+")
_RESCHEDULE = re.compile(r"rescheduling supervised node '([^']+)' with backoff ([0-9.]+) s")


def loss_bound_lines(line_bytes: int, read_size: int, chunk_bytes: int) -> int:
    """Most lines one SIGKILL of the pump may cost.

    The documented bound (`actors/containerd/logpump.py`,
    `actors/supervisor/process/childlog.py`):
    the read taken from the FIFO and not yet handed on (at most `read_size` bytes) plus the
    raw log's unsent partial chunk (under `chunk_bytes`). Those bytes hold at most
    `ceil(bytes / line_bytes)` whole lines; the line cut at each end of the lost span is
    spoilt too (the log tree joins the two halves into one line that is neither).
    """
    return -(-(read_size + chunk_bytes) // line_bytes) + 2


class LineWriter(threading.Thread):
    """Writes numbered lines into the FIFO at `rate` lines per second until stopped."""

    def __init__(self, fifo: Path, *, rate: int, line_bytes: int, tick: float = 0.02) -> None:
        super().__init__(name="soak-writer", daemon=True)
        if line_bytes < 16:
            raise ValueError(f"line length {line_bytes} is too short for a numbered line")
        self._fd = os.open(fifo, os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
        self._per_tick = max(1, round(rate * tick))
        if self._per_tick * line_bytes > PIPE_BUF:
            raise ValueError(f"{self._per_tick} lines of {line_bytes} bytes exceed PIPE_BUF")
        self._tick = tick
        self._pad = "x" * (line_bytes - len("soak 000000000 \n"))
        self._halt = threading.Event()
        self._lock = threading.Lock()
        #: Sequence number of the next line to write (lines 0 … next-1 are written).
        self.next_seq = 0
        #: Batches refused because the pipe was full.
        self.refused = 0
        self._batch_seq: list[int] = []
        self._batch_time: list[float] = []
        self.error: str | None = None

    def run(self) -> None:
        due = time.monotonic()
        try:
            while not self._halt.is_set():
                self._write_batch()
                due += self._tick
                self._halt.wait(max(0.0, due - time.monotonic()))
        except OSError as e:
            self.error = f"writing the fifo failed: {e}"
        finally:
            os.close(self._fd)

    def _write_batch(self) -> None:
        first = self.next_seq
        data = "".join(
            f"soak {seq:09d} {self._pad}\n" for seq in range(first, first + self._per_tick)
        ).encode()
        try:
            os.write(self._fd, data)
        except BlockingIOError:
            self.refused += 1
            return
        with self._lock:
            self._batch_seq.append(first)
            self._batch_time.append(time.time())
            self.next_seq = first + self._per_tick

    def stop(self, timeout: float = 5.0) -> None:
        self._halt.set()
        self.join(timeout)

    def written_at(self, seq: int) -> float:
        """Wall-clock time at which line `seq` was written."""
        with self._lock:
            i = bisect.bisect_right(self._batch_seq, seq) - 1
            return self._batch_time[max(i, 0)]


@dataclass(slots=True)
class JsonLogFollower:
    """Incremental reader of the agent's JSON log sink."""

    path: Path
    #: Sequence numbers of the numbered lines received, in file order.
    received: list[int] = field(default_factory=list)
    #: runsc raw lines that are not whole numbered lines (spoilt at a loss).
    spoilt: int = 0
    #: (wall time, dn, seconds) of every restart the supervisor scheduled.
    backoffs: list[tuple[float, str, float]] = field(default_factory=list)
    #: Entries the sink itself missed (it fell behind).
    sink_missed: int = 0
    #: (wall time, dn, message) of every FATAL entry.
    fatals: list[tuple[float, str, str]] = field(default_factory=list)
    #: (wall time, message) of every leveled entry of `watch_dn`.
    watched: list[tuple[float, str]] = field(default_factory=list)
    #: A DN whose leveled entries are kept in `watched`.
    watch_dn: str = "root.containerd.preseed"
    #: Entries (leveled and raw) seen per DN: the log tree retains min(count, 8192).
    per_dn: dict[str, int] = field(default_factory=dict)
    _offset: int = 0
    _tail: bytes = b""

    @property
    def highest(self) -> int:
        return self.received[-1] if self.received else -1

    def poll(self) -> None:
        """Reads whatever the sink appended since the last call."""
        try:
            with open(self.path, "rb") as f:
                f.seek(self._offset)
                data = f.read()
        except FileNotFoundError:
            return
        self._offset += len(data)
        lines = (self._tail + data).split(b"\n")
        self._tail = lines.pop()
        for raw in lines:
            if raw:
                self._take(json.loads(raw))

    def _take(self, doc: dict[str, object]) -> None:
        kind = doc.get("kind")
        if kind == "missed":
            self.sink_missed += int(doc["count"])  # type: ignore[call-overload]
            return
        dn = doc.get("dn")
        self.per_dn[str(dn)] = self.per_dn.get(str(dn), 0) + 1
        if kind == "raw" and dn == RUNSC_DN:
            m = _LINE.fullmatch(str(doc["data"]))
            if m is None:
                self.spoilt += 1
            else:
                self.received.append(int(m.group(1)))
        elif kind == "leveled":
            if dn == RUNSC_DN:
                # A runsc process writing into the FIFO at the same moment (containerd 2.x
                # runs `runsc features` at every start) makes our lines the continuation
                # lines of its entry: they arrived, inside that entry.
                for line in list(doc.get("lines", []))[1:]:  # type: ignore[call-overload]
                    m = _LINE.fullmatch(str(line))
                    if m is not None:
                        self.received.append(int(m.group(1)))
            message = str(doc.get("message", ""))
            t = float(doc["time"])  # type: ignore[arg-type]
            m = _RESCHEDULE.search(message)
            if m is not None:
                self.backoffs.append((t, m.group(1), float(m.group(2))))
            if doc.get("severity") == "FATAL":
                self.fatals.append((t, str(dn), message))
            if dn == self.watch_dn:
                self.watched.append((t, message))

    def wait_for(self, seq: int, timeout: float, poll: float = 0.02) -> bool:
        """Polls the file until line `seq` (or a later one) arrived; False on timeout."""
        deadline = time.monotonic() + timeout
        while True:
            self.poll()
            if self.highest >= seq:
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(poll)

    def wait_watched(self, text: str, after: float, timeout: float, poll: float = 0.01) -> bool:
        """Polls until a `watch_dn` entry containing `text` logged after `after` arrived."""
        deadline = time.monotonic() + timeout
        while True:
            self.poll()
            if any(t >= after and text in m for t, m in self.watched):
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(poll)

    def backoff_between(self, start: float, end: float) -> float:
        """Sum of the backoffs drawn by restarts scheduled between two wall times."""
        return sum(d for t, _, d in self.backoffs if start <= t <= end)


@dataclass(frozen=True, slots=True)
class DeathWindow:
    """A death of the pump that may cost lines."""

    #: Wall time the fault began (SIGKILL sent, or SIGSTOP sent for a stop the heartbeat caught):
    #: the pump read nothing after it.
    start: float
    #: Wall time the pump was seen dead.
    end: float
    #: The fault, for the report.
    what: str


@dataclass(frozen=True, slots=True)
class LossReport:
    """The books on lines: written, received, lost, and who lost them."""

    written: int
    received: int
    lost: int
    duplicates: int
    out_of_order: int
    spoilt: int
    #: Lines lost charged to each pump death (only deaths that cost lines).
    charged: dict[str, int]
    #: Most lines charged to a single death, and the bound per death.
    worst_per_death: int
    bound_per_death: int
    #: Lost lines no pump death explains (must be 0): "first-last" ranges.
    unexplained: list[str]

    @property
    def unexplained_lines(self) -> int:
        total = 0
        for r in self.unexplained:
            a, _, b = r.partition("-")
            total += int(b or a) - int(a) + 1
        return total


def _gaps(received: list[int], written: int) -> list[tuple[int, int]]:
    """Missing ranges (inclusive) of 0 … written-1."""
    gaps = []
    expect = 0
    for seq in sorted(set(received)):
        if seq >= written:
            break
        if seq > expect:
            gaps.append((expect, seq - 1))
        expect = seq + 1
    if expect < written:
        gaps.append((expect, written - 1))
    return gaps


def account_losses(
    follower: JsonLogFollower,
    writer: LineWriter,
    deaths: list[DeathWindow],
    bound_per_death: int,
    slack: float = 1.0,
) -> LossReport:
    """Charges every missing line to a pump death whose window covers its write time.

    A gap of lines written between `t_first` and `t_last` is charged to a death with
    `start - slack <= t_first` and `t_last <= end + slack`: the lines a killed pump
    loses were written before it stopped reading, at most a read's worth earlier.
    """
    received = follower.received
    written = writer.next_seq
    dups = len(received) - len(set(received))
    disorder = sum(1 for a, b in itertools.pairwise(received) if b <= a)
    charged: dict[str, int] = {}
    unexplained: list[str] = []
    lost = 0
    for first, last in _gaps(received, written):
        n = last - first + 1
        lost += n
        t0, t1 = writer.written_at(first), writer.written_at(last)
        owner = next((d for d in deaths if d.start - slack <= t0 and t1 <= d.end + slack), None)
        if owner is None:
            unexplained.append(f"{first}-{last}" if last > first else f"{first}")
        else:
            charged[owner.what] = charged.get(owner.what, 0) + n
    return LossReport(
        written=written,
        received=len(set(received)),
        lost=lost,
        duplicates=dups,
        out_of_order=disorder,
        spoilt=follower.spoilt,
        charged=charged,
        worst_per_death=max(charged.values(), default=0),
        bound_per_death=bound_per_death,
        unexplained=unexplained,
    )
