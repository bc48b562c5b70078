"""The log tree: every DN's newest entries, readable as backlog and live stream.

Theory of operation:
    The tree keeps one record per DN: a ring of its newest entries (a
    `deque(maxlen=max_entries_per_dn)`, leveled and raw together, so retention is per
    DN and costs nothing extra), its raw `LineSplitter`, its minimum severity and
    the stream subscriptions that want its entries (recomputed only when a DN appears or
    a reader comes or goes).

    One lock guards it all. A write takes it once: `write_raw` splits a whole chunk,
    assigns a run of `seq` numbers, builds the raw entries in C (`zip` + `map`
    over the lines), extends the DN's ring and offers the batch to each subscription;
    `write_leveled` does the same for one entry. Since streams are fed under the
    lock, they see entries in `seq` order. A read takes the lock to copy the matching
    rings and to register its subscription in the same critical section, so a backlog
    followed by its stream has no gap and no duplicate; filtering and merging the
    copies happen after the lock is released.

Rules:
    * Writers never wait for readers: a full subscription drops entries and counts them.
    * Verbosity (`LogTree.set_min_severity`) applies at write time: a leveled
      entry below its DN's minimum is not stored at all. Raw entries have no severity.
    * `min_severity` in `LogTree.read` filters leveled entries only; raw entries
      pass unless `raw=False`.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import replace
from functools import partial
from itertools import chain, islice, repeat
from operator import attrgetter

from actors.logtree.dn import in_subtree, validate_dn, validate_pattern
from actors.logtree.entry import Entry, LeveledEntry, RawEntry, Severity
from actors.logtree.errors import LogTreeError
from actors.logtree.lines import LineSplitter
from actors.logtree.parse.line import ParseFormat
from actors.logtree.reader import LogReader, Subscription, fields_match
from actors.logtree.records import ParsedRecords, build_records

__all__ = ["DEFAULT_MAX_ENTRIES_PER_DN", "DEFAULT_STREAM_BUFFER", "LogTree"]

#: Entries kept per DN, as in Go's logtree.
DEFAULT_MAX_ENTRIES_PER_DN = 8192

#: Entries a stream reader may have queued before it starts missing entries.
DEFAULT_STREAM_BUFFER = 10_000

_new_raw = partial(tuple.__new__, RawEntry)
_seq_of = attrgetter("seq")


class _Node:
    """What the tree keeps for one DN."""

    __slots__ = ("dn", "entries", "splitter", "min_severity", "subs")

    def __init__(self, dn: str, max_entries: int) -> None:
        self.dn = dn
        self.entries: deque[Entry] = deque(maxlen=max_entries)
        self.splitter = LineSplitter()
        self.min_severity = Severity.DEBUG
        self.subs: tuple[Subscription, ...] = ()


class LogTree:
    """Thread-safe store of leveled and raw log entries, addressed by DN.

    All methods may be called from any thread.

    Args:
        max_entries_per_dn: newest entries kept per DN (leveled and raw together).
        clock: wall-clock source for raw entries, seconds since the Unix epoch.
    """

    def __init__(
        self,
        max_entries_per_dn: int = DEFAULT_MAX_ENTRIES_PER_DN,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if max_entries_per_dn < 1:
            raise LogTreeError(f"max_entries_per_dn {max_entries_per_dn!r} is not positive")
        self._max_entries = max_entries_per_dn
        self._clock = clock
        self._lock = threading.Lock()
        self._nodes: dict[str, _Node] = {}
        self._subs: list[Subscription] = []
        self._missed_closed = 0
        self._verbosity: dict[str, Severity] = {}
        self._parse: dict[str, ParseFormat] = {}
        self._next_seq = 1

    # Writing.

    def write_leveled(self, entry: LeveledEntry) -> None:
        """Stores one leveled entry (all its lines as one atomic entry).

        Args:
            entry: the entry; its `seq` is ignored and a stamped copy is stored.

        Raises:
            LogTreeError: `entry.dn` is not a valid DN.
        """
        with self._lock:
            node = self._nodes.get(entry.dn) or self._add_node(entry.dn)
            if entry.severity < node.min_severity:
                return
            stored = replace(entry, seq=self._next_seq)
            self._next_seq += 1
            node.entries.append(stored)
            for sub in node.subs:
                sub.offer_one(stored)

    def write_raw(
        self, dn: str, data: bytes | bytearray | memoryview, timestamp: float | None = None
    ) -> None:
        """Appends bytes to the raw stream of `dn` and stores the lines they complete.

        A trailing partial line is kept for the next call (or `flush_raw`); see
        `actors.logtree.lines` for the splitting rules.

        Args:
            dn: DN of the raw logger.
            data: the next bytes of its stream, any size (copied if not `bytes`).
            timestamp: time to give the completed lines, in seconds since the Unix
                epoch; the tree's clock when `None`.

        Raises:
            LogTreeError: `dn` is not a valid DN.
        """
        if type(data) is not bytes:
            data = bytes(data)
        with self._lock:
            node = self._nodes.get(dn) or self._add_node(dn)
            lines, lengths = node.splitter.feed(data)
            if lines:
                self._store_raw(node, lines, lengths, timestamp)

    def write_parsed(self, dn: str, records: ParsedRecords) -> None:
        """Stores a batch parsed in a child: entries and raw lines, in their order.

        The entries get `seq` numbers in the batch's order (arrival order); their
        own times are data and order nothing. Entries below the DN's minimum severity
        are not stored.

        Args:
            dn: DN of the raw logger the lines came from.
            records: the batch's columns (see `actors.logtree.records.ParsedRecords`).

        Raises:
            LogTreeError: `dn` is not a valid DN.
        """
        with self._lock:
            node = self._nodes.get(dn) or self._add_node(dn)
            seq = self._next_seq
            entries = build_records(seq, dn, records, self._clock())
            self._next_seq = seq + len(entries)
            if node.min_severity > Severity.DEBUG:
                floor = node.min_severity
                entries = [e for e in entries if isinstance(e, RawEntry) or e.severity >= floor]
            node.entries.extend(entries)
            for sub in node.subs:
                sub.offer_mixed(entries)

    def flush_raw(self, dn: str, timestamp: float | None = None) -> None:
        """Stores the partial line buffered for `dn`, if any, as a complete line.

        Meant for shutdown. Do not call it when one writer of a DN ends and another may
        follow (a restarted child, a FIFO reopened): the next writer may well complete
        the partial line, which `write_raw` keeps for that reason.

        Args:
            dn: DN of the raw logger.
            timestamp: as for `write_raw`.

        Raises:
            LogTreeError: `dn` is not a valid DN.
        """
        validate_dn(dn)
        with self._lock:
            node = self._nodes.get(dn)
            if node is None:
                return
            lines, lengths = node.splitter.flush()
            if lines:
                self._store_raw(node, lines, lengths, timestamp)

    def flush_all_raw(self) -> None:
        """Stores every buffered partial line (for shutdown)."""
        with self._lock:
            for node in self._nodes.values():
                lines, lengths = node.splitter.flush()
                if lines:
                    self._store_raw(node, lines, lengths, None)

    def _store_raw(
        self, node: _Node, lines: list[bytes], lengths: list[int], timestamp: float | None
    ) -> None:
        """Stores completed raw lines of `node`; called with the lock held."""
        count = len(lines)
        seq = self._next_seq
        self._next_seq = seq + count
        when = self._clock() if timestamp is None else timestamp
        seqs = range(seq, seq + count)
        entries = list(
            map(_new_raw, zip(seqs, repeat(node.dn), lines, lengths, repeat(when), repeat(None)))
        )
        node.entries.extend(entries)
        for sub in node.subs:
            sub.offer(entries)

    # Verbosity.

    def set_min_severity(self, pattern: str, severity: Severity) -> None:
        """Drops, from now on, leveled entries below `severity` in a subtree.

        The most specific pattern covering a DN wins; `Severity.DEBUG` stores all.

        Args:
            pattern: a DN (it and its descendants), or `""` for the whole tree.
            severity: the minimum severity stored.

        Raises:
            LogTreeError: the pattern is invalid.
        """
        validate_pattern(pattern)
        with self._lock:
            self._verbosity[pattern] = Severity(severity)
            for node in self._nodes.values():
                node.min_severity = self._min_severity_for(node.dn)

    def _min_severity_for(self, dn: str) -> Severity:
        best, best_len = Severity.DEBUG, -1
        for pattern, severity in self._verbosity.items():
            if len(pattern) > best_len and in_subtree(dn, pattern):
                best, best_len = severity, len(pattern)
        return best

    # Parsing.

    def set_parse(self, pattern: str, fmt: ParseFormat) -> None:
        """Says how the raw lines of a subtree are to be parsed (by their writers).

        The most specific pattern covering a DN wins; nothing set means raw. The tree
        only keeps the table: a child asks `parse_format` when it starts and
        parses in its own process.

        Args:
            pattern: a DN (it and its descendants), or `""` for the whole tree.
            fmt: the format.

        Raises:
            LogTreeError: the pattern is invalid.
        """
        validate_pattern(pattern)
        with self._lock:
            self._parse[pattern] = ParseFormat(fmt)

    def parse_format(self, dn: str) -> ParseFormat:
        """The format the raw lines of `dn` are parsed in (see `set_parse`)."""
        best, best_len = ParseFormat.RAW, -1
        with self._lock:
            for pattern, fmt in self._parse.items():
                if len(pattern) > best_len and in_subtree(dn, pattern):
                    best, best_len = fmt, len(pattern)
        return best

    # Reading.

    def dns(self) -> list[str]:
        """Returns the DNs written to so far, sorted."""
        with self._lock:
            return sorted(self._nodes)

    def read(
        self,
        dn: str,
        *,
        subtree: bool = False,
        backlog: int | None = 0,
        stream: bool = False,
        leveled: bool = True,
        raw: bool = True,
        min_severity: Severity = Severity.DEBUG,
        buffer: int = DEFAULT_STREAM_BUFFER,
        since: float | None = None,
        fields: Mapping[str, str] | None = None,
    ) -> LogReader:
        """Reads stored entries and/or streams new ones.

        Args:
            dn: the DN to read; with `subtree=True`, `""` reads the whole tree.
            subtree: also read every descendant of `dn` (`root.a` covers
                `root.a.b` but not `root.ab`).
            backlog: how many of the newest matching entries to return in
                `reader.backlog`; `None` for all stored, 0 for none.
            stream: also queue entries stored after the backlog snapshot, to be taken
                with `reader.get()`; close the reader when done.
            leveled: include leveled entries.
            raw: include raw entries.
            min_severity: leveled entries below it are left out.
            buffer: most stream entries queued before further ones are missed.
            since: leave out backlog entries whose own time (parsed, or of arrival for
                raw lines) is before it, seconds since the Unix epoch. The stream is
                not filtered by time.
            fields: only entries that have each of these fields, starting with the
                given prefix (`{"sandbox": "8c4b"}`: runsc's lines of that sandbox;
                `actors.logtree.reader.fields_match`), backlog and stream.

        Returns:
            The reader; its backlog is ordered by `seq`, oldest first.

        Raises:
            LogTreeError: an argument is invalid.
        """
        self._check_read(dn, subtree, backlog, leveled, raw, buffer)
        _check_fields(fields)
        min_severity = Severity(min_severity)
        sub = None
        if stream:
            sub = Subscription(
                dn,
                subtree=subtree,
                leveled=leveled,
                raw=raw,
                min_severity=min_severity,
                capacity=buffer,
                fields=fields,
            )
        unfiltered = (
            leveled and raw and min_severity == Severity.DEBUG and since is None and fields is None
        )
        with self._lock:
            nodes = [n for n in self._nodes.values() if self._matches(n.dn, dn, subtree)]
            if backlog is None or not unfiltered:
                copies = [list(n.entries) for n in nodes] if backlog != 0 else []
            else:
                copies = [list(islice(reversed(n.entries), backlog)) for n in nodes]
                for copy in copies:
                    copy.reverse()
            if sub is not None:
                self._subs.append(sub)
                for node in nodes:
                    node.subs = (*node.subs, sub)
        entries = _merge(copies) if len(copies) > 1 else (copies[0] if copies else [])
        if not unfiltered:
            entries = [e for e in entries if _wanted(e, leveled, raw, min_severity)]
            if since is not None:
                entries = [e for e in entries if e.timestamp >= since]
            if fields is not None:
                entries = [e for e in entries if fields_match(e, fields)]
        if backlog is not None and len(entries) > backlog:
            entries = entries[len(entries) - backlog :]
        return LogReader(entries, sub, self._unsubscribe)

    @staticmethod
    def _check_read(
        dn: str, subtree: bool, backlog: int | None, leveled: bool, raw: bool, buffer: int
    ) -> None:
        if subtree:
            validate_pattern(dn)
        else:
            validate_dn(dn)
        if backlog is not None and (not isinstance(backlog, int) or backlog < 0):
            raise LogTreeError(f"backlog {backlog!r} is invalid: expected None or an int >= 0")
        if not leveled and not raw:
            raise LogTreeError("cannot read with both leveled=False and raw=False")
        if not isinstance(buffer, int) or buffer < 1:
            raise LogTreeError(f"stream buffer {buffer!r} is invalid: expected an int >= 1")

    @staticmethod
    def _matches(node_dn: str, dn: str, subtree: bool) -> bool:
        return in_subtree(node_dn, dn) if subtree else node_dn == dn

    def missed_total(self) -> int:
        """Entries ever dropped for stream readers that fell behind, closed ones included."""
        with self._lock:
            return self._missed_closed + sum(sub.missed for sub in self._subs)

    def _unsubscribe(self, sub: Subscription) -> None:
        with self._lock:
            if sub in self._subs:
                self._subs.remove(sub)
                self._missed_closed += sub.missed
            for node in self._nodes.values():
                if sub in node.subs:
                    node.subs = tuple(s for s in node.subs if s is not sub)

    def _add_node(self, dn: str) -> _Node:
        """Creates the record of a new DN; called with the lock held."""
        validate_dn(dn)
        node = _Node(dn, self._max_entries)
        node.min_severity = self._min_severity_for(dn)
        node.subs = tuple(s for s in self._subs if self._matches(dn, s.pattern, s.subtree))
        self._nodes[dn] = node
        return node


def _check_fields(fields: Mapping[str, str] | None) -> None:
    if fields is None:
        return
    for key, prefix in fields.items():
        if not (isinstance(key, str) and isinstance(prefix, str) and key and prefix):
            raise LogTreeError(f"field filter {key!r}={prefix!r} is invalid: expected text")


def _merge(runs: list[list[Entry]]) -> list[Entry]:
    """Merges runs each ordered by `seq` into one list ordered by `seq`."""
    return sorted(chain.from_iterable(runs), key=_seq_of)


def _wanted(entry: Entry, leveled: bool, raw: bool, min_severity: Severity) -> bool:
    if isinstance(entry, RawEntry):
        return raw
    return leveled and entry.severity >= min_severity
