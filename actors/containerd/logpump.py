"""`root.containerd.runsc`: pump every byte of runsc's log FIFO into the raw log.

The runnable `run` (`actors.containerd.logpump:run`) starts a `LogPumpActor` on
the node's raw log and blocks until it stops.

Rules (compare the Go original's 10 ms sleep loop):

* The FIFO is opened `O_RDWR | O_NONBLOCK`. Read-write: this descriptor is itself
  a writer, so the read end never sees EOF when runsc's writers come and go — no
  EOF spin. Non-blocking: after `poll` said readable, a read never blocks, so the
  pump can always be stopped.
* A reader thread blocks in `poll` on the FIFO and a wake-up pipe; nothing sleeps
  or wakes on a timer. It reads up to 64 KiB at a time and writes each read
  straight to the sink before polling again.
* Stopping sets the wake-up pipe. The reader checks it before every read, so it
  stops between reads: every byte it read has been written to the sink, and every
  byte it did not read stays in the FIFO's kernel buffer — which `root.containerd`
  holds open — for the next pump. A graceful restart loses nothing.
* Loss bound on SIGKILL of the pump: the one read (≤ 64 KiB) taken from the FIFO
  and not yet handed to the raw log, plus what the raw log had buffered and not
  sent (for reads under 4 KiB, at most 20 ms worth; larger ones are sent at once).
* Lines are not the pump's business: a read may end inside a line, and the raw log
  joins the pieces. Unparsed (`[log] parse` "raw"), the root's log tree does, even
  across two incarnations of the pump. Parsed (the default, glog), the pump's own
  process does, and a line still partial when that process ends is stored as it is,
  as a line of its own: its bytes are kept, but a restart in the middle of a line
  splits it in two.
* Parsed, each record is attributed to the pod sandbox and container runsc wrote it
  for (`actors.logtree.parse.runsc`): the entries carry `sandbox` and `container`
  fields, or none when runsc's output does not say whose the line is.
* The pipe buffer is raised with `F_SETPIPE_SZ` (a failure is a warning).
* HEALTHY once the FIFO is open and the reader runs.
"""

from __future__ import annotations

import concurrent.futures
import errno
import os
import threading
from dataclasses import dataclass
from typing import Any

import pykka

from actors.containerd.core.fifo_rules import FifoError
from actors.containerd.core.spec import LogPumpSpec
from actors.containerd.fifo import open_fifo, set_pipe_size
from actors.containerd.node import ContextNode, NodeHandle, RawSink
from actors.logtree.parse.runsc import RunscAttribution
from actors.mailbox import tell_or_drop, tell_when_set
from actors.supervisor.process.api import Context
from actors.wakeup import Wakeup, wait_readable
from messages.specs import spec_from_wire

__all__ = ["READ_SIZE", "LogPumpActor", "PumpError", "pump", "run", "run_pump"]

#: Bytes per read: as fast as larger reads on a pipe, and the SIGKILL loss bound.
READ_SIZE = 64 * 1024


class PumpError(Exception):
    """The FIFO could not be opened or read."""


def run(ctx: Context, **wire: Any) -> None:
    """The runnable of `root.containerd.runsc`; `wire` is a `LogPumpSpec`.

    Returns once cancelled (the node ends CANCELED).

    Raises:
        PumpError: the FIFO could not be opened or read.
    """
    spec = spec_from_wire(LogPumpSpec, wire)
    attribution = RunscAttribution()
    node = ContextNode(ctx, attribute=attribution.annotate, hold=attribution.hold_back)
    error = run_pump(spec.fifo, spec.pipe_size, node)
    if error is not None:
        raise PumpError(error)


