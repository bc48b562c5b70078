"""node-containerd's extensions over Go: policies, escalation, watchdogs, operator
restarts and shutdown. Delays are asserted as timer deadlines, never waited out."""

from __future__ import annotations

import random
from typing import Any

import pytest

from actors.supervisor import (
    CancelNode,
    CancelTimer,
    ExitKind,
    HeartbeatReceived,
    IllegalEvent,
    KillNode,
    LogNode,
    NodeState,
    PolicyRule,
    PolicySet,
    ProcessSpawned,
    RestartPolicy,
    RunnableSpec,
    SetTimer,
    ShutdownComplete,
    ShutdownRequested,
    StartNode,
    StateChanged,
    TimerFired,
    TimerKey,
    Tree,
    TreeFailed,
    TreeStarted,
)
from actors.supervisor.core.severity import Severity
from actors.supervisor.testing.simulation import (
    Simulation,
    becomes_healthy,
    busy_loop,
    remote,
    runs_groups,
    spawns_tree,
)

NEW, HEALTHY, DONE = NodeState.NEW, NodeState.HEALTHY, NodeState.DONE
DEAD, CANCELED = NodeState.DEAD, NodeState.CANCELED


def policies(rules: dict[str, dict[str, Any]] | None = None, **base: Any) -> PolicySet:
    """Go's policies (no heartbeat watch) with `base` overrides and per-DN rules."""
    return PolicySet(
        rules=[PolicyRule(pattern, overrides) for pattern, overrides in (rules or {}).items()],
        base=RestartPolicy(**{"heartbeat_interval": None, **base}),
    )


def key(purpose: str, dn: str, generation: int) -> TimerKey:
    return TimerKey(purpose=purpose, dn=dn, generation=generation)


def restart_delays(sim: Simulation, dn: str, since: int = 0) -> list[float]:
    """The delay of every restart timer armed for `dn`, from the log line the tree wrote."""
    prefix = f"rescheduling supervised node {dn!r} with backoff "
    return [
        float(line.message.removeprefix(prefix).removesuffix(" s"))
        for line in sim.logs[since:]
        if line.message.startswith(prefix)
    ]


def die_repeatedly(sim: Simulation, dn: str, times: int, *, healthy_first: bool) -> None:
    for _ in range(times):
        sim.run_until(lambda: sim.alive(dn))
        if healthy_first:
            sim.process(dn).become_healthy()
        sim.process(dn).die()
        sim.settle()


# ---------------------------------------------------------------- backoff


def test_a_node_that_keeps_dying_backs_off_exponentially_up_to_the_cap() -> None:
    fast = {
        "backoff_initial": 1.0,
        "backoff_multiplier": 2.0,
        "backoff_jitter": 0.0,
        "backoff_max": 8.0,
    }
    sim = Simulation(runs_groups({"one": remote()}), policies=policies({"root.one": fast}))
    sim.start()

    die_repeatedly(sim, "root.one", 6, healthy_first=False)

    assert restart_delays(sim, "root.one") == [1.0, 2.0, 4.0, 8.0, 8.0, 8.0]


def test_with_zero_backoff_a_dead_node_starts_again_at_once() -> None:
    sim = Simulation(runs_groups({"one": remote()}), policies=policies(backoff_initial=0.0))
    sim.start()
    mark = len(sim.actions)

    sim.process("root.one").die()

    assert [a for a in sim.actions[mark:] if isinstance(a, (StartNode, SetTimer))] == [
        StartNode(
            dn="root.one",
            generation=3,
            spec=remote(),
            policy=RestartPolicy(heartbeat_interval=None, backoff_initial=0.0),
        )
    ]


def test_healthy_resets_the_backoff_by_default() -> None:
    exact = {"backoff_initial": 1.0, "backoff_multiplier": 2.0, "backoff_jitter": 0.0}
    sim = Simulation(runs_groups({"one": remote()}), policies=policies({"root.one": exact}))
    sim.start()

    die_repeatedly(sim, "root.one", 3, healthy_first=True)

    assert restart_delays(sim, "root.one") == [1.0, 1.0, 1.0]


