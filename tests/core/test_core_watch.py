"""The core's watch timers: grace periods, healthy deadlines and liveness, late or stale."""

from __future__ import annotations

import random

from actors.supervisor import (
    CancelTimer,
    ExitKind,
    HeartbeatReceived,
    KillNode,
    LogNode,
    NodeState,
    PolicySet,
    ProcessSpawned,
    RunnableSpec,
    SetTimer,
    StateChanged,
    TimerFired,
    Tree,
    TreeStarted,
)
from actors.supervisor.core.severity import Severity
from actors.supervisor.testing.simulation import (
    Simulation,
    becomes_healthy,
    busy_loop,
    go_policies,
    remote,
    runs_groups,
    timer_key,
)

NEW, HEALTHY, DONE = NodeState.NEW, NodeState.HEALTHY, NodeState.DONE
DEAD, CANCELED = NodeState.DEAD, NodeState.CANCELED


# ---------------------------------------------------------------- grace, deadlines, liveness


def test_a_node_that_ignores_its_cancel_is_killed_after_its_grace_period() -> None:
    root = runs_groups({"stubborn": busy_loop(), "peer": remote()}, then="done")
    sim = Simulation(root, policies=go_policies({"root.stubborn": {"grace_period": 2.0}}))
    sim.start()
    sim.advance_by(1.0)
    reason = "ignored cancel (group sibling 'root.peer' died) for 2 s"

    assert (
        SetTimer(key=timer_key("grace", "root.stubborn", 2), deadline=3.0)
        in sim.process("root.peer").die()
    )
    sim.settle()
    assert sim.alive("root.stubborn")
    sim.advance_to(2.999)
    mark = len(sim.actions)
    sim.advance_to(3.0)

    assert sim.actions[mark : mark + 2] == [
        LogNode(
            dn="root.stubborn",
            severity=Severity.WARNING,
            message=f"node 'root.stubborn' {reason}; killing it",
        ),
        KillNode(dn="root.stubborn", generation=2, reason=reason),
    ]
    assert sim.incarnations("root.stubborn")[0].killed
    assert sim.status("root.stubborn").last_error == reason


def test_an_exit_within_the_grace_period_disarms_the_grace_timer() -> None:
    sim = Simulation(
        runs_groups({"a": becomes_healthy(), "b": remote()}, then="done"), policies=go_policies()
    )
    sim.start()
    sim.process("root.b").die()

    assert CancelTimer(key=timer_key("grace", "root.a", 2)) in sim.process("root.a").exit(
        ExitKind.CANCELED
    )


def test_a_node_not_healthy_by_its_deadline_is_killed() -> None:
    root = runs_groups({"slow": remote()}, then="done")
    sim = Simulation(root, policies=go_policies({"root.slow": {"healthy_deadline": 3.0}}))
    sim.start()
    assert sim.timers == {timer_key("healthy", "root.slow", 2): 3.0}
    mark = len(sim.actions)
    reason = "not healthy within 3 s of its start"

    sim.advance()

    assert sim.actions[mark : mark + 2] == [
        LogNode(
            dn="root.slow", severity=Severity.FATAL, message=f"node 'root.slow' failed: {reason}"
        ),
        KillNode(dn="root.slow", generation=2, reason=reason),
    ]
    assert sim.status("root.slow").last_error == reason
    assert sim.states()["root.slow"] is DEAD


def test_becoming_healthy_in_time_disarms_the_healthy_deadline() -> None:
    root = runs_groups({"slow": remote()}, then="done")
    sim = Simulation(root, policies=go_policies({"root.slow": {"healthy_deadline": 3.0}}))
    sim.start()

    assert sim.process("root.slow").become_healthy() == [
        StateChanged(dn="root.slow", old=NEW, new=HEALTHY),
        CancelTimer(key=timer_key("healthy", "root.slow", 2)),
    ]


def test_heartbeats_keep_a_node_alive_and_their_absence_kills_it() -> None:
    sim = Simulation(runs_groups({"worker": becomes_healthy()}, then="done"))  # heartbeat 1 s
    sim.start()
    worker = sim.process("root.worker")
    sim.advance_by(100.0)
    assert sim.process("root.worker") is worker
    mark = len(sim.actions)

    worker.hang()
    sim.run_until(lambda: not worker.alive)

    assert sim.now == 103.0
    assert sim.actions[mark : mark + 2] == [
        LogNode(
            dn="root.worker",
            severity=Severity.FATAL,
            message="node 'root.worker' failed: no heartbeat for 3 s",
        ),
        KillNode(dn="root.worker", generation=2, reason="no heartbeat for 3 s"),
    ]
    assert worker.killed


