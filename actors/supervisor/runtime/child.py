"""The root's side of one running host process.

A `ChildProcess` owns the root's end of a host's socket, its stdio pipe and
its pid, with three daemon threads:

* the reader decodes frames. Logs take the fast path straight into the log
  tree (raw chunks and leveled entries, in order per DN, never through the
  actor's mailbox); everything else is handed to `on_message`. A protocol
  error (a malformed, unknown, out-of-order or oversized frame) is handed to
  `on_fault` with a text naming the DN, and reading stops. Bytes leave the
  socket only under the receive lock, so `drain` -- called by the actor before
  it judges the node's liveness -- can take whatever the host sent up to that
  moment, and hand it over ahead of the verdict;
* the stdio reader copies whatever the host writes to stdout/stderr (stray
  prints, an interpreter crash) into the node's raw log;
* the waiter blocks in waitpid, so a death is noticed the moment the kernel
  reaps it (no polling), lets the reader drain what the host sent before it
  died, kills whatever is left in the host's process group, and hands the
  outcome to `on_exit` exactly once.

Callbacks run on these threads; they must only hand work over (e.g. a pykka
`tell`), never block.
"""

from __future__ import annotations

import os
import select
import signal
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import cast

from actors.exit_status import describe_wait_status
from actors.logtree import LeveledEntry, LogTree
from actors.supervisor.core.events import ExitKind
from actors.supervisor.runtime.spawn import SpawnedHost
from messages.errors import ProtocolError
from messages.framing import DEFAULT_MAX_FRAME, FrameReader, encode_frame
from messages.session import ChildSession
from messages.wire import (
    CHILD_TO_ROOT,
    ChildMessage,
    Exit,
    LogEntry,
    Message,
    ParsedBatch,
    RawChunk,
    decode,
)

__all__ = ["ChildProcess", "ChildOutcome"]

#: How long the waiter lets the reader drain after the process was reaped.
DRAIN_SECONDS = 1.0
_RECV_BYTES = 256 * 1024
#: At most this many reads per `drain`: a host that keeps writing cannot hold the actor.
_DRAIN_READS = 16


@dataclass(frozen=True, slots=True)
class ChildOutcome:
    """How a host process ended, as the root saw it."""

    kind: ExitKind
    error: str | None
    #: The raw wait status, for logs.
    status: int


def _parsed_bytes(msg: ParsedBatch) -> int:
    """Bytes of the stream a parsed batch stands for (its lines and their newlines)."""
    raws = msg.raws
    raw_bytes: int = sum(r[2] for r in raws)
    lines: int = sum(map(len, msg.heads)) if msg.lengths is None else sum(msg.lengths)
    more: int = 0 if msg.mores is None else sum(map(len, msg.mores))
    return lines + more + raw_bytes + len(msg.heads) + len(raws)


def outcome_of(exit_msg: Exit | None, status: int) -> ChildOutcome:
    """Combine the host's Exit message (if any) and its wait status.

    A protocol fault does not enter into it: the fault reached the core first
    (`on_fault` is called before the reader finishes, and the waiter waits for
    the reader), and the core alone decides that a faulted node is DEAD with
    the fault's reason whatever exit follows.
    """
    if exit_msg is None:
        return ChildOutcome(
            ExitKind.CRASHED,
            f"process ended ({describe_wait_status(status)}) without reporting a result",
            status,
        )
    return ChildOutcome(exit_msg.kind, exit_msg.error, status)