def run_pump(
    fifo: str, pipe_size: int, node: NodeHandle, sink: RawSink | None = None
) -> str | None:
    """Pumps `fifo` into `sink` (default: the node's raw log) until `node` is cancelled.

    Returns:
        None when stopped by the cancel, else why the pump failed.
    """
    done: concurrent.futures.Future[str | None] = concurrent.futures.Future()
    ref = LogPumpActor.start(
        fifo=fifo, pipe_size=pipe_size, node=node, sink=sink or node.raw, done=done
    )
    node.vouch(lambda: done.done() or ref.is_alive())  # see `api.vouch`
    return done.result()


def pump(fd: int, wakeup: Wakeup, sink: RawSink, read_size: int = READ_SIZE) -> None:
    """Copies from `fd` to `sink` until `wakeup` is set. Runs in the reader thread.

    Each read is written to `sink` before the next poll; the wake-up is checked
    before every read, so nothing read is ever dropped.

    Args:
        fd: a non-blocking descriptor of the FIFO, opened read-write.
        wakeup: set it to make the pump return.
        sink: where the bytes go.
        read_size: bytes per read.

    Raises:
        OSError: reading the FIFO failed.
    """
    read = os.read
    write = sink.write
    while wait_readable(fd, wakeup):
        try:
            data = read(fd, read_size)
        except BlockingIOError:
            continue  # someone else drained it between poll and read
        except InterruptedError:
            continue
        if data:
            write(data)
        else:  # EOF is impossible on a read-write descriptor; do not spin on it
            raise OSError(errno.EPIPE, "unexpected end of file on the fifo")


@dataclass(frozen=True, slots=True)
class _ReaderStopped:
    error: str | None


@dataclass(frozen=True, slots=True)
class _CancelRequested:
    pass


class LogPumpActor(pykka.ThreadingActor):
    """Owns the FIFO descriptor and the reader thread. Handlers run in the actor's thread."""

    def __init__(
        self,
        *,
        fifo: str,
        pipe_size: int,
        node: NodeHandle,
        sink: RawSink,
        done: concurrent.futures.Future[str | None],
    ) -> None:
        super().__init__()
        self._fifo = fifo
        self._pipe_size = pipe_size
        self._node = node
        self._sink = sink
        self._done = done
        self._fd: int | None = None
        self._wakeup = Wakeup()
        self._reader: threading.Thread | None = None
        self._error: str | None = None

    def on_start(self) -> None:
        try:
            self._fd = open_fifo(self._fifo, nonblocking=True)
        except FifoError as e:
            self._finish(str(e))
            return
        try:
            size = set_pipe_size(self._fd, self._pipe_size)
            self._node.log.info("pumping runsc fifo %r, buffer %d bytes", self._fifo, size)
        except FifoError as e:
            self._node.log.warning("pumping runsc fifo %r, buffer not raised: %s", self._fifo, e)
        self._reader = threading.Thread(target=self._read, name="nc-pump", daemon=True)
        self._reader.start()
        tell_when_set(self._node.cancelled, self.actor_ref, _CancelRequested)
        self._node.signal_healthy()

    def on_receive(self, message: Any) -> None:
        if isinstance(message, _CancelRequested):
            self._wakeup.set()  # the reader stops between reads and tells us
        elif isinstance(message, _ReaderStopped):
            self._finish(message.error)
        else:
            raise TypeError(f"unexpected message {message!r}")

    def on_failure(self, exception_type: Any, exception_value: Any, traceback: Any) -> None:
        self._wakeup.set()
        if not self._done.done():
            self._done.set_result(f"log pump actor crashed: {exception_value!r}")

    def _read(self) -> None:
        assert self._fd is not None
        error = None
        try:
            pump(self._fd, self._wakeup, self._sink)
        except Exception as e:  # noqa: BLE001 - any read failure fails the node
            error = f"cannot read runsc fifo {self._fifo!r}: {e}"
        tell_or_drop(self.actor_ref, _ReaderStopped(error))

    def _finish(self, error: str | None) -> None:
        # The reader has returned (or never ran): nothing polls the descriptors now.
        self._sink.flush()
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        self._wakeup.close()
        self._done.set_result(error)
        self.stop()
