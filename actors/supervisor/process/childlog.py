"""Logging inside a runnable's process: leveled and raw, sent to the root.

Leveled: `LinkLogHandler` is installed on the process's root `logging` logger,
so every `logging` call in the runnable (its own, or a library's) becomes one
`LogEntry` frame on the node's DN, sent as it happens. A record of a
sub-logger (`sub_logger(ctx, "dut")`) goes to DN `<node>.dut`. Severity:
CRITICAL -> FATAL, ERROR, WARNING, anything lower -> INFO. A formatted
exception is part of the same entry (multi-line entries are atomic).

Raw: `RawLog` batches bytes into chunks (many lines per frame). A write of at
least `DIRECT_BYTES` goes out at once, as one frame (after whatever was
buffered, so order is kept); smaller writes are buffered and sent when the
buffer reaches `CHUNK_BYTES` or `FLUSH_SECONDS` after the first buffered byte.

Loss bound: a process that is SIGKILLed loses only what it had not sent yet,
i.e. at most its buffered partial chunk: under `CHUNK_BYTES` bytes written in
the last `FLUSH_SECONDS`. A write that returned after a direct send is in the
root's socket buffer and is not lost. A graceful exit flushes everything.
"""

from __future__ import annotations

import logging
import os
import threading

from actors.supervisor.process.link import ChildLink, LinkClosed
from messages.framing import encode_frame
from messages.wire import LogEntry

__all__ = ["LinkLogHandler", "RawLog", "SUB_LOGGER_PREFIX", "CHUNK_BYTES", "FLUSH_SECONDS"]

#: Logger names under this prefix are sub-loggers: `<prefix><name>`.
SUB_LOGGER_PREFIX = "nodecontainerd.sub."
#: Writes at least this large are sent at once as their own frame.
DIRECT_BYTES = 4096
#: Buffered small writes are sent when they reach this size...
CHUNK_BYTES = 64 * 1024
#: ...or this long after the first of them.
FLUSH_SECONDS = 0.02


def severity_of(levelno: int) -> str:
    """Map a `logging` level to a log tree severity."""
    if levelno >= logging.CRITICAL:
        return "FATAL"
    if levelno >= logging.ERROR:
        return "ERROR"
    if levelno >= logging.WARNING:
        return "WARNING"
    return "INFO"


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
            self._link.send(
                LogEntry(
                    severity=severity_of(record.levelno),
                    message=message.rstrip("\n"),
                    file=os.path.basename(record.pathname),
                    line=record.lineno,
                    time=record.created,
                    sub=sub,
                )
            )
        except LinkClosed:
            pass
        except Exception:  # a logging call must never raise into the runnable
            self.handleError(record)


class RawLog:
    """A byte sink for the node's raw log (thread-safe)."""

    def __init__(self, link: ChildLink, sub: str | None = None) -> None:
        self._link = link
        self._sub = sub
        self._buf = bytearray()
        self._cond = threading.Condition()
        self._flusher: threading.Thread | None = None
        self._closed = False

    def write(self, data: bytes | bytearray | memoryview) -> int:
        """Queue `data` for the node's raw log; returns its length."""
        n = len(data)
        if not n:
            return 0
        with self._cond:
            if n >= DIRECT_BYTES:
                self._send_locked(bytes(self._buf) + bytes(data) if self._buf else bytes(data))
                self._buf.clear()
                return n
            was_empty = not self._buf
            self._buf += data
            if len(self._buf) >= CHUNK_BYTES:
                self._send_locked(bytes(self._buf))
                self._buf.clear()
            else:
                if self._flusher is None:
                    self._flusher = threading.Thread(
                        target=self._flush_loop, name="nc-rawlog-flush", daemon=True
                    )
                    self._flusher.start()
                elif was_empty:
                    self._cond.notify()
        return n

    def flush(self) -> None:
        """Send whatever is buffered now."""
        with self._cond:
            if self._buf:
                self._send_locked(bytes(self._buf))
                self._buf.clear()

    def close(self) -> None:
        """Flush and stop the flusher thread."""
        with self._cond:
            self._closed = True
            self._cond.notify()
        self.flush()

    def _send_locked(self, data: bytes) -> None:
        body: dict[str, object] = {"type": "raw", "data": data}
        if self._sub is not None:
            body["sub"] = self._sub
        try:
            self._link.send_wire(encode_frame(body))
        except LinkClosed:
            pass

    def _flush_loop(self) -> None:
        with self._cond:
            while not self._closed:
                if not self._buf:
                    self._cond.wait()
                    continue
                # Something is buffered: give it FLUSH_SECONDS to grow.
                self._cond.wait(FLUSH_SECONDS)
                if self._buf:
                    self._send_locked(bytes(self._buf))
                    self._buf.clear()
