"""Sinks: copies of the log tree's stream to stderr or to a JSON lines file.

A sink is a stream reader of the tree drained by a daemon thread of its own. It is
registered when constructed, so it sees every entry stored from then on. A slow sink
never slows writers: once its queue is full it misses entries, and it writes a note
saying how many (see below) where they went missing.

Threads: the constructor, `flush` and `stop` run in the caller's thread;
formatting and writing run in the sink's thread (named after the sink).

Output:
    * `StderrSink` writes `actors.logtree.format.format_entries` text, one
      line per entry line, and `logtree: <sink> missed N entries` when it fell behind.
      With `journal=True` every line starts with its syslog priority (`<3>` …, see
      `actors.logtree.format.syslog_priority`).
    * `JsonLinesSink` appends one JSON object per line to a file, UTF-8, with
      the schema of `actors.logtree.format.entry_to_dict` (written by
      `actors.logtree.format.entry_to_json`), and when it fell behind
      `{"kind": "missed", "count": N, "time": <float>}`.

Neither writes a character that drives a terminal from an entry's text: both go
through `actors.logtree.format`, which escapes them (see "Terminal escapes" there).

Write errors (a closed stream, a full disk) are counted in `errors` and the
entries are dropped; they never kill the sink's thread. Invalid UTF-8 is escaped.

A running program may change a sink: `set_min_severity` (from the next entry on),
`JsonLinesSink.reopen` (a new file at the same path, after logrotate moved the old
one), and a `StderrSink`'s `select` may leave out or replace entries (a terminal's
calmer view; the tree keeps them all).
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, tzinfo
from pathlib import Path
from typing import TextIO

from actors.logtree.entry import Entry, Severity
from actors.logtree.format import entry_to_json, format_entries, syslog_priority
from actors.logtree.tree import DEFAULT_STREAM_BUFFER, LogTree

__all__ = ["JsonLinesSink", "StderrSink"]

#: Most entries a sink formats and writes in one go.
_BATCH = 1024


class _Sink:
    """A daemon thread that drains a subtree stream reader into `_write`."""

    def __init__(
        self,
        tree: LogTree,
        *,
        dn: str,
        min_severity: Severity,
        buffer: int,
        name: str,
    ) -> None:
        self.name = name
        self.errors = 0
        """Batches that could not be written."""
        self._reader = tree.read(
            dn, subtree=True, stream=True, min_severity=min_severity, buffer=buffer
        )
        self._written = 0
        self._progress = threading.Condition()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    @property
    def missed(self) -> int:
        """Entries this sink missed because it fell behind."""
        return self._reader.missed

    def set_min_severity(self, severity: Severity) -> None:
        """Writes, from now on, only leveled entries of at least `severity`."""
        self._reader.set_min_severity(severity)

    @property
    def written(self) -> int:
        """Entries this sink has taken and written (or tried to, see `errors`)."""
        return self._written

    def flush(self, timeout: float | None = None) -> bool:
        """Waits until every entry queued for the sink so far has been written.

        Args:
            timeout: seconds to wait at most; `None` waits as long as needed.

        Returns:
            True when caught up, False on timeout.
        """
        target = self._reader.delivered
        with self._progress:
            return self._progress.wait_for(lambda: self._written >= target, timeout)

    def stop(self, timeout: float | None = None) -> bool:
        """Stops taking new entries, writes those already queued and ends the thread.

        Args:
            timeout: seconds to wait for the thread at most.

        Returns:
            True when the thread has ended.
        """
        self._reader.close()
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def _run(self) -> None:
        reader = self._reader
        try:
            while True:
                batch = reader.get_many(_BATCH)
                if batch:
                    self._guarded(self._write, batch)
                missed = reader.take_gap()
                if missed:
                    self._guarded(self._write_missed, missed)
                with self._progress:
                    self._written += len(batch)
                    self._progress.notify_all()
                if not batch and reader.closed:
                    return
        finally:
            self._guarded(self._close)

    def _guarded(self, write: Callable[..., None], *args: object) -> None:
        try:
            write(*args)
        except (OSError, ValueError):
            self.errors += 1

    def _write(self, batch: list[Entry]) -> None:
        raise NotImplementedError

    def _write_missed(self, count: int) -> None:
        raise NotImplementedError

    def _close(self) -> None:
        """Releases what the sink holds; runs in the sink's thread at its end."""


