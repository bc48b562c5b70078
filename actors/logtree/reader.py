"""Readers: a backlog snapshot and, optionally, a bounded live stream.

A `LogReader` is what `LogTree.read <actors.logtree.tree.LogTree.read>`
returns. Its stream side is a `Subscription` that the tree feeds while holding its
lock, so entries reach every stream in the order of their `seq`.

Rules:
    * Writers never wait for readers. A subscription holds at most `capacity` entries;
      entries that do not fit are dropped for that reader alone and counted in
      `LogReader.missed`. What was queued before a drop stays queued.
    * Gaps are placed exactly: each drop is recorded with the number of entries queued
      before it, `LogReader.get_many` never returns a batch that spans a gap, and
      `LogReader.take_gap` tells, after an entry was taken, how many entries were
      missed right after it. A sink can so print its "missed N entries" note where the
      entries went missing.
    * The tree calls `Subscription.offer` and `Subscription.offer_one` from
      writer threads; `LogReader` methods run in the reader's thread. The queue is
      a `collections.deque` (append and popleft are atomic) and an
      `threading.Event` wakes a waiting reader.
    * After `LogReader.close`, no new entry is queued; entries already queued can
      still be taken, then `LogReader.get` returns `None`.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from types import TracebackType
from typing import Self

from actors.logtree.entry import Entry, LeveledEntry, RawEntry, Severity
from actors.logtree.errors import LogTreeError

__all__ = ["LogReader", "Subscription", "fields_match"]


def fields_match(entry: Entry, prefixes: Mapping[str, str]) -> bool:
    """Whether every field named in `prefixes` is in `entry` and starts with its prefix.

    An entry without the field does not match: e.g. a runsc line that was not
    attributed to a sandbox (`actors.logtree.parse.runsc`) is in no sandbox's log.
    """
    fields = entry.fields
    if not fields:
        return False
    for key, prefix in prefixes.items():
        value = fields.get(key)
        if value is None or not value.startswith(prefix):
            return False
    return True


class Subscription:
    """The stream side of a reader: its filter, bounded queue and counters."""

    __slots__ = (
        "pattern",
        "subtree",
        "leveled",
        "raw",
        "min_severity",
        "fields",
        "capacity",
        "queue",
        "missed",
        "delivered",
        "closed",
        "wakeup",
        "gaps",
        "gaps_lock",
    )

    def __init__(
        self,
        pattern: str,
        *,
        subtree: bool,
        leveled: bool,
        raw: bool,
        min_severity: Severity,
        capacity: int,
        fields: Mapping[str, str] | None = None,
    ) -> None:
        #: The DN read, or `""` for the whole tree.
        self.pattern = pattern
        #: Whether descendants of `pattern` are read too.
        self.subtree = subtree
        #: Whether leveled entries are wanted.
        self.leveled = leveled
        #: Whether raw entries are wanted.
        self.raw = raw
        #: Leveled entries below it are not wanted (raw ones are unaffected).
        self.min_severity = min_severity
        #: Only entries whose fields start with these prefixes (`fields_match`), or None.
        self.fields = fields
        #: Most entries queued at once.
        self.capacity = capacity
        #: Queued entries, oldest first.
        self.queue: deque[Entry] = deque()
        #: Entries dropped because the queue was full.
        self.missed = 0
        #: Entries ever queued (taken or not).
        self.delivered = 0
        #: Set once the reader is closed; the tree then stops offering.
        self.closed = False
        #: Set when entries are queued or the reader is closed.
        self.wakeup = threading.Event()
        #: `[after, count]` pairs, oldest first: `count` entries were dropped right after the
        #: `after`-th entry ever queued. Guarded by `gaps_lock`.
        self.gaps: deque[list[int]] = deque()
        #: Guards `gaps`; held only for a few operations, never while waiting.
        self.gaps_lock = threading.Lock()

    def offer(self, entries: list[RawEntry]) -> None:
        """Queues a batch of raw entries of one DN; called with the tree's lock held."""
        if self.raw:
            if self.fields is not None:
                entries = [e for e in entries if fields_match(e, self.fields)]
                if not entries:
                    return
            self._enqueue(entries)

    def offer_mixed(self, entries: list[Entry]) -> None:
        """Queues a batch of raw and parsed entries of one DN; with the tree's lock held."""
        if not (self.leveled and self.raw and self.min_severity == Severity.DEBUG):
            floor, raw, leveled = self.min_severity, self.raw, self.leveled
            entries = [
                e
                for e in entries
                if (raw if isinstance(e, RawEntry) else leveled and e.severity >= floor)
            ]
            if not entries:
                return
        if self.fields is not None:
            entries = [e for e in entries if fields_match(e, self.fields)]
            if not entries:
                return
        self._enqueue(entries)

    def _enqueue(self, entries: Sequence[Entry]) -> None:
        count = len(entries)
        room = self.capacity - len(self.queue)
        if count <= room:
            self.queue.extend(entries)
            self.delivered += count
        else:
            if room > 0:
                self.queue.extend(entries[:room])
                self.delivered += room
            else:
                room = 0
            self._drop(count - room)
        if not self.wakeup.is_set():
            self.wakeup.set()

    def offer_one(self, entry: LeveledEntry) -> None:
        """Queues one leveled entry; called with the tree's lock held."""
        if not self.leveled or entry.severity < self.min_severity:
            return
        if self.fields is not None and not fields_match(entry, self.fields):
            return
        if len(self.queue) < self.capacity:
            self.queue.append(entry)
            self.delivered += 1
        else:
            self._drop(1)
        if not self.wakeup.is_set():
            self.wakeup.set()

    def _drop(self, count: int) -> None:
        """Counts `count` entries dropped after everything delivered so far."""
        self.missed += count
        with self.gaps_lock:
            gaps = self.gaps
            if gaps and gaps[-1][0] == self.delivered:
                gaps[-1][1] += count
            else:
                gaps.append([self.delivered, count])


