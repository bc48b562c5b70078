"""Pure tests of ContainerdLifecycle: every phase, race branch and liveness rule.

No containerd, no threads, no sleeps: events go in with an explicit `now`, and
each test asserts the whole list of actions that comes out (and the phase).
"""

from __future__ import annotations

import ast
import dataclasses
import heapq
from pathlib import Path

import pytest

import actors.containerd
from actors.containerd.events import (
    LIVENESS_PROBES,
    LIVENESS_SECONDS,
    Action,
    AddMetric,
    CancelRequested,
    CancelTimer,
    Exited,
    Kill,
    Log,
    LogLevel,
    Notified,
    NotifyBroken,
    Outcome,
    OutputClosed,
    ProbeAnswered,
    ProbeFailed,
    Report,
    SetTimer,
    SetupFailed,
    SetupSucceeded,
    SignalHealthy,
    Spawn,
    Spawned,
    SpawnFailed,
    StartProbe,
    Terminate,
    Timer,
    TimerFired,
)
from actors.containerd.lifecycle import (
    DRAIN_TIMEOUT,
    ContainerdLifecycle,
    LifecycleError,
    Phase,
)
from actors.containerd.notify import NotifyDatagram, NotifyMessage
from actors.containerd.spec import ContainerdSpec
from actors.containerd.version import VersionInfo

PID = 4242
BINARY = "/usr/bin/containerd"
ADDRESS = "/s/containerd.sock"
NOTIFY = "/s/containerd-notify.sock"
INFO = VersionInfo(version="1.6.20~ds1", revision="1.6.20~ds1-1+deb12u3")
READY = NotifyDatagram(pid=PID, message=NotifyMessage(ready=True, fields=(("READY", "1"),)))
STOPPING = NotifyDatagram(
    pid=PID, message=NotifyMessage(stopping=True, fields=(("STOPPING", "1"),))
)
STARTED = Log(LogLevel.INFO, f"started containerd {BINARY!r} (pid {PID})")
PROBE = f"the liveness probe (Version on {ADDRESS!r}, timeout 5s)"
DEADLINE = "deadline_exceeded: Deadline Exceeded"


def make_spec(**overrides: object) -> ContainerdSpec:
    args: dict[str, object] = {
        "binary": BINARY,
        "config": "/s/config.toml",
        "address": ADDRESS,
        "path": "/usr/bin",
        "tmpdir": "/s/tmp",
        "fifo": "/s/runsc.fifo",
        "notify_dir": "/s",
        "ready_timeout": 20.0,
        "stop_timeout": 4.0,
        "liveness_interval": 5.0,
        "liveness_timeout": 5.0,
        "liveness_failures": 3,
    }
    args.update(overrides)
    return ContainerdSpec(**args)  # type: ignore[arg-type]


def spawned(**overrides: object) -> ContainerdLifecycle:
    """A lifecycle whose containerd was spawned at t=100 (READY timer token 1)."""
    lc = ContainerdLifecycle(make_spec(**overrides))
    assert lc.handle(SetupSucceeded(), 99.0) == [Spawn()]
    lc.handle(Spawned(PID), 100.0)
    return lc


def healthy(**overrides: object) -> ContainerdLifecycle:
    """A lifecycle HEALTHY at t=100.5: probe 2 answered; LIVENESS armed with token 3."""
    lc = spawned(**overrides)
    lc.handle(Notified(READY), 100.25)
    lc.handle(ProbeAnswered(2, INFO), 100.5)
    assert lc.phase is Phase.HEALTHY
    return lc


def ready_line(ms: int) -> Log:
    return Log(
        LogLevel.INFO, f"containerd {INFO.version} ({INFO.revision}) is ready, {ms} ms after spawn"
    )


# ---------------------------------------------------------------- setup and spawn