def test_min_healthy_uptime_keeps_growing_the_backoff_of_a_node_that_dies_right_after_healthy() -> (
    None
):
    flappy = {
        "backoff_initial": 1.0,
        "backoff_multiplier": 2.0,
        "backoff_jitter": 0.0,
        "min_healthy_uptime": 10.0,
    }
    sim = Simulation(runs_groups({"one": remote()}), policies=policies({"root.one": flappy}))
    sim.start()

    die_repeatedly(sim, "root.one", 3, healthy_first=True)
    assert restart_delays(sim, "root.one") == [1.0, 2.0, 4.0]

    sim.run_until(lambda: sim.alive("root.one"))
    one = sim.process("root.one")
    assert one.become_healthy() == [
        StateChanged(dn="root.one", old=NEW, new=HEALTHY),
        SetTimer(key=key("uptime", "root.one", one.generation), deadline=sim.now + 10.0),
    ]
    sim.advance_by(10.0)
    sim.process("root.one").die()
    sim.settle()

    assert restart_delays(sim, "root.one") == [1.0, 2.0, 4.0, 1.0]


# ---------------------------------------------------------------- restart intensity


LEAF = {"max_restarts": 2, "restart_window": 60.0, "backoff_initial": 1.0, "backoff_jitter": 0.0}


def two_level_tree(leaf_policy: dict[str, Any]) -> Simulation:
    """root (stays NEW) -> mid (HEALTHY) -> leaf (remote)."""
    root = runs_groups({"mid": runs_groups({"leaf": remote()}, then="healthy")}, then="new")
    sim = Simulation(root, policies=policies({"root.mid.leaf": leaf_policy}))
    sim.start()
    return sim


def test_a_death_beyond_the_restart_intensity_fails_the_parent_gracefully() -> None:
    sim = two_level_tree(LEAF)
    die_repeatedly(sim, "root.mid.leaf", 2, healthy_first=False)
    sim.run_until(lambda: sim.alive("root.mid.leaf"))
    mid = sim.process("root.mid")
    reason = (
        "restart intensity reached: 'root.mid.leaf' was restarted 2 times within 60 s"
        " and died again: died on request"
    )

    actions = sim.process("root.mid.leaf").die()

    assert actions == [
        StateChanged(dn="root.mid.leaf", old=NEW, new=DEAD),
        LogNode(
            dn="root.mid.leaf",
            severity=Severity.FATAL,
            message="node 'root.mid.leaf' died: died on request",
        ),
        LogNode(
            dn="root.mid.leaf", severity=Severity.FATAL, message=f"{reason}; failing 'root.mid'"
        ),
        CancelNode(dn="root.mid", generation=mid.generation, reason=reason),
        SetTimer(key=key("grace", "root.mid", mid.generation), deadline=sim.now + 5.0),
    ]
    sim.settle()
    assert mid.exit_kind is ExitKind.CANCELED
    assert sim.status("root.mid").last_error == reason
    assert (
        LogNode(dn="root.mid", severity=Severity.FATAL, message=f"node 'root.mid' died: {reason}")
        in sim.logs
    )

    sim.run_until(lambda: sim.alive("root.mid.leaf"))
    assert [(s.dn, s.state, s.restarts) for s in sim.tree.snapshot()] == [
        ("root", NEW, 0),
        ("root.mid", HEALTHY, 1),
        ("root.mid.leaf", NEW, 0),
    ]


def test_restarts_that_left_the_window_no_longer_count() -> None:
    sim = two_level_tree({**LEAF, "max_restarts": 1, "restart_window": 10.0})

    die_repeatedly(sim, "root.mid.leaf", 1, healthy_first=False)
    sim.run_until(lambda: sim.alive("root.mid.leaf"))
    sim.advance_by(10.0)
    die_repeatedly(sim, "root.mid.leaf", 1, healthy_first=False)
    sim.run_until(lambda: sim.alive("root.mid.leaf"))

    assert [line for line in sim.logs if "intensity" in line.message] == []
    assert sim.status("root.mid.leaf").restarts == 2