class StderrSink(_Sink):
    """Writes human-readable lines to a text stream (stderr by default).

    Args:
        tree: the tree to copy from.
        stream: where to write; `sys.stderr` when `None`. Not closed by the sink.
        dn: subtree to copy, `""` for the whole tree.
        min_severity: leveled entries below it are not written.
        tz: time zone of the shown times; `None` for the local zone.
        buffer: entries queued before the sink starts missing some.
        journal: the stream is systemd's journal: each line starts with its syslog
            priority (`<3>` for ERROR, see `actors.logtree.format.syslog_priority`).
        select: what to show of an entry, called in the sink's thread: the entry, another
            entry in its place, or None to leave it out (e.g. a terminal's quieter view);
            None shows every entry as it is.
    """

    def __init__(
        self,
        tree: LogTree,
        stream: TextIO | None = None,
        *,
        dn: str = "",
        min_severity: Severity = Severity.INFO,
        tz: tzinfo | None = UTC,
        buffer: int = DEFAULT_STREAM_BUFFER,
        journal: bool = False,
        select: Callable[[Entry], Entry | None] | None = None,
    ) -> None:
        self._stream = sys.stderr if stream is None else stream
        self._tz = tz
        self._journal = journal
        self._select = select
        super().__init__(
            tree, dn=dn, min_severity=min_severity, buffer=buffer, name="logtree-stderr-sink"
        )

    def _write(self, batch: list[Entry]) -> None:
        select = self._select
        if select is not None:
            batch = [shown for shown in map(select, batch) if shown is not None]
            if not batch:
                return
        if not self._journal:
            self._emit(format_entries(batch, self._tz))
            return
        out: list[str] = []
        for entry in batch:
            level = syslog_priority(entry)
            out.extend(
                f"<{level}>{line}\n" for line in format_entries([entry], self._tz)[:-1].split("\n")
            )
        self._emit("".join(out))

    def _write_missed(self, count: int) -> None:
        prefix = "<4>" if self._journal else ""
        self._emit(f"{prefix}logtree: {self.name} missed {count} entries\n")

    def _emit(self, text: str) -> None:
        try:
            self._stream.write(text)
        except UnicodeEncodeError:
            # A leveled line holding lone surrogates, or a stream in a narrow encoding.
            self._stream.write(text.encode("ascii", "backslashreplace").decode("ascii"))
        self._stream.flush()


class JsonLinesSink(_Sink):
    """Appends one JSON object per entry to a file, for log shippers.

    Args:
        tree: the tree to copy from.
        path: the file, created if missing, appended to if present.
        dn: subtree to copy, `""` for the whole tree.
        min_severity: leveled entries below it are not written.
        buffer: entries queued before the sink starts missing some.
    """

    def __init__(
        self,
        tree: LogTree,
        path: str | Path,
        *,
        dn: str = "",
        min_severity: Severity = Severity.INFO,
        buffer: int = DEFAULT_STREAM_BUFFER,
    ) -> None:
        self.path = Path(path)
        self._file = self._open()
        #: Guards `_file` between the sink's thread and `reopen`.
        self._file_lock = threading.Lock()
        super().__init__(
            tree, dn=dn, min_severity=min_severity, buffer=buffer, name="logtree-json-sink"
        )

    def _open(self) -> TextIO:
        return self.path.open("a", encoding="utf-8", errors="backslashreplace")

    def reopen(self) -> None:
        """Opens the file at `path` anew (created if missing), as after a log rotation.

        Entries written from now on go to the new file; the old one is closed. Runs in
        the caller's thread (e.g. on SIGHUP).

        Raises:
            OSError: the file cannot be opened; the sink keeps writing the old one.
        """
        new = self._open()
        with self._file_lock:
            old, self._file = self._file, new
        old.close()

    def _write(self, batch: list[Entry]) -> None:
        text = "".join(entry_to_json(entry) + "\n" for entry in batch)
        with self._file_lock:
            self._file.write(text)
            self._file.flush()

    def _write_missed(self, count: int) -> None:
        record = {"kind": "missed", "count": count, "time": time.time()}
        with self._file_lock:
            self._file.write(json.dumps(record) + "\n")
            self._file.flush()

    def _close(self) -> None:
        with self._file_lock:
            self._file.close()