def test_a_setup_error_reports_the_failure_at_once() -> None:
    lc = ContainerdLifecycle(make_spec())
    error = "containerd binary '/nope' is not an executable file"
    assert lc.handle(SetupFailed(error), 1.0) == [Report(Outcome(error=error))]
    assert lc.phase is Phase.FINISHED
    assert lc.handle(CancelRequested("late"), 2.0) == []


def test_a_cancel_before_the_setup_finished_reports_canceled_and_never_spawns() -> None:
    lc = ContainerdLifecycle(make_spec())
    assert lc.handle(CancelRequested("shutdown"), 1.0) == [Report(Outcome(canceled=True))]
    assert lc.handle(SetupSucceeded(), 2.0) == []
    assert lc.phase is Phase.FINISHED


def test_a_spawn_failure_fails_naming_the_binary_and_the_os_error() -> None:
    lc = ContainerdLifecycle(make_spec())
    lc.handle(SetupSucceeded(), 1.0)
    assert lc.handle(SpawnFailed("[Errno 13] Permission denied"), 1.1) == [
        Report(Outcome(error=f"cannot start containerd {BINARY!r}: [Errno 13] Permission denied"))
    ]


def test_the_spawn_arms_the_ready_timer_and_notify_mode_waits_for_ready() -> None:
    lc = ContainerdLifecycle(make_spec())
    lc.handle(SetupSucceeded(), 99.0)
    assert lc.handle(Spawned(PID), 100.0) == [STARTED, SetTimer(Timer.READY, 1, 20.0)]
    assert (lc.phase, lc.pid, lc.armed) == (Phase.STARTING, PID, {Timer.READY: 1})


def test_version_mode_probes_right_after_the_spawn() -> None:
    lc = ContainerdLifecycle(make_spec(readiness="version"))
    lc.handle(SetupSucceeded(), 99.0)
    assert lc.handle(Spawned(PID), 100.0) == [
        STARTED,
        SetTimer(Timer.READY, 1, 20.0),
        StartProbe(2, 20.0),
    ]


def test_ready_then_an_answer_makes_it_healthy_and_arms_liveness() -> None:
    lc = spawned()
    assert lc.handle(Notified(READY), 100.25) == [
        Log(LogLevel.INFO, "containerd notify: READY=1"),
        StartProbe(2, 19.75),
    ]
    assert lc.handle(ProbeAnswered(2, INFO), 100.5) == [
        CancelTimer(Timer.READY),
        ready_line(500),
        SignalHealthy(),
        SetTimer(Timer.LIVENESS, 3, 5.0),
    ]
    assert (lc.phase, lc.armed) == (Phase.HEALTHY, {Timer.LIVENESS: 3})


def test_liveness_off_arms_no_timer_once_healthy() -> None:
    lc = spawned(liveness_interval=None)
    lc.handle(Notified(READY), 100.25)
    assert lc.handle(ProbeAnswered(2, INFO), 100.5) == [
        CancelTimer(Timer.READY),
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
        SetTimer(Timer.READY, 1, 20.0),
        Log(LogLevel.INFO, "containerd notify: READY=1"),
        StartProbe(2, 20.0),
    ]


def test_a_datagram_from_another_pid_is_ignored_with_a_warning() -> None:
    lc = spawned()
    stranger = dataclasses.replace(READY, pid=7)
    assert lc.handle(Notified(stranger), 100.2) == [
        Log(LogLevel.WARNING, "ignoring notify datagram from pid 7, not containerd: READY=1")
    ]
    assert lc.phase is Phase.STARTING


def test_a_broken_notify_socket_is_only_a_warning() -> None:
    lc = spawned()
    assert lc.handle(NotifyBroken("[Errno 9] Bad file descriptor"), 100.2) == [
        Log(LogLevel.WARNING, f"notify socket {NOTIFY!r} broke: [Errno 9] Bad file descriptor")
    ]
    assert lc.phase is Phase.STARTING


# ---------------------------------------------------------------- not ready


