"""``root.containerd``: run the containerd daemon under supervision.

The runnable `run` (``actors.containerd.process:run``) validates its arguments into
a `ContainerdSpec` and hands them to a `ContainerdProcessActor`, then blocks until
the actor reports an `Outcome`: canceled (return) or an error (raise → DEAD).

Theory of operation (every decision is taken in the actor's thread; helper threads
only wait and ``tell`` the actor what happened):

1. Setup. Check the binary and the config, and remove sockets a killed containerd
   left (`stale`). Make the runsc FIFO (never world-writable) and hold it open
   read-write, so its kernel buffer — and the bytes in it — outlive restarts of the
   pump. Bind the private notify socket. Start the children (`children`).
2. Spawn. `DaemonProcess` starts ``setpriv --pdeathsig KILL -- containerd --config
   <file>`` in this process's group with exactly ``PATH``, ``TMPDIR`` and
   ``NOTIFY_SOCKET``; its stdout and stderr go to the node's raw log.
3. Ready. `ReadinessTracker`: ``READY=1`` from containerd's pid, then a Version call
   → HEALTHY. Not ready within ``ready_timeout`` → fail.
4. End. Any exit of containerd is an error naming its exit status. A cancel sends
   SIGTERM, then SIGKILL after ``stop_timeout``; a failure SIGKILLs containerd at
   once. Either way the outcome is reported only once containerd has exited and its
   last output is in the log (or after `DRAIN_TIMEOUT`).
"""

from __future__ import annotations

import concurrent.futures
import os
import shutil
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import pykka

from actors.containerd.children import child_specs
from actors.containerd.daemon import DaemonProcess
from actors.containerd.fifo import FifoError, ensure_fifo, open_fifo, set_pipe_size
from actors.containerd.node import ContextNode, Node
from actors.containerd.notify import NotifyDatagram, NotifyError, NotifySocket
from actors.containerd.readiness import (
    BecomeHealthy,
    Fail,
    Probe,
    ReadinessAction,
    ReadinessTracker,
    VersionInfo,
    version_call,
)
from actors.containerd.spec import (
    ContainerdSpec,
    containerd_command,
    containerd_env,
    describe_exit,
)
from actors.containerd.stale import clear_stale_sockets
from actors.containerd.wakeup import Wakeup
from actors.supervisor.process.api import Context

__all__ = [
    "DRAIN_TIMEOUT",
    "ContainerdError",
    "ContainerdProcessActor",
    "Outcome",
    "run",
    "run_containerd",
]

DRAIN_TIMEOUT = 2.0
"""Seconds to wait for containerd's last output after it exited."""