class LogReader:
    """A backlog of entries and, when streaming, the entries stored after it.

    The stream has a single consumer: take entries (`get`, `get_many`,
    iteration) from one thread at a time. `close` may come from any thread.
    """

    def __init__(
        self,
        backlog: list[Entry],
        subscription: Subscription | None,
        unsubscribe: Callable[[Subscription], None],
    ) -> None:
        #: Entries stored before the read, oldest first (ordered by `seq`).
        self.backlog = backlog
        self._sub = subscription
        self._unsubscribe = unsubscribe
        self._taken = 0

    @property
    def streaming(self) -> bool:
        """True when this reader was opened with `stream=True`."""
        return self._sub is not None

    @property
    def missed(self) -> int:
        """Stream entries dropped so far because this reader fell behind (0 if none)."""
        return 0 if self._sub is None else self._sub.missed

    @property
    def delivered(self) -> int:
        """Stream entries queued for this reader so far (taken or not)."""
        return 0 if self._sub is None else self._sub.delivered

    @property
    def closed(self) -> bool:
        """True once `close` has been called."""
        return self._sub is None or self._sub.closed

    def set_min_severity(self, severity: Severity) -> None:
        """Leaves out, from now on, streamed leveled entries below `severity`.

        Entries already queued stay; any thread may call it (one attribute, written
        once, read by the tree's writers under its lock).
        """
        if self._sub is not None:
            self._sub.min_severity = Severity(severity)

    def get(self, timeout: float | None = None) -> Entry | None:
        """Takes the next stream entry, waiting for one if needed.

        Runs in the reader's thread; never blocks writers.

        Args:
            timeout: seconds to wait at most; `None` waits until an entry arrives or
                the reader is closed, `0` does not wait.

        Returns:
            The next entry, or `None` on timeout or once closed and drained.

        Raises:
            LogTreeError: the reader was opened without `stream=True`.
        """
        sub = self._stream()
        deadline = None if timeout is None else time.monotonic() + timeout
        queue, wakeup = sub.queue, sub.wakeup
        while True:
            try:
                entry = queue.popleft()
            except IndexError:
                pass
            else:
                self._taken += 1
                return entry
            if sub.closed:
                return None
            wakeup.clear()
            if queue or sub.closed:
                continue
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                return None
            wakeup.wait(remaining)

    def get_many(self, limit: int, timeout: float | None = None) -> list[Entry]:
        """Takes up to `limit` stream entries, waiting only for the first one.

        The batch stops short at a gap, so that `take_gap` right after it tells
        whether entries went missing after its last entry.

        Args:
            limit: most entries to return (at least 1).
            timeout: as for `get`, for the first entry.

        Returns:
            The entries, oldest first; empty on timeout or once closed and drained.
        """
        first = self.get(timeout)
        if first is None:
            return []
        sub = self._stream()
        queue = sub.queue
        # Only this reader takes from the queue, so it holds at least len(queue) entries.
        count = min(limit - 1, len(queue))
        if sub.gaps:
            with sub.gaps_lock:
                for after, _ in sub.gaps:
                    if after >= self._taken:
                        count = min(count, after - self._taken)
                        break
        popleft = queue.popleft
        batch = [popleft() for _ in range(count)]
        batch.insert(0, first)
        self._taken += count
        return batch

    def take_gap(self) -> int:
        """Returns how many entries were missed right after the last entry taken.

        Gaps further back that were not taken yet are included. Each gap is reported
        once. Call it after each `get` or `get_many` to learn where the
        stream has holes; `missed` is the running total.
        """
        sub = self._sub
        if sub is None or not sub.gaps:
            return 0
        missed = 0
        with sub.gaps_lock:
            gaps = sub.gaps
            while gaps and gaps[0][0] <= self._taken:
                missed += gaps.popleft()[1]
        return missed

    def __iter__(self) -> Iterator[Entry]:
        """Yields stream entries as they arrive, until closed and drained."""
        while (entry := self.get()) is not None:
            yield entry

    def close(self) -> None:
        """Stops the stream: no new entries are queued, waiting calls return.

        Idempotent; a no-op for a reader without stream. May be called from any thread.
        """
        sub = self._sub
        if sub is None or sub.closed:
            return
        self._unsubscribe(sub)
        sub.closed = True
        sub.wakeup.set()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _stream(self) -> Subscription:
        if self._sub is None:
            raise LogTreeError("cannot get stream entries from a reader opened without stream=True")
        return self._sub