def test_no_ready_by_the_deadline_kills_containerd_and_reports_once_it_is_gone() -> None:
    lc = spawned()
    reason = f"containerd did not become ready within 20s: no READY=1 on notify socket {NOTIFY!r}"
    assert lc.handle(TimerFired(Timer.READY, 1), 120.0) == [Kill()]
    assert (lc.phase, lc.outcome) == (Phase.STOPPING, Outcome(error=reason))
    assert lc.handle(OutputClosed(), 120.1) == []
    assert lc.handle(Exited(-9), 120.1) == [
        Log(LogLevel.INFO, "containerd exited: killed by signal SIGKILL"),
        Report(Outcome(error=reason)),
    ]


def test_a_failed_readiness_probe_kills_containerd_naming_the_error() -> None:
    lc = spawned()
    lc.handle(Notified(READY), 100.25)
    assert lc.handle(ProbeFailed(2, "unavailable: connection refused"), 100.6) == [
        CancelTimer(Timer.READY),
        Kill(),
    ]
    assert lc.outcome == Outcome(
        error=(
            f"containerd said READY=1 but did not answer Version on {ADDRESS!r}: "
            "unavailable: connection refused"
        )
    )


# ---------------------------------------------------------------- exits and draining


def test_an_exit_while_healthy_fails_naming_the_status_and_waits_for_the_output() -> None:
    lc = healthy()
    assert lc.handle(Exited(-9), 200.0) == [
        CancelTimer(Timer.LIVENESS),
        SetTimer(Timer.DRAIN, 4, DRAIN_TIMEOUT),
    ]
    assert lc.phase is Phase.DRAINING
    error = f"containerd {BINARY!r} exited: killed by signal SIGKILL"
    assert lc.handle(OutputClosed(), 200.1) == [
        CancelTimer(Timer.DRAIN),
        Report(Outcome(error=error)),
    ]
    assert lc.phase is Phase.FINISHED


def test_an_exit_after_the_output_closed_reports_at_once() -> None:
    lc = spawned()
    assert lc.handle(OutputClosed(), 101.0) == []
    assert lc.handle(Exited(1), 101.0) == [
        CancelTimer(Timer.READY),
        Report(Outcome(error=f"containerd {BINARY!r} exited: exit status 1")),
    ]


def test_output_closed_before_the_pid_is_known_is_remembered_for_the_exit() -> None:
    lc = ContainerdLifecycle(make_spec())
    lc.handle(SetupSucceeded(), 99.0)
    assert lc.handle(OutputClosed(), 99.1) == []
    lc.handle(Spawned(PID), 99.1)
    assert lc.handle(Exited(1), 99.2) == [
        CancelTimer(Timer.READY),
        Report(Outcome(error=f"containerd {BINARY!r} exited: exit status 1")),
    ]


def test_output_that_never_closes_is_given_up_after_the_drain_timeout() -> None:
    lc = spawned()
    lc.handle(Exited(2), 101.0)
    assert lc.handle(TimerFired(Timer.DRAIN, 2), 103.0) == [
        Log(LogLevel.WARNING, "containerd's output did not close: something still holds it"),
        Report(Outcome(error=f"containerd {BINARY!r} exited: exit status 2")),
    ]
    assert lc.handle(OutputClosed(), 104.0) == []


# ---------------------------------------------------------------- cancel


def test_a_cancel_while_healthy_sends_sigterm_and_arms_the_stop_timer() -> None:
    lc = healthy()
    assert lc.handle(CancelRequested("shutdown"), 200.0) == [
        Log(LogLevel.INFO, "cancelled (shutdown): stopping containerd"),
        CancelTimer(Timer.LIVENESS),
        Terminate(),
        SetTimer(Timer.STOP, 4, 4.0),
    ]
    assert lc.handle(Notified(STOPPING), 200.1) == [
        Log(LogLevel.INFO, "containerd notify: STOPPING=1")
    ]
    assert lc.handle(OutputClosed(), 200.2) == []
    assert lc.handle(Exited(0), 200.2) == [
        CancelTimer(Timer.STOP),
        Log(LogLevel.INFO, "containerd exited: exit status 0"),
        Report(Outcome(canceled=True)),
    ]