class ContainerdError(Exception):
    """containerd failed: it exited, did not become ready, or could not start."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Outcome:
    """How a run of containerd ended.

    Attributes:
        canceled: it was stopped because the node was cancelled.
        error: why it failed, or None.
    """

    canceled: bool = False
    error: str | None = None


def run(ctx: Context, **args: Any) -> None:
    """The runnable of ``root.containerd``; `args` are `ContainerdSpec`'s fields.

    Raises:
        ContainerdError: containerd exited, was not ready in time or could not start.
    """
    spec = ContainerdSpec(**args)
    outcome = run_containerd(spec, ContextNode(ctx))
    if outcome.error is not None:
        raise ContainerdError(outcome.error)


def run_containerd(spec: ContainerdSpec, node: Node) -> Outcome:
    """Runs containerd for `node` until it fails or the node is cancelled."""
    done: concurrent.futures.Future[Outcome] = concurrent.futures.Future()
    ContainerdProcessActor.start(spec=spec, node=node, done=done)
    return done.result()


# Messages the helper threads tell the actor.
@dataclass(frozen=True, slots=True)
class _Spawned:
    pid: int


@dataclass(frozen=True, slots=True)
class _SpawnFailed:
    error: str


@dataclass(frozen=True, slots=True)
class _Exited:
    returncode: int


@dataclass(frozen=True, slots=True)
class _OutputClosed:
    pass


@dataclass(frozen=True, slots=True)
class _Notified:
    datagram: NotifyDatagram


@dataclass(frozen=True, slots=True)
class _NotifyBroken:
    error: str


@dataclass(frozen=True, slots=True)
class _VersionAnswered:
    info: VersionInfo


@dataclass(frozen=True, slots=True)
class _VersionFailed:
    error: str


@dataclass(frozen=True, slots=True)
class _Timeout:
    what: str  # "ready", "stop" or "drain"


@dataclass(frozen=True, slots=True)
class _CancelRequested:
    pass


class ContainerdProcessActor(pykka.ThreadingActor):
    """Runs one containerd; see the module doc. Handlers run in the actor's thread."""

    def __init__(
        self,
        *,
        spec: ContainerdSpec,
        node: Node,
        done: concurrent.futures.Future[Outcome],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self._spec = spec
        self._node = node
        self._log = node.log
        self._done = done
        self._clock = clock
        self._fifo_fd: int | None = None
        self._notify: NotifySocket | None = None
        self._notify_thread: threading.Thread | None = None
        self._wakeup = Wakeup()
        self._timers: dict[str, threading.Timer] = {}
        self._daemon: DaemonProcess | None = None
        self._pid: int | None = None
        self._spawn = "none"  # none → pending → running → exited | failed
        self._output_closed = False
        self._tracker: ReadinessTracker | None = None
        self._early: list[NotifyDatagram] = []  # arrived before _Spawned: replayed then
        self._spawned_at = 0.0
        self._pending: Outcome | None = None  # decided; reported once containerd is gone
        self._finished = False

    # ------------------------------------------------------------ lifecycle

    def on_start(self) -> None:
        try:
            self._setup()
        except Exception as e:  # noqa: BLE001 - a setup error fails the node, naming it
            self._fail(str(e))
            return
        threading.Thread(target=self._watch_cancel, name="nc-cancel", daemon=True).start()

    def on_receive(self, message: Any) -> None:
        handler = self._HANDLERS.get(type(message))
        if handler is None:
            raise TypeError(f"unexpected message {message!r}")
        handler(self, message)

    def on_failure(self, exception_type: Any, exception_value: Any, traceback: Any) -> None:
        # A bug in a handler: containerd must not outlive us unreported.
        self._kill()
        self._report(Outcome(error=f"containerd actor crashed: {exception_value!r}"))

    # ------------------------------------------------------------ setup (step 1 and 2)

    def _setup(self) -> None:
        spec = self._spec
        self._check_config_and_sockets()
        self._prepare_fifo()
        os.makedirs(spec.notify_dir, mode=0o700, exist_ok=True)
        self._notify = NotifySocket(spec.notify_socket)
        self._notify_thread = threading.Thread(
            target=self._read_notify, args=(self._notify,), name="nc-notify", daemon=True
        )
        self._notify_thread.start()
        self._node.start_children(child_specs(spec))
        self._spawn = "pending"
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            self._log.warning("setpriv not found: containerd gets no parent-death signal")
        self._daemon = DaemonProcess(
            containerd_command(spec, setpriv),
            containerd_env(spec),
            self._node.raw,
            on_spawned=lambda pid: self._tell(_Spawned(pid)),
            on_spawn_failed=lambda error: self._tell(
                _SpawnFailed(f"cannot start containerd {spec.binary!r}: {error}")
            ),
            on_exited=lambda returncode: self._tell(_Exited(returncode)),
            on_output_closed=lambda: self._tell(_OutputClosed()),
        )
        self._daemon.start()

    def _prepare_fifo(self) -> None:
        spec = self._spec
        created = ensure_fifo(spec.fifo, spec.fifo_mode)
        self._fifo_fd = open_fifo(spec.fifo)  # held until we exit: see the module doc
        try:
            size = set_pipe_size(self._fifo_fd, spec.pipe_size)
            self._log.info("runsc fifo %r: %s, buffer %d bytes", spec.fifo, created.value, size)
        except FifoError as e:
            self._log.warning(
                "runsc fifo %r: %s, buffer not raised: %s", spec.fifo, created.value, e
            )

    def _check_config_and_sockets(self) -> None:
        spec = self._spec
        if not (os.path.isfile(spec.binary) and os.access(spec.binary, os.X_OK)):
            raise ContainerdError(f"containerd binary {spec.binary!r} is not an executable file")
        for path in clear_stale_sockets(spec.config, spec.address):
            self._log.info("removed stale socket %r left by an earlier containerd", path)

    # ------------------------------------------------------------ helper threads

    def _tell(self, message: object) -> None:
        try:
            self.actor_ref.tell(message)
        except pykka.ActorDeadError:
            pass

    def _read_notify(self, sock: NotifySocket) -> None:
        while True:
            try:
                datagram = sock.receive(self._wakeup)
            except NotifyError as e:
                self._log.warning("ignoring notify datagram: %s", e)
                continue
            except OSError as e:
                self._tell(_NotifyBroken(str(e)))
                return
            if datagram is None:
                return
            self._tell(_Notified(datagram))

    def _watch_cancel(self) -> None:
        self._node.cancelled.wait()
        self._tell(_CancelRequested())

    def _probe(self, timeout: float) -> None:
        try:
            info = version_call(self._spec.address, timeout)
        except Exception as e:  # noqa: BLE001 - an RpcError or a bad answer: not ready
            self._tell(_VersionFailed(_rpc_error_text(e)))
        else:
            self._tell(_VersionAnswered(info))

    def _start_timer(self, what: str, seconds: float) -> None:
        timer = threading.Timer(seconds, self._tell, args=(_Timeout(what),))
        timer.daemon = True
        self._timers[what] = timer
        timer.start()

    # ------------------------------------------------------------ handlers

    def _on_spawned(self, msg: _Spawned) -> None:
        self._pid, self._spawn = msg.pid, "running"
        self._spawned_at = self._clock()
        self._log.info("started containerd %r (pid %d)", self._spec.binary, msg.pid)
        if self._pending is not None:  # cancelled or failed while it was spawning
            if self._pending.error is None:
                self._terminate()
            else:
                self._kill()
            return
        self._tracker = ReadinessTracker(
            address=self._spec.address,
            notify_path=self._spec.notify_socket,
            timeout=self._spec.ready_timeout,
            started_at=self._spawned_at,
            mode=self._spec.readiness,
        )
        self._start_timer("ready", self._spec.ready_timeout)
        self._apply(self._tracker.start(self._spawned_at))
        for datagram in self._early:
            self._on_notified(_Notified(datagram))
        self._early.clear()

    def _on_spawn_failed(self, msg: _SpawnFailed) -> None:
        self._spawn = "failed"
        self._fail(msg.error)

    def _on_exited(self, msg: _Exited) -> None:
        self._spawn = "exited"
        status = describe_exit(msg.returncode)
        if self._pending is None:
            self._pending = Outcome(error=f"containerd {self._spec.binary!r} exited: {status}")
        else:
            self._log.info("containerd exited: %s", status)
        if self._output_closed:
            self._report(self._pending)
        else:
            self._start_timer("drain", DRAIN_TIMEOUT)

    def _on_output_closed(self, msg: _OutputClosed) -> None:
        self._output_closed = True
        if self._spawn == "exited" and self._pending is not None:
            self._report(self._pending)

    def _on_notified(self, msg: _Notified) -> None:
        datagram = msg.datagram
        if self._spawn == "pending":
            self._early.append(datagram)
            return
        if datagram.pid != self._pid:
            self._log.warning(
                "ignoring notify datagram from pid %d, not containerd: %s",
                datagram.pid,
                datagram.message.describe(),
            )
            return
        self._log.info("containerd notify: %s", datagram.message.describe())
        if self._tracker is not None and self._pending is None:
            self._apply(self._tracker.notified(datagram.message, self._clock()))

    def _on_notify_broken(self, msg: _NotifyBroken) -> None:
        self._log.warning("notify socket %r broke: %s", self._spec.notify_socket, msg.error)

    def _on_version_answered(self, msg: _VersionAnswered) -> None:
        if self._tracker is not None and self._pending is None:
            self._apply(self._tracker.version_answered(msg.info))

    def _on_version_failed(self, msg: _VersionFailed) -> None:
        if self._tracker is not None and self._pending is None:
            self._apply(self._tracker.version_failed(msg.error))

    def _on_timeout(self, msg: _Timeout) -> None:
        self._timers.pop(msg.what, None)
        if msg.what == "ready" and self._tracker is not None and self._pending is None:
            self._apply(self._tracker.deadline_passed())
        elif msg.what == "stop" and self._spawn == "running":
            self._log.warning(
                "containerd did not stop within %gs of SIGTERM: sending SIGKILL",
                self._spec.stop_timeout,
            )
            self._kill()
        elif msg.what == "drain" and self._pending is not None:
            self._log.warning("containerd's output did not close: something still holds it")
            self._report(self._pending)

    def _on_cancel(self, msg: _CancelRequested) -> None:
        if self._pending is not None:
            return  # already failing or stopping: that outcome stands
        self._pending = Outcome(canceled=True)
        self._log.info("cancelled (%s): stopping containerd", self._node.cancel_reason())
        if self._spawn == "running":
            self._terminate()
        elif self._spawn in ("none", "failed"):
            self._report(self._pending)
        # "pending": _on_spawned terminates it; "exited": _on_exited reports

    _HANDLERS: ClassVar[dict[type, Callable[[ContainerdProcessActor, Any], None]]] = {
        _Spawned: _on_spawned,
        _SpawnFailed: _on_spawn_failed,
        _Exited: _on_exited,
        _OutputClosed: _on_output_closed,
        _Notified: _on_notified,
        _NotifyBroken: _on_notify_broken,
        _VersionAnswered: _on_version_answered,
        _VersionFailed: _on_version_failed,
        _Timeout: _on_timeout,
        _CancelRequested: _on_cancel,
    }

    # ------------------------------------------------------------ decisions

    def _apply(self, actions: list[ReadinessAction]) -> None:
        for action in actions:
            if isinstance(action, Probe):
                threading.Thread(
                    target=self._probe, args=(action.timeout,), name="nc-version", daemon=True
                ).start()
            elif isinstance(action, BecomeHealthy):
                self._timers.pop("ready").cancel()
                elapsed = (self._clock() - self._spawned_at) * 1000
                self._log.info(
                    "containerd %s (%s) is ready, %.0f ms after spawn",
                    action.info.version,
                    action.info.revision,
                    elapsed,
                )
                self._node.signal_healthy()
            elif isinstance(action, Fail):
                self._fail(action.reason)

    def _fail(self, reason: str) -> None:
        """Fail the node: kill containerd at once, report once it is gone."""
        if self._pending is not None:
            return
        self._pending = Outcome(error=reason)
        if self._spawn == "running":
            self._kill()
        elif self._spawn in ("none", "failed"):
            self._report(self._pending)

    def _terminate(self) -> None:
        self._send(signal.SIGTERM)
        self._start_timer("stop", self._spec.stop_timeout)

    def _kill(self) -> None:
        self._send(signal.SIGKILL)

    def _send(self, sig: signal.Signals) -> None:
        if self._daemon is not None and self._spawn == "running":
            self._daemon.send_signal(sig)  # False if already dead: _Exited is on its way

    def _report(self, outcome: Outcome) -> None:
        """Clean up and hand `outcome` to `run_containerd`. Idempotent."""
        if self._finished:
            return
        self._finished = True
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        self._wakeup.set()
        if self._notify_thread is not None:
            self._notify_thread.join()
        if self._notify is not None:
            self._notify.close()
        self._wakeup.close()
        if self._daemon is not None:
            self._daemon.close()
        if self._fifo_fd is not None:
            os.close(self._fifo_fd)
            self._fifo_fd = None
        self._node.raw.flush()
        self._done.set_result(outcome)
        try:
            self.stop()
        except pykka.ActorDeadError:
            pass  # reporting from on_failure: pykka stopped us already


def _rpc_error_text(error: Exception) -> str:
    details = getattr(error, "details", None)
    code = getattr(error, "code", None)
    if callable(details) and callable(code):
        return f"{code().name.lower()}: {details()}"
    return str(error)
