"""node-containerd's extensions over Go: policies, escalation, watchdogs, operator
restarts and shutdown. Delays are asserted as timer deadlines, never waited out."""

from __future__ import annotations

from typing import Any

from actors.supervisor import (
    CancelNode,
    ExitKind,
    LogNode,
    NodeState,
    RestartPolicy,
    SetTimer,
    ShutdownComplete,
    StartNode,
    StateChanged,
    TreeFailed,
)
from actors.supervisor.core.severity import Severity
from actors.supervisor.testing.simulation import (
    Simulation,
    becomes_healthy,
    go_policies,
    remote,
    runs_groups,
    timer_key,
)

NEW, HEALTHY, DONE = NodeState.NEW, NodeState.HEALTHY, NodeState.DONE
DEAD, CANCELED = NodeState.DEAD, NodeState.CANCELED


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
    sim = Simulation(runs_groups({"one": remote()}), policies=go_policies({"root.one": fast}))
    sim.start()

    die_repeatedly(sim, "root.one", 6, healthy_first=False)

    assert restart_delays(sim, "root.one") == [1.0, 2.0, 4.0, 8.0, 8.0, 8.0]


def test_with_zero_backoff_a_dead_node_starts_again_at_once() -> None:
    sim = Simulation(runs_groups({"one": remote()}), policies=go_policies(backoff_initial=0.0))
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
    sim = Simulation(runs_groups({"one": remote()}), policies=go_policies({"root.one": exact}))
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
    sim = Simulation(runs_groups({"one": remote()}), policies=go_policies({"root.one": flappy}))
    sim.start()

    die_repeatedly(sim, "root.one", 3, healthy_first=True)
    assert restart_delays(sim, "root.one") == [1.0, 2.0, 4.0]

    sim.run_until(lambda: sim.alive("root.one"))
    one = sim.process("root.one")
    assert one.become_healthy() == [
        StateChanged(dn="root.one", old=NEW, new=HEALTHY),
        SetTimer(key=timer_key("uptime", "root.one", one.generation), deadline=sim.now + 10.0),
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
    sim = Simulation(root, policies=go_policies({"root.mid.leaf": leaf_policy}))
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
        SetTimer(key=timer_key("grace", "root.mid", mid.generation), deadline=sim.now + 5.0),
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
    sim = Simulation(root, policies=go_policies({"root.leaf": {"max_restarts": 0}}))
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
    sim = Simulation(root, policies=go_policies({"root": {"max_restarts": 1}}))
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
    sim = Simulation(root, policies=go_policies(limits))
    sim.start()

    die_repeatedly(sim, "root.one", 2, healthy_first=False)

    assert sim.failed == (
        "restart intensity reached: 'root' was restarted 0 times within 60 s and died again:"
        " restart intensity reached: 'root.one' was restarted 1 times within 60 s and died"
        " again: died on request"
    )
    assert sim.complete
