"""`root.containerd`: run the containerd daemon under supervision.

The runnable `run` (`actors.containerd.process:run`) validates its arguments into
a `ContainerdSpec` and hands them to a `ContainerdProcessActor`, then blocks until
the actor reports a `ContainerdOutcome`: canceled (return) or an error (raise → DEAD).

The actor is the thin I/O shell of `ContainerdLifecycle`, which takes every
decision (readiness, liveness, stopping, draining; see its module doc). The actor
does what needs the OS, turns what it sees into lifecycle events and carries out
the actions that come back. Every event is handled in the actor's thread; helper
threads only wait and `tell` the actor what happened:

1. Setup. Check the binary and the config, and remove sockets a killed containerd
   left (`stale`). Make the runsc FIFO (never world-writable) and hold it open
   read-write, so its kernel buffer — and the bytes in it — outlive restarts of the
   pump. Bind the private notify socket.
2. Spawn. `DaemonProcess` starts ``setpriv --pdeathsig KILL -- containerd --config
   <file>` in this process's group with exactly `PATH`, `TMPDIR`` and
   `NOTIFY_SOCKET`; its stdout and stderr go to the node's raw log. Then the
   children start (`children`), while containerd does.
3. Probes. Each `StartProbe` is one `version_call` (the one Version probe) in a
   thread of its own; timers are `threading.Timer` s telling `TimerExpired`.
4. Report. Close everything, flush the raw log and hand the `ContainerdOutcome` over.
"""

from __future__ import annotations

import concurrent.futures
import os
import shutil
import signal
import threading
import time
from collections.abc import Callable
from functools import partial
from typing import Any, assert_never

import pykka

from actors.containerd.api.version import describe_probe_error, version_call
from actors.containerd.children import child_specs
from actors.containerd.core.events import (
    Action,
    AddMetric,
    ArmTimer,
    CancelRequested,
    ChildrenFailed,
    ContainerdOutcome,
    DisarmTimer,
    Event,
    Exited,
    Kill,
    Log,
    Notified,
    NotifyBroken,
    ObserveMetric,
    OutputClosed,
    ProbeAnswered,
    ProbeFailed,
    Report,
    SetupFailed,
    SetupSucceeded,
    SignalHealthy,
    Spawn,
    Spawned,
    SpawnFailed,
    StartChildren,
    StartProbe,
    Terminate,
    Timer,
    TimerExpired,
)
from actors.containerd.core.fifo_rules import FifoError
from actors.containerd.core.lifecycle import DRAIN_TIMEOUT, ContainerdLifecycle
from actors.containerd.core.notify import NotifyError
from actors.containerd.core.spec import ContainerdSpec, containerd_command, containerd_env
from actors.containerd.daemon import DaemonProcess
from actors.containerd.fifo import ensure_fifo, open_fifo, set_pipe_size
from actors.containerd.node import ContextNode, NodeHandle
from actors.containerd.notify_socket import NotifySocket
from actors.containerd.stale import clear_stale_sockets
from actors.mailbox import tell_or_drop, tell_when_set
from actors.supervisor.process.api import Context
from actors.wakeup import Wakeup
from messages.specs import spec_from_wire

__all__ = [
    "DRAIN_TIMEOUT",
    "ContainerdFailure",
    "ContainerdProcessActor",
    "ContainerdOutcome",
    "run",
    "run_containerd",
]


class ContainerdFailure(Exception):
    """containerd failed: it exited, did not become ready, or could not start."""


def run(ctx: Context, **wire: Any) -> None:
    """The runnable of `root.containerd`; `wire` is a `ContainerdSpec` (`spec_to_wire`).

    Raises:
        ContainerdFailure: containerd exited, was not ready in time, stopped answering
            the liveness probe, or could not start.
    """
    spec = spec_from_wire(ContainerdSpec, wire)
    outcome = run_containerd(spec, ContextNode(ctx))
    if outcome.error is not None:
        raise ContainerdFailure(outcome.error)