def test_the_liveness_watch_allows_time_to_spawn_before_the_first_heartbeat() -> None:
    tree = Tree(PolicySet(), random.Random(0))
    spec = RunnableSpec(target="t:root")
    watch = timer_key("liveness", "root", 1)

    assert tree.handle(TreeStarted(root=spec), 0.0)[-1] == SetTimer(key=watch, deadline=13.0)
    assert tree.handle(TimerFired(key=watch), 13.0) == [
        LogNode(
            dn="root",
            severity=Severity.FATAL,
            message="node 'root' failed: did not say hello within 13 s",
        ),
        KillNode(dn="root", generation=1, reason="did not say hello within 13 s"),
    ]


def test_a_hello_rearms_the_liveness_watch_for_three_intervals() -> None:
    tree = Tree(PolicySet(), random.Random(0))
    tree.handle(TreeStarted(root=RunnableSpec(target="t:root")), 0.0)

    assert tree.handle(ProcessSpawned(dn="root", generation=1, pid=9), 0.25) == [
        SetTimer(key=timer_key("liveness", "root", 1), deadline=3.25)
    ]


def test_a_liveness_timer_that_fires_late_judges_the_supervisor_not_the_node() -> None:
    tree = Tree(PolicySet(), random.Random(0))
    tree.handle(TreeStarted(root=RunnableSpec(target="t:root")), 0.0)
    tree.handle(ProcessSpawned(dn="root", generation=1, pid=9), 0.25)
    watch = timer_key("liveness", "root", 1)

    # The supervisor was stopped for 5 s: its timer fires at 8.25, due at 3.25.
    assert tree.handle(TimerFired(key=watch), 8.25) == [
        LogNode(
            dn="root",
            severity=Severity.WARNING,
            message="the supervisor itself was 5.0 s late (stopped or starved); "
            "judging liveness again after a fresh window",
        ),
        SetTimer(key=watch, deadline=11.25),
    ]
    # A fresh window with no heartbeat, judged on time: the node fails.
    assert tree.handle(TimerFired(key=watch), 11.25) == [
        LogNode(
            dn="root", severity=Severity.FATAL, message="node 'root' failed: no heartbeat for 3 s"
        ),
        KillNode(dn="root", generation=1, reason="no heartbeat for 3 s"),
    ]


def test_a_timer_firing_that_a_heartbeat_overtook_is_stale_and_ignored() -> None:
    tree = Tree(PolicySet(), random.Random(0))
    tree.handle(TreeStarted(root=RunnableSpec(target="t:root")), 0.0)
    tree.handle(ProcessSpawned(dn="root", generation=1, pid=9), 0.25)
    watch = timer_key("liveness", "root", 1)
    # The firing for 3.25 waits in the mailbox behind a heartbeat that re-armed it.
    assert tree.handle(HeartbeatReceived(dn="root", generation=1), 3.2) == [
        SetTimer(key=watch, deadline=6.2)
    ]

    assert tree.handle(TimerFired(key=watch), 3.3) == []
    assert tree.timers()[watch] == 6.2


def test_a_liveness_timer_late_by_less_than_an_interval_still_fails_the_node() -> None:
    tree = Tree(PolicySet(), random.Random(0))
    tree.handle(TreeStarted(root=RunnableSpec(target="t:root")), 0.0)
    tree.handle(ProcessSpawned(dn="root", generation=1, pid=9), 0.25)

    assert tree.handle(TimerFired(key=timer_key("liveness", "root", 1)), 4.0)[-1] == KillNode(
        dn="root", generation=1, reason="no heartbeat for 3 s"
    )


def test_a_fault_the_shell_caught_fails_the_node() -> None:
    sim = Simulation(runs_groups({"bad": remote()}, then="done"), policies=go_policies())
    sim.start()
    reason = "protocol error: frame of 9000000 bytes is over the 8 MiB limit"

    assert sim.process("root.bad").fault(reason) == [
        LogNode(
            dn="root.bad", severity=Severity.FATAL, message=f"node 'root.bad' failed: {reason}"
        ),
        KillNode(dn="root.bad", generation=2, reason=reason),
    ]
    sim.settle()
    assert sim.status("root.bad").last_error == reason