def test_a_done_parent_fails_at_once_when_its_child_reaches_the_intensity() -> None:
    root = runs_groups({"leaf": remote()}, then="done")
    sim = Simulation(root, policies=policies({"root.leaf": {"max_restarts": 0}}))
    sim.start()
    assert sim.states() == {"root": DONE, "root.leaf": NEW}
    reason = (
        "restart intensity reached: 'root.leaf' was restarted 0 times within 60 s"
        " and died again: died on request"
    )

    sim.process("root.leaf").die()

    assert sim.transitions()[-3:] == [
        ("root", HEALTHY, DONE),
        ("root.leaf", NEW, DEAD),
        ("root", DONE, DEAD),
    ]
    assert sim.status("root").last_error == reason
    assert sim.states() == {"root": DEAD}
    assert sim.status("root").restart_at is not None


def test_a_failure_past_the_root_fails_the_tree_and_shuts_it_down() -> None:
    root = runs_groups({"x": becomes_healthy()}, then="healthy")
    sim = Simulation(root, policies=policies({"root": {"max_restarts": 1}}))
    sim.start()
    sim.process("root").die("first")
    sim.run_until(lambda: sim.alive("root.x"))
    mark = len(sim.actions)
    reason = (
        "restart intensity reached: 'root' was restarted 1 times within 60 s and died again: second"
    )

    sim.process("root").die("second")
    sim.settle()

    assert [a for a in sim.actions[mark:] if isinstance(a, (TreeFailed, ShutdownComplete))] == [
        TreeFailed(reason=reason),
        ShutdownComplete(),
    ]
    assert (sim.failed, sim.tree.failure, sim.tree.finished) == (reason, reason, True)
    assert sim.states() == {"root": DEAD, "root.x": CANCELED}
    assert sim.shutdown() == []


def test_a_tree_failure_names_the_chain_of_failures_that_led_to_it() -> None:
    root = runs_groups({"one": remote()}, then="healthy")
    limits = {"root": {"max_restarts": 0}, "root.one": {"max_restarts": 1}}
    sim = Simulation(root, policies=policies(limits))
    sim.start()

    die_repeatedly(sim, "root.one", 2, healthy_first=False)

    assert sim.failed == (
        "restart intensity reached: 'root' was restarted 0 times within 60 s and died again:"
        " restart intensity reached: 'root.one' was restarted 1 times within 60 s and died"
        " again: died on request"
    )
    assert sim.complete


# ---------------------------------------------------------------- grace, deadlines, liveness


def test_a_node_that_ignores_its_cancel_is_killed_after_its_grace_period() -> None:
    root = runs_groups({"stubborn": busy_loop(), "peer": remote()}, then="done")
    sim = Simulation(root, policies=policies({"root.stubborn": {"grace_period": 2.0}}))
    sim.start()
    sim.advance_by(1.0)
    reason = "ignored cancel (group sibling 'root.peer' died) for 2 s"

    assert (
        SetTimer(key=key("grace", "root.stubborn", 2), deadline=3.0)
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
        runs_groups({"a": becomes_healthy(), "b": remote()}, then="done"), policies=policies()
    )
    sim.start()
    sim.process("root.b").die()

    assert CancelTimer(key=key("grace", "root.a", 2)) in sim.process("root.a").exit(
        ExitKind.CANCELED
    )


def test_a_node_not_healthy_by_its_deadline_is_killed() -> None:
    root = runs_groups({"slow": remote()}, then="done")
    sim = Simulation(root, policies=policies({"root.slow": {"healthy_deadline": 3.0}}))
    sim.start()
    assert sim.timers == {key("healthy", "root.slow", 2): 3.0}
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
    sim = Simulation(root, policies=policies({"root.slow": {"healthy_deadline": 3.0}}))
    sim.start()

    assert sim.process("root.slow").become_healthy() == [
        StateChanged(dn="root.slow", old=NEW, new=HEALTHY),
        CancelTimer(key=key("healthy", "root.slow", 2)),
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
    watch = key("liveness", "root", 1)

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
        SetTimer(key=key("liveness", "root", 1), deadline=3.25)
    ]


