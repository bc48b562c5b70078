"""Pure tests of the liveness rule, driven through ContainerdLifecycle on a fake clock.

Whole action lists for each probe result, and a simulated containerd that is stopped
at various moments: it is failed within interval × failures + timeout, and a slow
one that answers within the timeout never is.
"""

from __future__ import annotations

import heapq

import pytest

from actors.containerd.core.events import (
    LIVENESS_DURATION,
    LIVENESS_PROBES,
    Action,
    AddMetric,
    ArmTimer,
    ContainerdOutcome,
    DisarmTimer,
    Exited,
    Kill,
    Log,
    ObserveMetric,
    OutputClosed,
    ProbeAnswered,
    ProbeFailed,
    Report,
    StartProbe,
    Timer,
    TimerExpired,
)
from actors.containerd.core.lifecycle import ContainerdLifecycle, ContainerdPhase
from actors.supervisor.core.severity import Severity
from tests.support.containerd_lifecycle import DEADLINE, INFO, PROBE, healthy

# ---------------------------------------------------------------- liveness


def metrics(seconds: float, result: str) -> list[Action]:
    return [
        ObserveMetric(LIVENESS_DURATION, seconds),
        AddMetric(LIVENESS_PROBES, 1, {"result": result}),
    ]


def test_each_liveness_tick_starts_a_probe_and_rearms_at_a_fixed_rate() -> None:
    lc = healthy()
    assert lc.handle(TimerExpired(Timer.LIVENESS, 3), 105.5) == [
        StartProbe(4, 5.0),
        ArmTimer(Timer.LIVENESS, 5, 5.0),
    ]
    assert lc.handle(ProbeAnswered(4, INFO), 105.75) == metrics(0.25, "ok")
    assert (lc.phase, lc.liveness_failures) == (ContainerdPhase.HEALTHY, 0)


def test_failures_below_the_limit_warn_and_an_answer_resets_the_count() -> None:
    lc = healthy()
    lc.handle(TimerExpired(Timer.LIVENESS, 3), 105.5)
    assert lc.handle(ProbeFailed(4, DEADLINE), 110.5) == [
        *metrics(5.0, "fail"),
        Log(Severity.WARNING, f"containerd did not answer {PROBE} (1 of 3 in a row): {DEADLINE}"),
    ]
    lc.handle(TimerExpired(Timer.LIVENESS, 5), 110.5)
    assert lc.handle(ProbeFailed(6, DEADLINE), 115.5) == [
        *metrics(5.0, "fail"),
        Log(Severity.WARNING, f"containerd did not answer {PROBE} (2 of 3 in a row): {DEADLINE}"),
    ]
    lc.handle(TimerExpired(Timer.LIVENESS, 7), 115.5)
    assert lc.handle(ProbeAnswered(8, INFO), 116.0) == [
        *metrics(0.5, "ok"),
        Log(Severity.INFO, "containerd answered the liveness probe again after 2 failure(s)"),
    ]
    assert (lc.phase, lc.liveness_failures) == (ContainerdPhase.HEALTHY, 0)


def test_the_last_allowed_failure_fails_the_node_naming_the_probe_and_its_error() -> None:
    lc = healthy(liveness_failures=1)
    lc.handle(TimerExpired(Timer.LIVENESS, 3), 105.5)
    assert lc.handle(ProbeFailed(4, DEADLINE), 110.5) == [
        *metrics(5.0, "fail"),
        DisarmTimer(Timer.LIVENESS),
        Kill(),
    ]
    reason = f"containerd did not answer {PROBE} 1 times in a row; last error: {DEADLINE}"
    assert (lc.phase, lc.outcome) == (ContainerdPhase.STOPPING, ContainerdOutcome(error=reason))
    lc.handle(OutputClosed(), 110.6)
    assert lc.handle(Exited(-9), 110.6) == [
        Log(Severity.INFO, "containerd exited: killed by signal SIGKILL"),
        Report(ContainerdOutcome(error=reason)),
    ]


def test_overlapping_probes_each_count_when_their_result_arrives() -> None:
    lc = healthy(liveness_interval=1.0, liveness_timeout=5.0, liveness_failures=2)
    assert lc.handle(TimerExpired(Timer.LIVENESS, 3), 101.5) == [
        StartProbe(4, 5.0),
        ArmTimer(Timer.LIVENESS, 5, 1.0),
    ]
    assert lc.handle(TimerExpired(Timer.LIVENESS, 5), 102.5) == [
        StartProbe(6, 5.0),
        ArmTimer(Timer.LIVENESS, 7, 1.0),
    ]
    lc.handle(ProbeFailed(4, DEADLINE), 106.5)
    assert lc.liveness_failures == 1
    actions = lc.handle(ProbeFailed(6, DEADLINE), 107.5)
    assert actions == [*metrics(5.0, "fail"), DisarmTimer(Timer.LIVENESS), Kill()]


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
                case ArmTimer(timer=timer, token=token, delay=delay):
                    self.push(now + delay, TimerExpired(timer, token))
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
    sim.run([ArmTimer(Timer.LIVENESS, 3, 5.0)], 100.5, until=1000.0)
    assert sim.killed_at is not None and sim.stopped_at is not None
    assert sim.killed_at - sim.stopped_at <= 5.0 * 3 + 5.0
    assert lc.phase is ContainerdPhase.STOPPING


def test_a_slow_but_alive_containerd_is_never_failed() -> None:
    lc = healthy()
    sim = _Containerd(lc, latency=4.9, stopped_at=None)
    sim.run([ArmTimer(Timer.LIVENESS, 3, 5.0)], 100.5, until=100.5 + 3600)
    assert sim.killed_at is None
    assert (lc.phase, lc.liveness_failures) == (ContainerdPhase.HEALTHY, 0)
