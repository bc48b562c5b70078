"""The life of one containerd under `root.containerd`, as a pure state machine.

`ContainerdLifecycle` takes every decision about one run of containerd;
`ContainerdProcessActor` feeds it the `events` it observes and carries out the
actions it returns. `handle(event, now) -> list[Action]`: no I/O, no threads, no
clock reads (`now` is monotonic seconds, passed in). An event that cannot happen
in the current phase (an exit before the spawn) raises `LifecycleError` and changes
nothing; an event that merely came late (a probe answer or a timer after the
outcome was decided) is ignored.

Theory of operation, by `ContainerdPhase`::

    SETUP ─► SPAWNING ─► STARTING ─► HEALTHY
      │          │           │          │      (fail or cancel)
      │          └───────────┴──────────┴──► STOPPING ─► DRAINING ─► FINISHED
      └──────────────────────────────────────────────────────────────►

1. SETUP: the shell makes the FIFO and the notify socket. `SetupSucceeded` →
   `Spawn`, then `StartChildren`: containerd's start waits for nothing it does not
   need, and the log pump and the preseed start while it does (the shell holds the
   FIFO open, so runsc's lines wait there for the pump; the preseed waits for
   containerd to answer). `SetupFailed` → the outcome at once.
2. SPAWNING: no pid yet. Notify datagrams are kept and replayed once `Spawned`
   says whose they must be. `SpawnFailed` → the outcome at once. `ChildrenFailed`
   is a failure like any other (containerd is killed once its pid is known).
3. STARTING: a `ReadinessTracker` decides (`READY=1`, then a Version probe);
   the READY timer fails the node at `ready_timeout`.
4. HEALTHY: liveness. The LIVENESS timer starts a Version probe every
   `liveness_interval` (at a fixed rate, even while an earlier one is still out),
   each with `liveness_timeout`; a `LivenessTracker` counts the results and fails
   the node after `liveness_failures` failures in a row: a stopped containerd is
   failed within interval × failures + timeout.
5. STOPPING: the outcome is decided. A failure SIGKILLs containerd at once; a
   cancel sends SIGTERM and SIGKILL after `stop_timeout`. Decided while SPAWNING,
   the signal goes as soon as the pid is known (or the spawn failure reports).
6. DRAINING: containerd exited (any exit not asked for is the failure, naming its
   exit status); the outcome is reported once its output is closed, so its last
   words are in the log, or after `DRAIN_TIMEOUT`.
7. FINISHED: `Report` was returned, with every armed timer cancelled before it;
   every later event is ignored.
"""

from __future__ import annotations

import enum
from typing import assert_never