def test_a_liveness_timer_that_fires_late_judges_the_supervisor_not_the_node() -> None:
    tree = Tree(PolicySet(), random.Random(0))
    tree.handle(TreeStarted(root=RunnableSpec(target="t:root")), 0.0)
    tree.handle(ProcessSpawned(dn="root", generation=1, pid=9), 0.25)
    watch = key("liveness", "root", 1)

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
    watch = key("liveness", "root", 1)
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

    assert tree.handle(TimerFired(key=key("liveness", "root", 1)), 4.0)[-1] == KillNode(
        dn="root", generation=1, reason="no heartbeat for 3 s"
    )


def test_a_fault_the_shell_caught_fails_the_node() -> None:
    sim = Simulation(runs_groups({"bad": remote()}, then="done"), policies=policies())
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


# ---------------------------------------------------------------- operator restarts


def test_a_requested_restart_cancels_the_subtree_and_starts_it_again_at_once() -> None:
    root = runs_groups({"svc": spawns_tree(1), "peer": becomes_healthy()}, then="done")
    sim = Simulation(root, policies=policies())
    sim.start()
    sim.advance_by(2.0)
    peer = sim.process("root.peer")

    actions = sim.restart("root.svc")

    assert actions == [
        LogNode(dn="root.svc", severity=Severity.INFO, message="restart of 'root.svc' requested"),
        CancelNode(dn="root.svc.a", generation=4, reason="restart requested"),
        SetTimer(key=key("grace", "root.svc.a", 4), deadline=7.0),
        CancelNode(dn="root.svc.b", generation=5, reason="restart requested"),
        SetTimer(key=key("grace", "root.svc.b", 5), deadline=7.0),
        CancelNode(dn="root.svc", generation=2, reason="restart requested"),
        SetTimer(key=key("grace", "root.svc", 2), deadline=7.0),
    ]
    sim.settle()
    assert sim.now == 2.0
    assert sim.process("root.peer") is peer
    assert [(s.dn, s.state, s.restarts) for s in sim.tree.snapshot()] == [
        ("root", DONE, 0),
        ("root.svc", HEALTHY, 1),
        ("root.svc.a", HEALTHY, 0),
        ("root.svc.b", HEALTHY, 0),
        ("root.peer", HEALTHY, 0),
    ]


def test_a_requested_restart_of_a_node_in_backoff_skips_the_rest_of_it() -> None:
    sim = Simulation(runs_groups({"one": remote()}, then="done"), policies=policies())
    sim.start()
    sim.process("root.one").die()

    actions = sim.restart("root.one")

    assert actions == [
        LogNode(dn="root.one", severity=Severity.INFO, message="restart of 'root.one' requested"),
        CancelTimer(key=key("restart", "root.one", 3)),
        StateChanged(dn="root.one", old=DEAD, new=CANCELED),
        LogNode(
            dn="root.one",
            severity=Severity.INFO,
            message="rescheduling supervised node 'root.one' with backoff 0.000 s",
        ),
        StateChanged(dn="root.one", old=CANCELED, new=NEW),
        StartNode(
            dn="root.one",
            generation=4,
            spec=remote(),
            policy=RestartPolicy(heartbeat_interval=None),
        ),
    ]


def test_a_requested_restart_of_a_done_node_runs_it_again() -> None:
    sim = Simulation(
        runs_groups({"job": runs_groups(then="done")}, then="healthy"), policies=policies()
    )
    sim.start()
    assert sim.states() == {"root": HEALTHY, "root.job": DONE}

    sim.restart("root.job")
    sim.settle()

    assert len(sim.incarnations("root.job")) == 2
    assert sim.transitions("root.job")[-3:] == [
        ("root.job", DONE, NEW),
        ("root.job", NEW, HEALTHY),
        ("root.job", HEALTHY, DONE),
    ]