def test_a_containerd_ignoring_sigterm_gets_sigkill_at_the_stop_timeout() -> None:
    lc = spawned()
    lc.handle(CancelRequested(None), 101.0)
    assert lc.handle(TimerFired(Timer.STOP, 2), 105.0) == [
        Log(LogLevel.WARNING, "containerd did not stop within 4s of SIGTERM: sending SIGKILL"),
        Kill(),
    ]
    lc.handle(OutputClosed(), 105.1)
    assert lc.handle(Exited(-9), 105.1) == [
        Log(LogLevel.INFO, "containerd exited: killed by signal SIGKILL"),
        Report(Outcome(canceled=True)),
    ]


def test_a_cancel_while_spawning_terminates_containerd_as_soon_as_its_pid_is_known() -> None:
    lc = ContainerdLifecycle(make_spec())
    lc.handle(SetupSucceeded(), 99.0)
    assert lc.handle(CancelRequested("shutdown"), 99.1) == [
        Log(LogLevel.INFO, "cancelled (shutdown): stopping containerd")
    ]
    assert lc.handle(Notified(READY), 99.2) == []
    assert lc.handle(Spawned(PID), 99.3) == [
        STARTED,
        Terminate(),
        SetTimer(Timer.STOP, 1, 4.0),
        Log(LogLevel.INFO, "containerd notify: READY=1"),
    ]
    assert lc.phase is Phase.STOPPING


def test_a_cancel_while_spawning_then_a_spawn_failure_reports_the_cancel() -> None:
    lc = ContainerdLifecycle(make_spec())
    lc.handle(SetupSucceeded(), 99.0)
    lc.handle(CancelRequested("shutdown"), 99.1)
    assert lc.handle(SpawnFailed("[Errno 2] No such file"), 99.2) == [
        Report(Outcome(canceled=True))
    ]


def test_a_cancel_after_a_failure_was_decided_changes_nothing() -> None:
    lc = spawned()
    lc.handle(TimerFired(Timer.READY, 1), 120.0)
    outcome = lc.outcome
    assert lc.handle(CancelRequested("shutdown"), 120.1) == []
    assert lc.outcome == outcome and lc.armed == {}


def test_a_cancel_during_draining_keeps_the_exit_as_the_failure() -> None:
    lc = healthy()
    lc.handle(Exited(1), 200.0)
    assert lc.handle(CancelRequested("shutdown"), 200.1) == []
    assert lc.handle(OutputClosed(), 200.2) == [
        CancelTimer(Timer.DRAIN),
        Report(Outcome(error=f"containerd {BINARY!r} exited: exit status 1")),
    ]


# ---------------------------------------------------------------- late and illegal events


def test_a_stale_timer_firing_is_ignored() -> None:
    lc = healthy()
    assert lc.handle(TimerFired(Timer.READY, 1), 120.0) == []
    assert lc.handle(TimerFired(Timer.LIVENESS, 99), 120.0) == []
    assert (lc.phase, lc.armed) == (Phase.HEALTHY, {Timer.LIVENESS: 3})


def test_probe_answers_after_the_outcome_was_decided_are_ignored() -> None:
    lc = healthy()
    lc.handle(TimerFired(Timer.LIVENESS, 3), 105.5)
    lc.handle(CancelRequested("shutdown"), 105.6)
    assert lc.handle(ProbeFailed(4, DEADLINE), 110.5) == []
    assert lc.handle(ProbeAnswered(4, INFO), 110.5) == []
    assert lc.phase is Phase.STOPPING


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
    assert (lc.phase, lc.pid) == (Phase.STARTING, PID)


# ---------------------------------------------------------------- liveness


