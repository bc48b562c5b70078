"""Operator restarts and shutdown: what the core does when asked to restart or to stop."""

from __future__ import annotations

from typing import Any

import pytest

from actors.supervisor import (
    CancelNode,
    CancelTimer,
    IllegalEvent,
    KillNode,
    LogNode,
    NodeState,
    RestartPolicy,
    RunnableSpec,
    SetTimer,
    ShutdownComplete,
    ShutdownRequested,
    StartNode,
    StateChanged,
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
    spawns_tree,
    timer_key,
)

NEW, HEALTHY, DONE = NodeState.NEW, NodeState.HEALTHY, NodeState.DONE
DEAD, CANCELED = NodeState.DEAD, NodeState.CANCELED


# ---------------------------------------------------------------- operator restarts


def test_a_requested_restart_cancels_the_subtree_and_starts_it_again_at_once() -> None:
    root = runs_groups({"svc": spawns_tree(1), "peer": becomes_healthy()}, then="done")
    sim = Simulation(root, policies=go_policies())
    sim.start()
    sim.advance_by(2.0)
    peer = sim.process("root.peer")

    actions = sim.restart("root.svc")

    assert actions == [
        LogNode(dn="root.svc", severity=Severity.INFO, message="restart of 'root.svc' requested"),
        CancelNode(dn="root.svc.a", generation=4, reason="restart requested"),
        SetTimer(key=timer_key("grace", "root.svc.a", 4), deadline=7.0),
        CancelNode(dn="root.svc.b", generation=5, reason="restart requested"),
        SetTimer(key=timer_key("grace", "root.svc.b", 5), deadline=7.0),
        CancelNode(dn="root.svc", generation=2, reason="restart requested"),
        SetTimer(key=timer_key("grace", "root.svc", 2), deadline=7.0),
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
    sim = Simulation(runs_groups({"one": remote()}, then="done"), policies=go_policies())
    sim.start()
    sim.process("root.one").die()

    actions = sim.restart("root.one")

    assert actions == [
        LogNode(dn="root.one", severity=Severity.INFO, message="restart of 'root.one' requested"),
        CancelTimer(key=timer_key("restart", "root.one", 3)),
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
        runs_groups({"job": runs_groups(then="done")}, then="healthy"), policies=go_policies()
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
    sim = Simulation(becomes_healthy(), policies=go_policies())
    sim.start()
    sim.shutdown()

    with pytest.raises(IllegalEvent) as e:
        sim.restart("root")
    assert str(e.value) == "cannot restart 'root': the tree is shutting down"


# ---------------------------------------------------------------- shutdown


def test_shutdown_cancels_children_before_parents_and_completes_once_all_exited() -> None:
    root = runs_groups({"a": spawns_tree(1), "b": becomes_healthy()}, then="healthy")
    sim = Simulation(root, policies=go_policies())
    sim.start()

    actions = sim.shutdown("agent stopping")

    def cancel(dn: str, generation: int) -> list[Any]:
        return [
            CancelNode(dn=dn, generation=generation, reason="agent stopping"),
            SetTimer(key=timer_key("grace", dn, generation), deadline=5.0),
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
    sim = Simulation(root, policies=go_policies())
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
    sim = Simulation(runs_groups({"one": remote()}, then="done"), policies=go_policies())
    sim.start()
    sim.process("root.one").die()

    actions = sim.shutdown()

    assert actions == [
        LogNode(dn="root", severity=Severity.INFO, message="shutting down: shutdown requested"),
        CancelTimer(key=timer_key("restart", "root.one", 3)),
        StateChanged(dn="root.one", old=DEAD, new=CANCELED),
        ShutdownComplete(),
    ]


def test_shutdown_waits_for_a_stubborn_process_to_be_killed() -> None:
    sim = Simulation(runs_groups({"four": busy_loop()}, then="done"), policies=go_policies())
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
