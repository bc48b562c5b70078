"""Pure tests of ContainerdLifecycle: every phase and race branch.

No containerd, no threads, no sleeps: events go in with an explicit `now`, and
each test asserts the whole list of actions that comes out (and the phase). The
liveness rule is in test_containerd_lifecycle_liveness.py.
"""

from __future__ import annotations

import dataclasses

import pytest

from actors.containerd.core.events import (
    ArmTimer,
    CancelRequested,
    ChildrenFailed,
    ContainerdOutcome,
    DisarmTimer,
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
from actors.containerd.core.lifecycle import (
    DRAIN_TIMEOUT,
    ContainerdLifecycle,
    ContainerdPhase,
    LifecycleError,
)
from actors.supervisor.core.severity import Severity
from tests.support.containerd_lifecycle import (
    ADDRESS,
    BINARY,
    DEADLINE,
    INFO,
    NOTIFY,
    PID,
    READY,
    STARTED,
    STOPPING,
    healthy,
    make_spec,
    ready_line,
    spawned,
)

# ---------------------------------------------------------------- setup and spawn


def test_a_setup_error_reports_the_failure_at_once() -> None:
    lc = ContainerdLifecycle(make_spec())
    error = "containerd binary '/nope' is not an executable file"
    assert lc.handle(SetupFailed(error), 1.0) == [Report(ContainerdOutcome(error=error))]
    assert lc.phase is ContainerdPhase.FINISHED
    assert lc.handle(CancelRequested("late"), 2.0) == []


def test_a_cancel_before_the_setup_finished_reports_canceled_and_never_spawns() -> None:
    lc = ContainerdLifecycle(make_spec())
    assert lc.handle(CancelRequested("shutdown"), 1.0) == [Report(ContainerdOutcome(canceled=True))]
    assert lc.handle(SetupSucceeded(), 2.0) == []
    assert lc.phase is ContainerdPhase.FINISHED


def test_a_spawn_failure_fails_naming_the_binary_and_the_os_error() -> None:
    lc = ContainerdLifecycle(make_spec())
    lc.handle(SetupSucceeded(), 1.0)
    assert lc.handle(SpawnFailed("[Errno 13] Permission denied"), 1.1) == [
        Report(
            ContainerdOutcome(
                error=f"cannot start containerd {BINARY!r}: [Errno 13] Permission denied"
            )
        )
    ]


def test_containerd_is_spawned_before_its_children_start() -> None:
    lc = ContainerdLifecycle(make_spec())
    assert lc.handle(SetupSucceeded(), 1.0) == [Spawn(), StartChildren()]
    assert lc.phase is ContainerdPhase.SPAWNING


def test_children_that_cannot_start_fail_the_node_and_kill_containerd_once_spawned() -> None:
    lc = ContainerdLifecycle(make_spec())
    lc.handle(SetupSucceeded(), 1.0)
    error = "cannot run new runnable on non-NEW node"
    assert lc.handle(ChildrenFailed(error), 1.1) == []
    assert lc.phase is ContainerdPhase.STOPPING
    assert lc.handle(Spawned(PID), 1.2) == [STARTED, Kill()]
    assert lc.handle(Exited(-9), 1.3) == [
        Log(Severity.INFO, "containerd exited: killed by signal SIGKILL"),
        ArmTimer(Timer.DRAIN, 1, DRAIN_TIMEOUT),
    ]
    assert lc.handle(OutputClosed(), 1.4) == [
        DisarmTimer(Timer.DRAIN),
        Report(ContainerdOutcome(error=error)),
    ]


def test_children_failing_after_a_failed_spawn_leave_the_spawn_failure_reported() -> None:
    lc = ContainerdLifecycle(make_spec())
    lc.handle(SetupSucceeded(), 1.0)
    error = "cannot run new runnable on non-NEW node"
    assert lc.handle(ChildrenFailed(error), 1.1) == []
    assert lc.handle(SpawnFailed("[Errno 13] Permission denied"), 1.2) == [
        Report(ContainerdOutcome(error=error))
    ]


def test_the_spawn_arms_the_ready_timer_and_notify_mode_waits_for_ready() -> None:
    lc = ContainerdLifecycle(make_spec())
    lc.handle(SetupSucceeded(), 99.0)
    assert lc.handle(Spawned(PID), 100.0) == [STARTED, ArmTimer(Timer.READY, 1, 20.0)]
    assert (lc.phase, lc.pid, lc.armed) == (ContainerdPhase.STARTING, PID, {Timer.READY: 1})


def test_version_mode_probes_right_after_the_spawn() -> None:
    lc = ContainerdLifecycle(make_spec(readiness="version"))
    lc.handle(SetupSucceeded(), 99.0)
    assert lc.handle(Spawned(PID), 100.0) == [
        STARTED,
        ArmTimer(Timer.READY, 1, 20.0),
        StartProbe(2, 20.0),
    ]


def test_ready_then_an_answer_makes_it_healthy_and_arms_liveness() -> None:
    lc = spawned()
    assert lc.handle(Notified(READY), 100.25) == [
        Log(Severity.INFO, "containerd notify: READY=1"),
        StartProbe(2, 19.75),
    ]
    assert lc.handle(ProbeAnswered(2, INFO), 100.5) == [
        DisarmTimer(Timer.READY),
        ready_line(500),
        SignalHealthy(),
        ArmTimer(Timer.LIVENESS, 3, 5.0),
    ]
    assert (lc.phase, lc.armed) == (ContainerdPhase.HEALTHY, {Timer.LIVENESS: 3})


def test_liveness_off_arms_no_timer_once_healthy() -> None:
    lc = spawned(liveness_interval=None)
    lc.handle(Notified(READY), 100.25)
    assert lc.handle(ProbeAnswered(2, INFO), 100.5) == [
        DisarmTimer(Timer.READY),
        ready_line(500),
        SignalHealthy(),
    ]
    assert lc.armed == {}


def test_datagrams_that_arrive_before_the_pid_is_known_are_replayed_after_the_spawn() -> None:
    lc = ContainerdLifecycle(make_spec())
    lc.handle(SetupSucceeded(), 99.0)
    assert lc.handle(Notified(READY), 99.5) == []
    assert lc.handle(Spawned(PID), 100.0) == [
        STARTED,
        ArmTimer(Timer.READY, 1, 20.0),
        Log(Severity.INFO, "containerd notify: READY=1"),
        StartProbe(2, 20.0),
    ]


def test_a_datagram_from_another_pid_is_ignored_with_a_warning() -> None:
    lc = spawned()
    stranger = dataclasses.replace(READY, pid=7)
    assert lc.handle(Notified(stranger), 100.2) == [
        Log(Severity.WARNING, "ignoring notify datagram from pid 7, not containerd: READY=1")
    ]
    assert lc.phase is ContainerdPhase.STARTING


def test_a_broken_notify_socket_is_only_a_warning() -> None:
    lc = spawned()
    assert lc.handle(NotifyBroken("[Errno 9] Bad file descriptor"), 100.2) == [
        Log(Severity.WARNING, f"notify socket {NOTIFY!r} broke: [Errno 9] Bad file descriptor")
    ]
    assert lc.phase is ContainerdPhase.STARTING


# ---------------------------------------------------------------- not ready


def test_no_ready_by_the_deadline_kills_containerd_and_reports_once_it_is_gone() -> None:
    lc = spawned()
    reason = f"containerd did not become ready within 20s: no READY=1 on notify socket {NOTIFY!r}"
    assert lc.handle(TimerExpired(Timer.READY, 1), 120.0) == [Kill()]
    assert (lc.phase, lc.outcome) == (ContainerdPhase.STOPPING, ContainerdOutcome(error=reason))
    assert lc.handle(OutputClosed(), 120.1) == []
    assert lc.handle(Exited(-9), 120.1) == [
        Log(Severity.INFO, "containerd exited: killed by signal SIGKILL"),
        Report(ContainerdOutcome(error=reason)),
    ]


def test_a_failed_readiness_probe_kills_containerd_naming_the_error() -> None:
    lc = spawned()
    lc.handle(Notified(READY), 100.25)
    assert lc.handle(ProbeFailed(2, "unavailable: connection refused"), 100.6) == [
        DisarmTimer(Timer.READY),
        Kill(),
    ]
    assert lc.outcome == ContainerdOutcome(
        error=(
            f"containerd said READY=1 but did not answer Version on {ADDRESS!r}: "
            "unavailable: connection refused"
        )
    )


# ---------------------------------------------------------------- exits and draining


def test_an_exit_while_healthy_fails_naming_the_status_and_waits_for_the_output() -> None:
    lc = healthy()
    assert lc.handle(Exited(-9), 200.0) == [
        DisarmTimer(Timer.LIVENESS),
        ArmTimer(Timer.DRAIN, 4, DRAIN_TIMEOUT),
    ]
    assert lc.phase is ContainerdPhase.DRAINING
    error = f"containerd {BINARY!r} exited: killed by signal SIGKILL"
    assert lc.handle(OutputClosed(), 200.1) == [
        DisarmTimer(Timer.DRAIN),
        Report(ContainerdOutcome(error=error)),
    ]
    assert lc.phase is ContainerdPhase.FINISHED


def test_an_exit_after_the_output_closed_reports_at_once() -> None:
    lc = spawned()
    assert lc.handle(OutputClosed(), 101.0) == []
    assert lc.handle(Exited(1), 101.0) == [
        DisarmTimer(Timer.READY),
        Report(ContainerdOutcome(error=f"containerd {BINARY!r} exited: exit status 1")),
    ]


def test_output_closed_before_the_pid_is_known_is_remembered_for_the_exit() -> None:
    lc = ContainerdLifecycle(make_spec())
    lc.handle(SetupSucceeded(), 99.0)
    assert lc.handle(OutputClosed(), 99.1) == []
    lc.handle(Spawned(PID), 99.1)
    assert lc.handle(Exited(1), 99.2) == [
        DisarmTimer(Timer.READY),
        Report(ContainerdOutcome(error=f"containerd {BINARY!r} exited: exit status 1")),
    ]


def test_output_that_never_closes_is_given_up_after_the_drain_timeout() -> None:
    lc = spawned()
    lc.handle(Exited(2), 101.0)
    assert lc.handle(TimerExpired(Timer.DRAIN, 2), 103.0) == [
        Log(Severity.WARNING, "containerd's output did not close: something still holds it"),
        Report(ContainerdOutcome(error=f"containerd {BINARY!r} exited: exit status 2")),
    ]
    assert lc.handle(OutputClosed(), 104.0) == []


# ---------------------------------------------------------------- cancel


def test_a_cancel_while_healthy_sends_sigterm_and_arms_the_stop_timer() -> None:
    lc = healthy()
    assert lc.handle(CancelRequested("shutdown"), 200.0) == [
        Log(Severity.INFO, "cancelled (shutdown): stopping containerd"),
        DisarmTimer(Timer.LIVENESS),
        Terminate(),
        ArmTimer(Timer.STOP, 4, 4.0),
    ]
    assert lc.handle(Notified(STOPPING), 200.1) == [
        Log(Severity.INFO, "containerd notify: STOPPING=1")
    ]
    assert lc.handle(OutputClosed(), 200.2) == []
    assert lc.handle(Exited(0), 200.2) == [
        DisarmTimer(Timer.STOP),
        Log(Severity.INFO, "containerd exited: exit status 0"),
        Report(ContainerdOutcome(canceled=True)),
    ]


def test_a_containerd_ignoring_sigterm_gets_sigkill_at_the_stop_timeout() -> None:
    lc = spawned()
    lc.handle(CancelRequested(None), 101.0)
    assert lc.handle(TimerExpired(Timer.STOP, 2), 105.0) == [
        Log(Severity.WARNING, "containerd did not stop within 4s of SIGTERM: sending SIGKILL"),
        Kill(),
    ]
    lc.handle(OutputClosed(), 105.1)
    assert lc.handle(Exited(-9), 105.1) == [
        Log(Severity.INFO, "containerd exited: killed by signal SIGKILL"),
        Report(ContainerdOutcome(canceled=True)),
    ]


def test_a_cancel_while_spawning_terminates_containerd_as_soon_as_its_pid_is_known() -> None:
    lc = ContainerdLifecycle(make_spec())
    lc.handle(SetupSucceeded(), 99.0)
    assert lc.handle(CancelRequested("shutdown"), 99.1) == [
        Log(Severity.INFO, "cancelled (shutdown): stopping containerd")
    ]
    assert lc.handle(Notified(READY), 99.2) == []
    assert lc.handle(Spawned(PID), 99.3) == [
        STARTED,
        Terminate(),
        ArmTimer(Timer.STOP, 1, 4.0),
        Log(Severity.INFO, "containerd notify: READY=1"),
    ]
    assert lc.phase is ContainerdPhase.STOPPING


def test_a_cancel_while_spawning_then_a_spawn_failure_reports_the_cancel() -> None:
    lc = ContainerdLifecycle(make_spec())
    lc.handle(SetupSucceeded(), 99.0)
    lc.handle(CancelRequested("shutdown"), 99.1)
    assert lc.handle(SpawnFailed("[Errno 2] No such file"), 99.2) == [
        Report(ContainerdOutcome(canceled=True))
    ]


def test_a_cancel_after_a_failure_was_decided_changes_nothing() -> None:
    lc = spawned()
    lc.handle(TimerExpired(Timer.READY, 1), 120.0)
    outcome = lc.outcome
    assert lc.handle(CancelRequested("shutdown"), 120.1) == []
    assert lc.outcome == outcome and lc.armed == {}


def test_a_cancel_during_draining_keeps_the_exit_as_the_failure() -> None:
    lc = healthy()
    lc.handle(Exited(1), 200.0)
    assert lc.handle(CancelRequested("shutdown"), 200.1) == []
    assert lc.handle(OutputClosed(), 200.2) == [
        DisarmTimer(Timer.DRAIN),
        Report(ContainerdOutcome(error=f"containerd {BINARY!r} exited: exit status 1")),
    ]


# ---------------------------------------------------------------- late and illegal events


def test_a_stale_timer_firing_is_ignored() -> None:
    lc = healthy()
    assert lc.handle(TimerExpired(Timer.READY, 1), 120.0) == []
    assert lc.handle(TimerExpired(Timer.LIVENESS, 99), 120.0) == []
    assert (lc.phase, lc.armed) == (ContainerdPhase.HEALTHY, {Timer.LIVENESS: 3})


def test_probe_answers_after_the_outcome_was_decided_are_ignored() -> None:
    lc = healthy()
    lc.handle(TimerExpired(Timer.LIVENESS, 3), 105.5)
    lc.handle(CancelRequested("shutdown"), 105.6)
    assert lc.handle(ProbeFailed(4, DEADLINE), 110.5) == []
    assert lc.handle(ProbeAnswered(4, INFO), 110.5) == []
    assert lc.phase is ContainerdPhase.STOPPING


@pytest.mark.parametrize(
    ("event", "phase"),
    [
        (Exited(0), "spawning"),
        (OutputClosed(), "setup"),
        (Spawned(1), "setup"),
        (SetupFailed("x"), "spawning"),
    ],
)
def test_an_event_that_cannot_happen_raises_and_changes_nothing(
    event: Exited | OutputClosed | Spawned | SetupFailed, phase: str
) -> None:
    lc = ContainerdLifecycle(make_spec())
    if phase == "spawning":
        lc.handle(SetupSucceeded(), 1.0)
    with pytest.raises(LifecycleError) as e:
        lc.handle(event, 2.0)
    assert str(e.value) == (
        f"containerd lifecycle event {event!r} cannot happen in phase {phase!r}"
    )
    assert (lc.phase.value, lc.pid, lc.outcome, lc.armed) == (phase, None, None, {})


def test_a_second_spawn_is_refused() -> None:
    lc = spawned()
    with pytest.raises(LifecycleError) as e:
        lc.handle(Spawned(5), 101.0)
    assert str(e.value) == (
        "containerd lifecycle event Spawned(pid=5) cannot happen in phase 'starting'"
    )
    assert (lc.phase, lc.pid) == (ContainerdPhase.STARTING, PID)