def metrics(seconds: float, result: str) -> list[Action]:
    return [AddMetric(LIVENESS_SECONDS, seconds), AddMetric(LIVENESS_PROBES, 1, {"result": result})]


def test_each_liveness_tick_starts_a_probe_and_rearms_at_a_fixed_rate() -> None:
    lc = healthy()
    assert lc.handle(TimerFired(Timer.LIVENESS, 3), 105.5) == [
        StartProbe(4, 5.0),
        SetTimer(Timer.LIVENESS, 5, 5.0),
    ]
    assert lc.handle(ProbeAnswered(4, INFO), 105.75) == metrics(0.25, "ok")
    assert (lc.phase, lc.liveness_failures) == (Phase.HEALTHY, 0)


def test_failures_below_the_limit_warn_and_an_answer_resets_the_count() -> None:
    lc = healthy()
    lc.handle(TimerFired(Timer.LIVENESS, 3), 105.5)
    assert lc.handle(ProbeFailed(4, DEADLINE), 110.5) == [
        *metrics(5.0, "fail"),
        Log(LogLevel.WARNING, f"containerd did not answer {PROBE} (1 of 3 in a row): {DEADLINE}"),
    ]
    lc.handle(TimerFired(Timer.LIVENESS, 5), 110.5)
    assert lc.handle(ProbeFailed(6, DEADLINE), 115.5) == [
        *metrics(5.0, "fail"),
        Log(LogLevel.WARNING, f"containerd did not answer {PROBE} (2 of 3 in a row): {DEADLINE}"),
    ]
    lc.handle(TimerFired(Timer.LIVENESS, 7), 115.5)
    assert lc.handle(ProbeAnswered(8, INFO), 116.0) == [
        *metrics(0.5, "ok"),
        Log(LogLevel.INFO, "containerd answered the liveness probe again after 2 failure(s)"),
    ]
    assert (lc.phase, lc.liveness_failures) == (Phase.HEALTHY, 0)


def test_the_last_allowed_failure_fails_the_node_naming_the_probe_and_its_error() -> None:
    lc = healthy(liveness_failures=1)
    lc.handle(TimerFired(Timer.LIVENESS, 3), 105.5)
    assert lc.handle(ProbeFailed(4, DEADLINE), 110.5) == [
        *metrics(5.0, "fail"),
        CancelTimer(Timer.LIVENESS),
        Kill(),
    ]
    reason = f"containerd did not answer {PROBE} 1 times in a row; last error: {DEADLINE}"
    assert (lc.phase, lc.outcome) == (Phase.STOPPING, Outcome(error=reason))
    lc.handle(OutputClosed(), 110.6)
    assert lc.handle(Exited(-9), 110.6) == [
        Log(LogLevel.INFO, "containerd exited: killed by signal SIGKILL"),
        Report(Outcome(error=reason)),
    ]


def test_overlapping_probes_each_count_when_their_result_arrives() -> None:
    lc = healthy(liveness_interval=1.0, liveness_timeout=5.0, liveness_failures=2)
    assert lc.handle(TimerFired(Timer.LIVENESS, 3), 101.5) == [
        StartProbe(4, 5.0),
        SetTimer(Timer.LIVENESS, 5, 1.0),
    ]
    assert lc.handle(TimerFired(Timer.LIVENESS, 5), 102.5) == [
        StartProbe(6, 5.0),
        SetTimer(Timer.LIVENESS, 7, 1.0),
    ]
    lc.handle(ProbeFailed(4, DEADLINE), 106.5)
    assert lc.liveness_failures == 1
    actions = lc.handle(ProbeFailed(6, DEADLINE), 107.5)
    assert actions == [*metrics(5.0, "fail"), CancelTimer(Timer.LIVENESS), Kill()]


