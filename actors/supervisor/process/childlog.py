"""Logging inside a runnable's process: leveled and raw, sent to the root.

Leveled: `LinkLogHandler` is installed on the process's root `logging` logger,
so every `logging` call in the runnable (its own, or a library's) becomes one
`LogEntry` frame on the node's DN, sent as it happens. A record of a
sub-logger (`sub_logger(ctx, "dut")`) goes to DN `<node>.dut`. Severity:
`Severity.from_logging` (CRITICAL -> FATAL, ERROR, WARNING, INFO, lower ->
DEBUG; the handler passes INFO and up). A formatted exception is part of the
same entry (multi-line entries are atomic). A message that cannot be encoded
(a lone surrogate from a file name that is not UTF-8) is sent with that
character escaped (`\\udcff`), never lost.

Raw: `RawLog` batches bytes into chunks (many lines per frame). A write of at
least `DIRECT_BYTES` goes out at once, as one frame (after whatever was
buffered, so order is kept); smaller writes are buffered and sent when the
buffer reaches `CHUNK_BYTES` or `FLUSH_SECONDS` after the first buffered byte.

Parsed: a `RawLog` made with a `ParseFormat` other than RAW (the node's
`[log] parse` format, given in its Start message) parses its bytes here, in the
child, with a `StreamParser`, and sends each chunk's lines as one `parsed`
frame of columns instead of a `raw` frame: the same batching, the root only
stores. The last entry of a chunk is held back for continuation lines (a Go
goroutine dump) until the next entry starts or no byte came for
`FLUSH_SECONDS`; `close` (at exit) also ends a partial last line.

Every frame is a message of `messages.wire` (`LogEntry`, `RawChunk`,
`ParsedBatch`) encoded by its `to_wire`: the wire format is written only there.

Loss bound: a process that is SIGKILLed loses only what it had not sent yet,
i.e. at most its buffered partial chunk: under `CHUNK_BYTES` bytes written in
the last `FLUSH_SECONDS`. A write that returned after a direct send is in the
root's socket buffer and is not lost. A graceful exit flushes everything.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from actors.logtree.parse.line import ParseFormat
from actors.supervisor.core.severity import Severity
from actors.supervisor.process.link import ChildLink, LinkClosed
from messages.errors import ProtocolError
from messages.framing import encode_frame
from messages.wire import LogEntry, Message, ParsedBatch, RawChunk

if TYPE_CHECKING:
    from actors.logtree.parse.stream import Batch, StreamParser

__all__ = ["LinkLogHandler", "RawLog", "SUB_LOGGER_PREFIX", "CHUNK_BYTES", "FLUSH_SECONDS"]

#: Logger names under this prefix are sub-loggers: `<prefix><name>`.
SUB_LOGGER_PREFIX = "nodecontainerd.sub."
#: Writes at least this large are sent at once as their own frame.
DIRECT_BYTES = 4096
#: Buffered small writes are sent when they reach this size...
CHUNK_BYTES = 64 * 1024
#: ...or this long after the first of them.
FLUSH_SECONDS = 0.02


class LinkLogHandler(logging.Handler):
    """Sends each log record to the root as one leveled entry."""

    def __init__(self, link: ChildLink) -> None:
        super().__init__(level=logging.INFO)
        self._link = link

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
            if record.exc_info:
                message += "\n" + logging.Formatter().formatException(record.exc_info)
            if record.stack_info:
                message += "\n" + record.stack_info
            sub = None
            if record.name.startswith(SUB_LOGGER_PREFIX):
                sub = record.name[len(SUB_LOGGER_PREFIX) :]
            entry = LogEntry(
                severity=Severity.from_logging(record.levelno),
                message=message.rstrip("\n"),
                file=os.path.basename(record.pathname),
                line=record.lineno,
                time=record.created,
                sub=sub,
            )
            try:
                self._link.send(entry)
            except ProtocolError:  # text that does not encode (a lone surrogate): escape it
                escaped = entry.message.encode("utf-8", "backslashreplace").decode("utf-8")
                self._link.send(dataclasses.replace(entry, message=escaped))
        except LinkClosed:
            pass
        except Exception:  # a logging call must never raise into the runnable
            self.handleError(record)


class RawLog:
    """A byte sink for the node's raw log (thread-safe).

    Args:
        link: the link to the root.
        sub: a reserved sub-logger name, or None for the node's own DN.
        parse: how to parse the lines here before sending; RAW sends bytes.
        clock: wall clock for parsed lines without a time of their own.
        attribute: the parser's attribution hook (`StreamParser`'s `attribute`), for
            a parsed stream whose lines tell whose they are (runsc's); None: none.
        hold: the parser's `hold` hook, with `attribute`.
    """

    def __init__(
        self,
        link: ChildLink,
        sub: str | None = None,
        parse: ParseFormat = ParseFormat.RAW,
        clock: Callable[[], float] = time.time,
        attribute: Callable[[Batch], None] | None = None,
        hold: Callable[[Batch, int], int] | None = None,
    ) -> None:
        self._link = link
        self._sub = sub
        self._parser: StreamParser | None = None
        if parse is not ParseFormat.RAW:
            from actors.logtree.parse.stream import StreamParser  # only nodes that parse

            self._parser = StreamParser(parse, attribute=attribute, hold=hold)
        self._clock = clock
        self._buf = bytearray()
        self._cond = threading.Condition()
        self._flusher: threading.Thread | None = None
        self._closed = False
        self._writes = 0

    def write(self, data: bytes | bytearray | memoryview) -> int:
        """Queue `data` for the node's raw log; returns its length."""
        n = len(data)
        if not n:
            return 0
        with self._cond:
            self._writes += 1
            if n >= DIRECT_BYTES:
                self._send_locked(bytes(self._buf) + bytes(data) if self._buf else bytes(data))
                self._buf.clear()
                return n
            was_empty = not self._buf
            self._buf += data
            if len(self._buf) >= CHUNK_BYTES:
                self._send_locked(bytes(self._buf))
                self._buf.clear()
            elif was_empty:
                self._wake_flusher()
        return n

    def flush(self) -> None:
        """Send whatever is buffered now, a held parsed entry included."""
        with self._cond:
            if self._buf:
                self._send_locked(bytes(self._buf))
                self._buf.clear()
            self._release_locked()

    def close(self) -> None:
        """Flush (a partial last line too) and stop the flusher thread."""
        with self._cond:
            self._closed = True
            self._cond.notify()
            if self._buf:
                self._send_locked(bytes(self._buf))
                self._buf.clear()
            if self._parser is not None:
                self._parser.flush_line(self._clock())
            self._release_locked()

    def _wake_flusher(self) -> None:
        """Starts the flusher thread, or wakes it; called with the lock held."""
        if self._flusher is None:
            self._flusher = threading.Thread(
                target=self._flush_loop, name="nc-rawlog-flush", daemon=True
            )
            self._flusher.start()
        else:
            self._cond.notify()

    def _send_locked(self, data: bytes) -> None:
        parser = self._parser
        if parser is None:
            self._send_frame(RawChunk(data=data, sub=self._sub))
            return
        now = self._clock()
        for start in range(0, len(data), CHUNK_BYTES):  # a frame per chunk, however large
            parser.feed(data[start : start + CHUNK_BYTES], now)
            batch = parser.take(keep_open=True)
            if batch is not None:
                self._send_frame(ParsedBatch(**batch.columns(), sub=self._sub))
        if parser.open or parser.pending:
            self._wake_flusher()

    def _release_locked(self) -> None:
        """Sends a parsed entry held back for continuation lines, if any."""
        if self._parser is None:
            return
        self._parser.close_entry()
        batch = self._parser.take(keep_open=False)
        if batch is not None:
            self._send_frame(ParsedBatch(**batch.columns(), sub=self._sub))

    def _send_frame(self, msg: Message) -> None:
        try:
            self._link.send_wire(encode_frame(msg.to_wire()))
        except LinkClosed:
            pass

    def _flush_loop(self) -> None:
        with self._cond:
            while not self._closed:
                if self._buf:
                    # Something is buffered: give it FLUSH_SECONDS to grow.
                    self._cond.wait(FLUSH_SECONDS)
                    if self._buf:
                        self._send_locked(bytes(self._buf))
                        self._buf.clear()
                elif self._parser is not None and (self._parser.open or self._parser.pending):
                    # An entry is held for continuation lines: release it once no
                    # byte came for FLUSH_SECONDS.
                    writes = self._writes
                    self._cond.wait(FLUSH_SECONDS)
                    if writes == self._writes and not self._buf:
                        self._release_locked()
                else:
                    self._cond.wait()