def test_no_restart_can_be_requested_during_shutdown() -> None:
    sim = Simulation(becomes_healthy(), policies=policies())
    sim.start()
    sim.shutdown()

    with pytest.raises(IllegalEvent) as e:
        sim.restart("root")
    assert str(e.value) == "cannot restart 'root': the tree is shutting down"


# ---------------------------------------------------------------- shutdown


def test_shutdown_cancels_children_before_parents_and_completes_once_all_exited() -> None:
    root = runs_groups({"a": spawns_tree(1), "b": becomes_healthy()}, then="healthy")
    sim = Simulation(root, policies=policies())
    sim.start()

    actions = sim.shutdown("agent stopping")

    def cancel(dn: str, generation: int) -> list[Any]:
        return [
            CancelNode(dn=dn, generation=generation, reason="agent stopping"),
            SetTimer(key=key("grace", dn, generation), deadline=5.0),
        ]

    # Only the leaves are told at once; a parent hears of it when nothing below it runs.
    assert actions == [
        LogNode(dn="root", severity=Severity.INFO, message="shutting down: agent stopping"),
        *cancel("root.a.a", 4),
        *cancel("root.a.b", 5),
        *cancel("root.b", 3),
    ]
    sim.settle()
    assert [a.dn for a in sim.actions_of(CancelNode)] == [
        "root.a.a",
        "root.a.b",
        "root.b",
        "root.a",
        "root",
    ]
    assert sim.actions_of(ShutdownComplete) == [ShutdownComplete()]
    assert isinstance(sim.actions[-1], ShutdownComplete)
    assert set(sim.states().values()) == {CANCELED}
    assert sim.timers == {} and sim.tree.timers() == {}


def test_shutdown_cancels_a_parent_only_after_its_stubborn_child_was_killed() -> None:
    root = runs_groups({"parent": runs_groups({"child": busy_loop()}, then="healthy")}, then="done")
    sim = Simulation(root, policies=policies())
    sim.start()

    sim.shutdown()
    sim.settle()
    assert [a.dn for a in sim.actions_of(CancelNode)] == ["root.parent.child"]
    assert sim.states()["root.parent"] == HEALTHY

    sim.advance()  # the child's grace period ends: it is killed, then its parent is told

    assert sim.now == 5.0
    assert [a.dn for a in sim.actions_of(KillNode)] == ["root.parent.child"]
    assert [a.dn for a in sim.actions_of(CancelNode)] == ["root.parent.child", "root.parent"]
    sim.settle()
    assert sim.complete
    assert sim.states() == {"root": DONE, "root.parent": CANCELED, "root.parent.child": DEAD}


def test_shutdown_turns_pending_restarts_into_canceled_at_once() -> None:
    sim = Simulation(runs_groups({"one": remote()}, then="done"), policies=policies())
    sim.start()
    sim.process("root.one").die()

    actions = sim.shutdown()

    assert actions == [
        LogNode(dn="root", severity=Severity.INFO, message="shutting down: shutdown requested"),
        CancelTimer(key=key("restart", "root.one", 3)),
        StateChanged(dn="root.one", old=DEAD, new=CANCELED),
        ShutdownComplete(),
    ]


def test_shutdown_waits_for_a_stubborn_process_to_be_killed() -> None:
    sim = Simulation(runs_groups({"four": busy_loop()}, then="done"), policies=policies())
    sim.start()
    sim.shutdown()
    sim.settle()
    assert not sim.complete

    sim.advance()

    assert sim.now == 5.0
    assert sim.complete
    assert sim.states() == {"root": DONE, "root.four": DEAD}


def test_shutdown_before_the_tree_started_completes_at_once() -> None:
    tree = Tree()

    assert tree.handle(ShutdownRequested(), 0.0) == [ShutdownComplete()]
    assert tree.handle(TreeStarted(root=RunnableSpec(target="t:x")), 1.0) == []
