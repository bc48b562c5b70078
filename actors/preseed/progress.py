"""The progress line of `import` and `preseed` on a terminal.

`TerminalProgress` keeps one line at the bottom of a terminal, redrawn in place
(`\\r`, erase to the end of the line) at most ten times a second:

    k8s.io/big.tar: 120.4/524.0 MB (22%), 151.2 MB/s

It names the file at hand (with `+N` when N more are being imported at once, as
`preseed --parallel` does), the bytes written of its total, and its rate since
it began. `clear` erases the line before other output; `line_for` renders it
(pure). The commands create one only when their stream is a terminal: piped,
they print nothing but their results.

Thread-safe: the importer calls `update` from the threads that write blobs.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TextIO

__all__ = ["FileProgress", "TerminalProgress", "line_for"]

#: Seconds between two redraws of the line.
REDRAW_INTERVAL = 0.1


@dataclass(slots=True)
class FileProgress:
    """Where one file's import stands."""

    #: Its name in messages, `<namespace>/<file>`.
    file: str
    #: Bytes written so far.
    done: int
    #: Bytes to write in all.
    total: int
    #: When its import began (the progress clock's seconds).
    started: float


def _megabytes(n: float) -> str:
    return f"{n / 1e6:.1f}"


def line_for(shown: FileProgress, others: int, now: float) -> str:
    """The progress line for `shown`, with `others` more files under way."""
    percent = 100 * shown.done // shown.total if shown.total else 100
    elapsed = now - shown.started
    rate = f", {_megabytes(shown.done / elapsed)} MB/s" if elapsed > 0 else ""
    more = f" (+{others})" if others else ""
    return (
        f"{shown.file}{more}: {_megabytes(shown.done)}/{_megabytes(shown.total)} MB "
        f"({percent}%){rate}"
    )


class TerminalProgress:
    """One progress line on a terminal (see the module).

    Args:
        stream: the terminal.
        clock: seconds, monotonic.
    """

    def __init__(self, stream: TextIO, clock: Callable[[], float] = time.monotonic) -> None:
        self._stream = stream
        self._clock = clock
        self._lock = threading.Lock()
        self._files: dict[str, FileProgress] = {}
        self._drawn = False
        self._next = 0.0

    def callback(self, file: str) -> Callable[[int, int], None]:
        """The `progress` callback of one file's import (`import_archive`)."""
        return lambda done, total: self.update(file, done, total)

    def update(self, file: str, done: int, total: int) -> None:
        """Records `file`'s progress; redraws the line if it is time to."""
        now = self._clock()
        with self._lock:
            entry = self._files.get(file)
            if entry is None:
                entry = self._files[file] = FileProgress(file, done, total, now)
            entry.done, entry.total = done, total
            finished = done >= total
            if finished:
                del self._files[file]
            if now < self._next and not finished:
                return
            self._next = now + REDRAW_INTERVAL
            self._draw(line_for(entry, len(self._files) - (0 if finished else 1), now))

    def clear(self) -> None:
        """Erases the line, so that other output starts on a clean line."""
        with self._lock:
            if self._drawn:
                self._stream.write("\r\x1b[K")
                self._stream.flush()
                self._drawn = False

    def _draw(self, line: str) -> None:
        self._stream.write(f"\r\x1b[K{line}")
        self._stream.flush()
        self._drawn = True
