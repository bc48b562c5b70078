"""Deadline timers for the supervisor actor, on one thread.

`TimerService.set(key, deadline)` arms (or re-arms) a timer on the monotonic
clock; when its deadline passes the service calls `fire(key)` once, from its
own thread. `cancel(key)` disarms it. A heap with lazy deletion keeps both
O(log n); the thread sleeps on a condition until the nearest deadline, so an
idle tree costs no wake-ups.
"""

from __future__ import annotations

import heapq
import itertools
import threading
from collections.abc import Callable, Hashable

from actors.supervisor.runtime import clock

__all__ = ["TimerService"]


class TimerService:
    """Timers keyed by any hashable; callbacks on a daemon thread."""

    def __init__(self, fire: Callable[[Hashable], None]) -> None:
        self._fire = fire
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, Hashable]] = []
        self._live: dict[Hashable, int] = {}  # key -> seq of its current entry
        self._seq = itertools.count()
        self._stopped = False
        self._thread = threading.Thread(target=self._loop, name="nc-timers", daemon=True)
        self._thread.start()

    def set(self, key: Hashable, deadline: float) -> None:
        """Arm `key` to fire at monotonic time `deadline` (replacing any earlier)."""
        with self._cond:
            seq = next(self._seq)
            self._live[key] = seq
            heapq.heappush(self._heap, (deadline, seq, key))
            self._cond.notify()

    def cancel(self, key: Hashable) -> None:
        """Disarm `key` (a no-op if it is not armed)."""
        with self._cond:
            self._live.pop(key, None)

    def pending(self) -> int:
        """How many timers are armed."""
        with self._cond:
            return len(self._live)

    def stop(self) -> None:
        """Stop the thread; armed timers never fire."""
        with self._cond:
            self._stopped = True
            self._cond.notify()
        self._thread.join(timeout=5)

    def _loop(self) -> None:
        while True:
            with self._cond:
                while True:
                    if self._stopped:
                        return
                    # Drop cancelled or superseded entries at the top.
                    while self._heap and self._live.get(self._heap[0][2]) != self._heap[0][1]:
                        heapq.heappop(self._heap)
                    if not self._heap:
                        self._cond.wait()
                        continue
                    delay = self._heap[0][0] - clock.monotonic()
                    if delay <= 0:
                        _, _, key = heapq.heappop(self._heap)
                        del self._live[key]
                        break
                    self._cond.wait(delay)
            self._fire(key)