def run_containerd(spec: ContainerdSpec, node: NodeHandle) -> ContainerdOutcome:
    """Runs containerd for `node` until it fails or the node is cancelled."""
    done: concurrent.futures.Future[ContainerdOutcome] = concurrent.futures.Future()
    ref = ContainerdProcessActor.start(spec=spec, node=node, done=done)
    # Heartbeats prove the actor still runs containerd: an actor that ended without
    # reporting (a bug in its teardown) stops them, and the supervisor kills us.
    node.vouch(lambda: done.done() or ref.is_alive())
    return done.result()


class ContainerdProcessActor(pykka.ThreadingActor):
    """Runs one containerd; see the module doc. Handlers run in the actor's thread.

    Messages are lifecycle `Event` s, told by the helper threads.
    """

    def __init__(
        self,
        *,
        spec: ContainerdSpec,
        node: NodeHandle,
        done: concurrent.futures.Future[ContainerdOutcome],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self._spec = spec
        self._node = node
        self._log = node.log
        self._done = done
        self._clock = clock
        self._lifecycle = ContainerdLifecycle(spec)
        self._fifo_fd: int | None = None
        self._notify: NotifySocket | None = None
        self._notify_thread: threading.Thread | None = None
        self._wakeup = Wakeup()
        self._timers: dict[Timer, threading.Timer] = {}
        self._daemon: DaemonProcess | None = None
        self._finished = False

    # ------------------------------------------------------------ pykka hooks

    def on_start(self) -> None:
        try:
            self._setup()
        except Exception as e:  # noqa: BLE001 - a setup error fails the node, naming it
            self._feed(SetupFailed(str(e)))
            return
        self._feed(SetupSucceeded())
        tell_when_set(
            self._node.cancelled,
            self.actor_ref,
            lambda: CancelRequested(self._node.cancel_reason()),
        )

    def on_receive(self, message: Any) -> None:
        self._feed(message)

    def on_failure(self, exception_type: Any, exception_value: Any, traceback: Any) -> None:
        # A bug in a handler (or an illegal event): containerd must not outlive us
        # unreported.
        self._send(signal.SIGKILL)
        self._report(ContainerdOutcome(error=f"containerd actor crashed: {exception_value!r}"))

    def _feed(self, event: Event) -> None:
        for action in self._lifecycle.handle(event, self._clock()):
            self._execute(action)

    # ------------------------------------------------------------ setup

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
            raise ContainerdFailure(f"containerd binary {spec.binary!r} is not an executable file")
        for path in clear_stale_sockets(spec.config, spec.address):
            self._log.info("removed stale socket %r left by an earlier containerd", path)

    def _spawn(self) -> None:
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            self._log.warning("setpriv not found: containerd gets no parent-death signal")
        self._daemon = DaemonProcess(
            containerd_command(self._spec, setpriv),
            containerd_env(self._spec),
            self._node.raw,
            on_spawned=lambda pid: self._tell(Spawned(pid)),
            on_spawn_failed=lambda error: self._tell(SpawnFailed(error)),
            on_exited=lambda returncode: self._tell(Exited(returncode)),
            on_output_closed=lambda: self._tell(OutputClosed()),
        )
        self._daemon.start()

    def _start_children(self) -> None:
        try:
            self._node.start_children(child_specs(self._spec))
        except Exception as e:  # noqa: BLE001 - the supervisor refused: the node fails
            self._feed(ChildrenFailed(str(e)))

    # ------------------------------------------------------------ helper threads

    def _tell(self, message: Event) -> None:
        tell_or_drop(self.actor_ref, message)

    def _read_notify(self, sock: NotifySocket) -> None:
        while True:
            try:
                datagram = sock.receive(self._wakeup)
            except NotifyError as e:
                self._log.warning("ignoring notify datagram: %s", e)
                continue
            except OSError as e:
                self._tell(NotifyBroken(str(e)))
                return
            if datagram is None:
                return
            self._tell(Notified(datagram))

    def _probe(self, probe: int, timeout: float) -> None:
        try:
            info = version_call(self._spec.address, timeout)
        except Exception as e:  # noqa: BLE001 - an RpcError or a bad answer: a failure
            self._tell(ProbeFailed(probe, describe_probe_error(e)))
        else:
            self._tell(ProbeAnswered(probe, info))

    # ------------------------------------------------------------ actions

    def _execute(self, action: Action) -> None:
        match action:
            case Spawn():
                self._spawn()
            case StartChildren():
                self._start_children()
            case StartProbe(probe=probe, timeout=timeout):
                threading.Thread(
                    target=self._probe, args=(probe, timeout), name="nc-version", daemon=True
                ).start()
            case ArmTimer(timer=timer, token=token, delay=delay):
                self._cancel_timer(timer)
                thread = threading.Timer(delay, self._tell, args=(TimerExpired(timer, token),))
                thread.daemon = True
                self._timers[timer] = thread
                thread.start()
            case DisarmTimer(timer=timer):
                self._cancel_timer(timer)
            case Terminate():
                self._send(signal.SIGTERM)
            case Kill():
                self._send(signal.SIGKILL)
            case SignalHealthy():
                self._node.signal_healthy()
            case Log(severity=severity, message=message):
                self._log.log(severity, "%s", message)
            case AddMetric(name=name, value=value, labels=labels):
                self._node.add_metric(name, value, labels)
            case ObserveMetric(name=name, value=value, labels=labels):
                self._node.observe_metric(name, value, labels)
            case Report(outcome=outcome):
                self._report(outcome)
            case _:
                assert_never(action)

    def _cancel_timer(self, timer: Timer) -> None:
        thread = self._timers.pop(timer, None)
        if thread is not None:
            thread.cancel()

    def _send(self, sig: signal.Signals) -> None:
        if self._daemon is not None:
            self._daemon.send_signal(sig)  # False if already dead: Exited is on its way

    def _report(self, outcome: ContainerdOutcome) -> None:
        """Clean up and hand `outcome` to `run_containerd`. Idempotent.

        Every teardown step runs even when an earlier one fails (a read-only state
        directory makes removing the notify socket fail with EROFS), each failure is
        logged, and the outcome is handed over whatever happened: the node's work
        has ended, so its runnable must end too.
        """
        if self._finished:
            return
        self._finished = True
        try:
            problems = self._teardown()
            for problem in problems:
                self._log.error("cleanup after containerd: %s", problem)
            if problems and outcome.error is None and not outcome.canceled:
                outcome = ContainerdOutcome(error=f"cleanup after containerd failed: {problems[0]}")
        finally:
            self._done.set_result(outcome)
            try:
                self.stop()
            except pykka.ActorDeadError:
                pass  # reporting from on_failure: pykka stopped us already

    def _teardown(self) -> list[str]:
        """Stops the helpers and closes what the actor holds; what failed, in words."""
        problems: list[str] = []

        def step(what: str, action: Callable[[], object]) -> None:
            try:
                action()
            except Exception as e:  # noqa: BLE001 - one failed step must not skip the rest
                problems.append(f"{what}: {e}")

        for timer in list(self._timers):
            step(f"cancelling the {timer.name.lower()} timer", partial(self._cancel_timer, timer))
        step("waking the notify thread", self._wakeup.set)
        if self._notify_thread is not None:
            step("joining the notify thread", self._notify_thread.join)
        if self._notify is not None:
            step("closing the notify socket", self._notify.close)
        step("closing the wake-up pipe", self._wakeup.close)
        if self._daemon is not None:
            step("closing containerd's pipes", self._daemon.close)
        if self._fifo_fd is not None:
            fd, self._fifo_fd = self._fifo_fd, None
            step("closing the runsc fifo", lambda: os.close(fd))
        step("flushing containerd's output", self._node.raw.flush)
        return problems