class ChildProcess:
    """The root's handle on one host process (one start of one node)."""

    def __init__(
        self,
        dn: str,
        generation: int,
        host: SpawnedHost,
        *,
        log_tree: LogTree,
        on_message: Callable[[ChildProcess, ChildMessage], None],
        on_fault: Callable[[ChildProcess, str], None],
        on_exit: Callable[[ChildProcess, ChildOutcome], None],
        on_log_bytes: Callable[[str, int], None] | None = None,
        max_frame: int = DEFAULT_MAX_FRAME,
    ) -> None:
        self._on_log_bytes = on_log_bytes
        self.dn = dn
        self.generation = generation
        self.pid = host.pid
        self._sock = host.sock
        self._stdio_fd = host.stdio_fd
        self._tree = log_tree
        self._on_message = on_message
        self._on_fault = on_fault
        self._on_exit = on_exit
        self._max_frame = max_frame
        self._session = ChildSession(dn)
        self._exit_msg: Exit | None = None
        self._frames = FrameReader(max_frame=max_frame)
        #: Held while bytes are taken from the socket and handed over (reader or drain).
        self._recv_lock = threading.Lock()
        #: False once the stream ended or broke: nobody reads it again.
        self._reading = True
        self._reader_done = threading.Event()
        self._send_lock = threading.Lock()
        self.reaped = False
        #: Sub-logger names the supervisor granted this node.
        self.sub_loggers: set[str] = set()
        self._threads = [
            threading.Thread(target=self._read_loop, name=f"nc-read-{dn}", daemon=True),
            threading.Thread(target=self._stdio_loop, name=f"nc-stdio-{dn}", daemon=True),
            threading.Thread(target=self._wait_loop, name=f"nc-wait-{dn}", daemon=True),
        ]

    def start(self) -> None:
        """Start the reader, stdio and waiter threads."""
        for t in self._threads:
            t.start()

    # ------------------------------------------------------------ to the child

    def send(self, msg: Message) -> bool:
        """Send a control message without blocking; False if it could not go.

        Control messages are tiny; a host whose socket buffer is full has not
        read for a long time and is treated as hung.
        """
        frame = encode_frame(msg.to_wire())
        with self._send_lock:
            try:
                sent = self._sock.send(frame, socket.MSG_DONTWAIT)
            except (BlockingIOError, OSError):
                return False
            if sent != len(frame):
                # A torn frame would corrupt the stream: finish it blocking briefly.
                self._sock.settimeout(1.0)
                try:
                    self._sock.sendall(frame[sent:])
                except OSError:
                    return False
                finally:
                    self._sock.settimeout(None)
        return True

    def kill(self) -> None:
        """SIGKILL the host's whole process group (no-op once reaped)."""
        if self.reaped:
            return
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass

    # ------------------------------------------------------------ threads

    def drain(self) -> None:
        """Take what the host has sent so far and hand it over, on the calling thread.

        The actor calls it before it judges the node's liveness: a heartbeat sent in
        time but not yet read (the root was frozen, starved, or behind) is then in
        the mailbox ahead of the verdict. Reads at most `_DRAIN_READS` chunks.
        """
        with self._recv_lock:
            for _ in range(_DRAIN_READS):
                if not self._take():
                    return

    def _read_loop(self) -> None:
        poller = select.poll()
        poller.register(self._sock, select.POLLIN)
        try:
            while self._reading:
                poller.poll()
                with self._recv_lock:
                    self._take()
        finally:
            self._reader_done.set()

    def _take(self) -> bool:
        """Read one chunk without blocking and hand its frames over (receive lock held).

        Returns:
            True if a chunk was read; False if none was waiting or reading is over.
        """
        if not self._reading:
            return False
        try:
            data = self._sock.recv(_RECV_BYTES, socket.MSG_DONTWAIT)
        except BlockingIOError:
            return False
        except OSError:
            self._reading = False
            return False
        try:
            if not data:
                self._reading = False
                self._frames.close()
                return False
            for frame in self._frames.feed(data):
                self._handle(decode(frame, CHILD_TO_ROOT))
        except ProtocolError as e:
            self._reading = False
            self._on_fault(self, f"protocol error from {self.dn}: {e}")
            try:
                self._sock.shutdown(socket.SHUT_RD)  # wakes the reader, if a drain found it
            except OSError:
                pass
            return False
        return True

    def _handle(self, msg: Message) -> None:
        self._session.accept(msg)
        if type(msg) is RawChunk:
            dn = self._sub_dn(msg.sub)
            self._tree.write_raw(dn, msg.data)
            if self._on_log_bytes is not None:
                self._on_log_bytes(dn, len(msg.data))
        elif type(msg) is ParsedBatch:
            dn = self._sub_dn(msg.sub)
            self._tree.write_parsed(dn, msg)
            if self._on_log_bytes is not None:
                self._on_log_bytes(dn, _parsed_bytes(msg))
        elif type(msg) is LogEntry:
            dn = self._sub_dn(msg.sub)
            if self._on_log_bytes is not None:
                self._on_log_bytes(dn, len(msg.message))
            self._tree.write_leveled(
                LeveledEntry(
                    dn=dn,
                    severity=msg.severity,
                    lines=tuple(msg.message.split("\n")),
                    timestamp=float(msg.time),
                    file=msg.file,
                    line=msg.line,
                )
            )
        else:
            if type(msg) is Exit:
                self._exit_msg = msg
            # decode(..., CHILD_TO_ROOT) only makes the ChildMessage types.
            self._on_message(self, cast("ChildMessage", msg))

    def _sub_dn(self, sub: str | None) -> str:
        if sub is None:
            return self.dn
        if sub not in self.sub_loggers:
            raise ProtocolError(f"log for sub-logger {sub!r} that {self.dn} did not reserve")
        return f"{self.dn}.{sub}"

    def _stdio_loop(self) -> None:
        fd = self._stdio_fd
        try:
            while True:
                data = os.read(fd, 65536)
                if not data:
                    break
                self._tree.write_raw(self.dn, data)
                if self._on_log_bytes is not None:
                    self._on_log_bytes(self.dn, len(data))
        except OSError:
            pass
        finally:
            os.close(fd)

    def _wait_loop(self) -> None:
        _, status = os.waitpid(self.pid, 0)
        self.reaped = True
        # The group may hold processes the runnable started (e.g. containerd);
        # the group id cannot be reused while any member lives, so this is safe.
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self._reader_done.wait(DRAIN_SECONDS)
        try:
            self._sock.shutdown(socket.SHUT_RDWR)  # wakes a reader still in recv
        except OSError:
            pass
        try:
            self._sock.close()
        except OSError:
            pass
        self._on_exit(self, outcome_of(self._exit_msg, status))
