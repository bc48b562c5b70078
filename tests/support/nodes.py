"""Test doubles for the containerd actors: a fake supervision node and a memory sink.

`FakeNode` stands in for a runnable's `Context` (through the `NodeHandle` protocol of
`actors.containerd.node`): it records HEALTHY, the children asked for, the
metrics added and the log lines, and lets a test cancel it. `MemorySink` collects
raw bytes and lets a test wait, with a timeout, until a condition on them holds.
(The programs in `tests.support.programs` have Node doubles of their own, which
report to their parent over stdout instead.)
"""

from __future__ import annotations

import itertools
import logging
import threading
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["FakeNode", "MemorySink"]

_ids = itertools.count()


class MemorySink:
    """A thread-safe raw sink keeping every chunk written."""

    def __init__(self) -> None:
        self._chunks: list[bytes] = []
        self._size = 0
        self._cond = threading.Condition()
        self.flushes = 0

    def write(self, data: bytes) -> int:
        with self._cond:
            self._chunks.append(bytes(data))
            self._size += len(data)
            self._cond.notify_all()
        return len(data)

    def flush(self) -> None:
        with self._cond:
            self.flushes += 1

    def data(self) -> bytes:
        with self._cond:
            return b"".join(self._chunks)

    def chunks(self) -> list[bytes]:
        with self._cond:
            return list(self._chunks)

    @property
    def size(self) -> int:
        with self._cond:
            return self._size

    def wait_for_size(self, size: int, timeout: float) -> None:
        """Waits until at least `size` bytes arrived; fails the test after `timeout` s."""
        with self._cond:
            ok = self._cond.wait_for(lambda: self._size >= size, timeout)
            got = self._size
        assert ok, f"only {got} of {size} bytes arrived within {timeout}s"

    def wait_for(self, predicate: Callable[[bytes], bool], timeout: float) -> bytes:
        """Waits until `predicate(all data)` holds; fails the test after `timeout` s."""
        with self._cond:
            ok = self._cond.wait_for(lambda: predicate(b"".join(self._chunks)), timeout)
            data = b"".join(self._chunks)
        assert ok, f"condition not met within {timeout}s; last bytes: {data[-300:]!r}"
        return data


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.lines: list[tuple[str, str]] = []
        self.cond = threading.Condition()

    def emit(self, record: logging.LogRecord) -> None:
        with self.cond:
            self.lines.append((record.levelname, record.getMessage()))
            self.cond.notify_all()


class FakeNode:
    """A supervision node double for one start of an actor."""

    def __init__(self) -> None:
        self.cancelled = threading.Event()
        self.log = logging.getLogger(f"tests.containerd.node{next(_ids)}")
        self.log.setLevel(logging.DEBUG)
        self.log.propagate = False
        self._records = _Records()
        self.log.addHandler(self._records)
        self.raw = MemorySink()
        self.healthy = threading.Event()
        self.healthy_count = 0
        self.children: list[dict[str, tuple[str, Mapping[str, Any]]]] = []
        self.metrics: list[tuple[str, float, dict[str, str]]] = []
        #: Checks the runnable vouched with (`Node.vouch`), in order.
        self.vouched: list[Callable[[], bool]] = []
        self._reason: str | None = None

    def cancel(self, reason: str = "test cancelled the node") -> None:
        self._reason = reason
        self.cancelled.set()

    def cancel_reason(self) -> str | None:
        return self._reason

    def signal_healthy(self) -> None:
        self.healthy_count += 1
        self.healthy.set()

    def start_children(self, children: Mapping[str, tuple[str, Mapping[str, Any]]]) -> None:
        self.children.append(dict(children))

    def add_metric(self, name: str, value: float, labels: Mapping[str, str]) -> None:
        with self._records.cond:
            self.metrics.append((name, value, dict(labels)))

    def observe_metric(self, name: str, value: float, labels: Mapping[str, str]) -> None:
        with self._records.cond:
            self.metrics.append((name, value, dict(labels)))

    def vouch(self, check: Callable[[], bool]) -> None:
        self.vouched.append(check)

    def messages(self, level: str | None = None) -> list[str]:
        with self._records.cond:
            return [m for lv, m in self._records.lines if level is None or lv == level]

    def wait_message(self, needle: str, timeout: float) -> str:
        """Waits for a log message containing `needle`; fails after `timeout` s."""
        found: list[str] = []

        def match() -> bool:
            found[:] = [m for _, m in self._records.lines if needle in m]
            return bool(found)

        with self._records.cond:
            ok = self._records.cond.wait_for(match, timeout)
        assert ok, f"no log message with {needle!r} within {timeout}s: {self.messages()}"
        return found[0]