class _Containerd:
    """Drives a lifecycle against a simulated containerd on a fake clock.

    containerd answers a probe after `latency` seconds unless it is stopped when
    the probe starts (or becomes stopped before it would answer); a probe to a
    stopped containerd fails at its timeout. The clock jumps to the next due event.
    """

    def __init__(self, lc: ContainerdLifecycle, latency: float, stopped_at: float | None) -> None:
        self.lc, self.latency, self.stopped_at = lc, latency, stopped_at
        self.queue: list[tuple[float, int, object]] = []
        self.seq = 0
        self.killed_at: float | None = None

    def stopped(self, at: float) -> bool:
        return self.stopped_at is not None and at >= self.stopped_at

    def run(self, actions: list[Action], now: float, until: float) -> None:
        self.apply(actions, now)
        while self.queue and self.killed_at is None:
            now, _, event = heapq.heappop(self.queue)
            if now > until:
                return
            self.apply(self.lc.handle(event, now), now)  # type: ignore[arg-type]

    def apply(self, actions: list[Action], now: float) -> None:
        for action in actions:
            match action:
                case SetTimer(timer=timer, token=token, delay=delay):
                    self.push(now + delay, TimerFired(timer, token))
                case StartProbe(probe=probe, timeout=timeout):
                    if self.stopped(now + self.latency) or self.latency >= timeout:
                        self.push(now + timeout, ProbeFailed(probe, DEADLINE))
                    else:
                        self.push(now + self.latency, ProbeAnswered(probe, INFO))
                case Kill():
                    self.killed_at = now

    def push(self, at: float, event: object) -> None:
        self.seq += 1
        heapq.heappush(self.queue, (at, self.seq, event))


@pytest.mark.parametrize("stopped_after", [0.0, 0.01, 2.5, 4.99, 5.0, 7.3])
def test_a_stopped_containerd_is_killed_within_interval_times_failures_plus_timeout(
    stopped_after: float,
) -> None:
    lc = healthy()
    sim = _Containerd(lc, latency=0.01, stopped_at=100.5 + 60 + stopped_after)
    sim.run([SetTimer(Timer.LIVENESS, 3, 5.0)], 100.5, until=1000.0)
    assert sim.killed_at is not None and sim.stopped_at is not None
    assert sim.killed_at - sim.stopped_at <= 5.0 * 3 + 5.0
    assert lc.phase is Phase.STOPPING


def test_a_slow_but_alive_containerd_is_never_failed() -> None:
    lc = healthy()
    sim = _Containerd(lc, latency=4.9, stopped_at=None)
    sim.run([SetTimer(Timer.LIVENESS, 3, 5.0)], 100.5, until=100.5 + 3600)
    assert sim.killed_at is None
    assert (lc.phase, lc.liveness_failures) == (Phase.HEALTHY, 0)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            {"liveness_interval": 0},
            "containerd argument liveness_interval=0 is invalid: "
            "not positive (None turns liveness off)",
        ),
        (
            {"liveness_timeout": -1.0},
            "containerd argument liveness_timeout=-1.0 is invalid: not positive",
        ),
        (
            {"liveness_failures": 0},
            "containerd argument liveness_failures=0 is invalid: not an integer >= 1",
        ),
        (
            {"liveness_failures": True},
            "containerd argument liveness_failures=True is invalid: not an integer >= 1",
        ),
    ],
)
def test_bad_liveness_arguments_are_refused_naming_them(
    overrides: dict[str, object], message: str
) -> None:
    with pytest.raises(ValueError) as e:
        make_spec(**overrides)
    assert str(e.value) == message


# ---------------------------------------------------------------- purity

FORBIDDEN = {"os", "subprocess", "socket", "threading", "time", "pykka", "msgpack", "grpc"}


@pytest.mark.parametrize("module", ["lifecycle", "events", "readiness", "liveness"])
def test_the_lifecycle_modules_import_no_io_threads_or_clocks(module: str) -> None:
    path = Path(actors.containerd.__file__).parent / f"{module}.py"
    imported = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module.split(".")[0])
    assert imported & FORBIDDEN == set()