from actors.containerd.core.events import (
    Action,
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
from actors.containerd.core.liveness import LivenessTracker
from actors.containerd.core.notify import NotifyDatagram
from actors.containerd.core.readiness import BecomeHealthy, Fail, ProbeVersion, ReadinessTracker
from actors.containerd.core.spec import ContainerdSpec, describe_exit
from actors.supervisor.core.severity import Severity

__all__ = ["DRAIN_TIMEOUT", "ContainerdLifecycle", "LifecycleError", "ContainerdPhase"]

#: Seconds to wait for containerd's last output after it exited.
DRAIN_TIMEOUT = 2.0


class LifecycleError(Exception):
    """An event that cannot happen in the current phase; the lifecycle is unchanged."""


class ContainerdPhase(enum.Enum):
    """Where one run of containerd is; see the module doc."""

    SETUP = "setup"
    SPAWNING = "spawning"
    STARTING = "starting"
    HEALTHY = "healthy"
    STOPPING = "stopping"
    DRAINING = "draining"
    FINISHED = "finished"


#: Phases in which containerd's process runs (or may, while STOPPING before its pid).
_RUNNING = (ContainerdPhase.STARTING, ContainerdPhase.HEALTHY)


class ContainerdLifecycle:
    """Every decision about one run of containerd. Pure; see the module doc.

    Args:
        spec: the run's arguments (binary and sockets for messages, timeouts,
            readiness mode, liveness settings).
    """

    def __init__(self, spec: ContainerdSpec) -> None:
        self._spec = spec
        self._phase = ContainerdPhase.SETUP
        self._pid: int | None = None
        self._spawned_at = 0.0
        self._early: list[NotifyDatagram] = []  # before the pid is known
        self._output_closed = False
        self._outcome: ContainerdOutcome | None = None  # decided; reported once containerd is gone
        self._tracker: ReadinessTracker | None = None
        self._readiness_probe: int | None = None
        self._live = LivenessTracker(
            address=spec.address, timeout=spec.liveness_timeout, failures=spec.liveness_failures
        )
        self._timers: dict[Timer, int] = {}  # armed timer → its token
        self._serial = 0  # last probe number or timer token handed out

    @property
    def phase(self) -> ContainerdPhase:
        """The current phase."""
        return self._phase

    @property
    def pid(self) -> int | None:
        """containerd's pid, once spawned."""
        return self._pid

    @property
    def outcome(self) -> ContainerdOutcome | None:
        """The decided outcome (reported in FINISHED), or None while running."""
        return self._outcome

    @property
    def liveness_failures(self) -> int:
        """Liveness probes failed in a row since the last answer."""
        return self._live.failures

    @property
    def armed(self) -> dict[Timer, int]:
        """The armed timers and their tokens (a copy)."""
        return dict(self._timers)

    def handle(self, event: Event, now: float) -> list[Action]:
        """Feeds one event; returns the actions to carry out, in order.

        Raises:
            LifecycleError: `event` cannot happen in this phase; nothing changed.
        """
        if self._phase is ContainerdPhase.FINISHED:
            return []
        match event:
            case SetupSucceeded():
                return self._on_setup_succeeded(event)
            case SetupFailed():
                return self._on_setup_failed(event)
            case ChildrenFailed():
                return self._on_children_failed(event)
            case Spawned():
                return self._on_spawned(event, now)
            case SpawnFailed():
                return self._on_spawn_failed(event)
            case Exited():
                return self._on_exited(event)
            case OutputClosed():
                return self._on_output_closed(event)
            case Notified():
                return self._on_notified(event, now)
            case NotifyBroken():
                return self._on_notify_broken(event)
            case ProbeAnswered():
                return self._on_probe_answered(event, now)
            case ProbeFailed():
                return self._on_probe_failed(event, now)
            case TimerExpired():
                return self._on_timer_expired(event, now)
            case CancelRequested():
                return self._on_cancel(event)
            case _:
                assert_never(event)

    # ------------------------------------------------------------ events

    def _on_setup_succeeded(self, event: SetupSucceeded) -> list[Action]:
        self._require(event, ContainerdPhase.SETUP)
        self._phase = ContainerdPhase.SPAWNING
        return [Spawn(), StartChildren()]

    def _on_setup_failed(self, event: SetupFailed) -> list[Action]:
        self._require(event, ContainerdPhase.SETUP)
        return self._finish(ContainerdOutcome(error=event.error))

    def _on_children_failed(self, event: ChildrenFailed) -> list[Action]:
        # Told by the shell right after `StartChildren`, before any other event.
        self._require(event, ContainerdPhase.SPAWNING)
        return self._fail(event.error)

    def _on_spawned(self, event: Spawned, now: float) -> list[Action]:
        if not (self._phase is ContainerdPhase.SPAWNING or self._stopping_before_spawn()):
            raise self._illegal(event)
        self._pid, self._spawned_at = event.pid, now
        actions: list[Action] = [
            Log(Severity.INFO, f"started containerd {self._spec.binary!r} (pid {event.pid})")
        ]
        if self._outcome is not None:  # cancelled or failed while it was spawning
            actions += self._stop_signal()
        else:
            self._phase = ContainerdPhase.STARTING
            spec = self._spec
            self._tracker = ReadinessTracker(
                address=spec.address,
                notify_path=spec.notify_socket,
                timeout=spec.ready_timeout,
                started_at=now,
                mode=spec.readiness,
            )
            actions.append(self._arm_timer(Timer.READY, spec.ready_timeout))
            actions += self._readiness(self._tracker.start(now), now)
        early, self._early = self._early, []
        for datagram in early:
            actions += self._on_notified(Notified(datagram), now)
        return actions

    def _on_spawn_failed(self, event: SpawnFailed) -> list[Action]:
        if self._phase is ContainerdPhase.SPAWNING:
            error = f"cannot start containerd {self._spec.binary!r}: {event.error}"
            return self._finish(ContainerdOutcome(error=error))
        if self._stopping_before_spawn():
            assert self._outcome is not None
            return self._finish(self._outcome)
        raise self._illegal(event)

    def _on_exited(self, event: Exited) -> list[Action]:
        if self._pid is None or self._phase not in (*_RUNNING, ContainerdPhase.STOPPING):
            raise self._illegal(event)
        status = describe_exit(event.returncode)
        actions: list[Action] = self._disarm_timers()
        if self._outcome is None:
            self._outcome = ContainerdOutcome(
                error=f"containerd {self._spec.binary!r} exited: {status}"
            )
        else:
            actions.append(Log(Severity.INFO, f"containerd exited: {status}"))
        if self._output_closed:
            return actions + self._finish(self._outcome)
        self._phase = ContainerdPhase.DRAINING
        return [*actions, self._arm_timer(Timer.DRAIN, DRAIN_TIMEOUT)]

    def _on_output_closed(self, event: OutputClosed) -> list[Action]:
        # The pipe's reader starts before `Spawned` is told: it may close first.
        if self._phase is ContainerdPhase.SETUP:
            raise self._illegal(event)
        self._output_closed = True
        if self._phase is ContainerdPhase.DRAINING:
            assert self._outcome is not None
            return self._finish(self._outcome)
        return []

    def _on_notified(self, event: Notified, now: float) -> list[Action]:
        datagram = event.datagram
        if self._pid is None:
            self._early.append(datagram)
            return []
        text = datagram.message.describe()
        if datagram.pid != self._pid:
            return [
                Log(
                    Severity.WARNING,
                    f"ignoring notify datagram from pid {datagram.pid}, not containerd: {text}",
                )
            ]
        actions: list[Action] = [Log(Severity.INFO, f"containerd notify: {text}")]
        if self._phase is ContainerdPhase.STARTING and self._tracker is not None:
            actions += self._readiness(self._tracker.notified(datagram.message, now), now)
        return actions

    def _on_notify_broken(self, event: NotifyBroken) -> list[Action]:
        path = self._spec.notify_socket
        return [Log(Severity.WARNING, f"notify socket {path!r} broke: {event.error}")]

    def _on_probe_answered(self, event: ProbeAnswered, now: float) -> list[Action]:
        if self._phase is ContainerdPhase.STARTING and event.probe == self._readiness_probe:
            assert self._tracker is not None
            self._readiness_probe = None
            return self._readiness(self._tracker.version_answered(event.info), now)
        if self._phase is ContainerdPhase.HEALTHY and self._live.owns(event.probe):
            return list(self._live.answered(event.probe, now).actions)
        return []  # late: the outcome is decided

    def _on_probe_failed(self, event: ProbeFailed, now: float) -> list[Action]:
        if self._phase is ContainerdPhase.STARTING and event.probe == self._readiness_probe:
            assert self._tracker is not None
            self._readiness_probe = None
            return self._readiness(self._tracker.version_failed(event.error), now)
        if self._phase is ContainerdPhase.HEALTHY and self._live.owns(event.probe):
            verdict = self._live.failed(event.probe, event.error, now)
            failure = [] if verdict.failure is None else self._fail(verdict.failure)
            return [*verdict.actions, *failure]
        return []

    def _on_timer_expired(self, event: TimerExpired, now: float) -> list[Action]:
        if self._timers.get(event.timer) != event.token:
            return []  # cancelled or re-armed: a stale firing
        del self._timers[event.timer]
        match event.timer:
            case Timer.READY:
                assert self._tracker is not None
                return self._readiness(self._tracker.deadline_passed(), now)
            case Timer.LIVENESS:
                self._serial += 1
                self._live.started(self._serial, now)
                return [
                    StartProbe(self._serial, self._spec.liveness_timeout),
                    self._arm_timer(Timer.LIVENESS, self._liveness_interval()),
                ]
            case Timer.STOP:
                seconds = self._spec.stop_timeout
                text = f"containerd did not stop within {seconds:g}s of SIGTERM: sending SIGKILL"
                return [Log(Severity.WARNING, text), Kill()]
            case Timer.DRAIN:
                assert self._outcome is not None
                text = "containerd's output did not close: something still holds it"
                return [Log(Severity.WARNING, text), *self._finish(self._outcome)]

    def _on_cancel(self, event: CancelRequested) -> list[Action]:
        if self._outcome is not None:
            return []  # already failing or stopping: that outcome stands
        if self._phase is ContainerdPhase.SETUP:
            return self._finish(ContainerdOutcome(canceled=True))
        self._outcome = ContainerdOutcome(canceled=True)
        actions: list[Action] = [
            Log(Severity.INFO, f"cancelled ({event.reason}): stopping containerd")
        ]
        return actions + self._stop()

    # ------------------------------------------------------------ decisions

    def _readiness(
        self, decided: list[ProbeVersion | BecomeHealthy | Fail], now: float
    ) -> list[Action]:
        actions: list[Action] = []
        for action in decided:
            match action:
                case ProbeVersion(timeout=timeout):
                    self._serial += 1
                    self._readiness_probe = self._serial
                    actions.append(StartProbe(self._serial, timeout))
                case BecomeHealthy(info=info):
                    self._phase = ContainerdPhase.HEALTHY
                    elapsed = (now - self._spawned_at) * 1000
                    text = (
                        f"containerd {info.version} ({info.revision}) is ready, "
                        f"{elapsed:.0f} ms after spawn"
                    )
                    actions += [
                        *self._disarm_timers(Timer.READY),
                        Log(Severity.INFO, text),
                        SignalHealthy(),
                    ]
                    if self._spec.liveness_interval is not None:
                        actions.append(self._arm_timer(Timer.LIVENESS, self._liveness_interval()))
                case Fail(reason=reason):
                    actions += self._fail(reason)
        return actions

    def _fail(self, reason: str) -> list[Action]:
        """Decides the failure: containerd is killed at once, reported once gone."""
        if self._outcome is not None:
            return []
        if self._phase is ContainerdPhase.SETUP:
            return self._finish(ContainerdOutcome(error=reason))
        self._outcome = ContainerdOutcome(error=reason)
        return self._stop()

    def _stop(self) -> list[Action]:
        """The outcome was just decided: leave STARTING/HEALTHY/SPAWNING for STOPPING."""
        running = self._phase in _RUNNING
        self._phase = ContainerdPhase.STOPPING
        self._tracker, self._readiness_probe = None, None
        actions: list[Action] = self._disarm_timers(Timer.READY, Timer.LIVENESS)
        return actions + self._stop_signal() if running else actions

    def _stop_signal(self) -> list[Action]:
        assert self._outcome is not None
        if self._outcome.error is not None:
            return [Kill()]
        return [Terminate(), self._arm_timer(Timer.STOP, self._spec.stop_timeout)]

    def _finish(self, outcome: ContainerdOutcome) -> list[Action]:
        self._outcome, self._phase = outcome, ContainerdPhase.FINISHED
        return [*self._disarm_timers(), Report(outcome)]

    def _arm_timer(self, timer: Timer, delay: float) -> ArmTimer:
        self._serial += 1
        self._timers[timer] = self._serial
        return ArmTimer(timer, self._serial, delay)

    def _disarm_timers(self, *timers: Timer) -> list[Action]:
        """Disarms `timers` (all when none given) that are armed, in `Timer` order."""
        chosen = [t for t in Timer if t in self._timers and (not timers or t in timers)]
        for timer in chosen:
            del self._timers[timer]
        return [DisarmTimer(t) for t in chosen]

    def _liveness_interval(self) -> float:
        assert self._spec.liveness_interval is not None
        return self._spec.liveness_interval

    def _stopping_before_spawn(self) -> bool:
        return self._phase is ContainerdPhase.STOPPING and self._pid is None

    def _require(self, event: Event, phase: ContainerdPhase) -> None:
        if self._phase is not phase:
            raise self._illegal(event)

    def _illegal(self, event: Event) -> LifecycleError:
        return LifecycleError(
            f"containerd lifecycle event {event!r} cannot happen in phase {self._phase.value!r}"
        )
