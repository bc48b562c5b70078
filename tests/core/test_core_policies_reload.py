"""Replacing the restart policies of a running tree (`PoliciesReplaced`, the agent's SIGHUP).

Delays are asserted as the log line and timer deadline the tree computes, never waited out.
"""

from __future__ import annotations

from actors.supervisor import SetTimer
from actors.supervisor.core.events import PoliciesReplaced, TimerPurpose
from actors.supervisor.testing.simulation import (
    Simulation,
    go_policies,
    remote,
    runs_groups,
)

FAST = {"backoff_initial": 1.0, "backoff_jitter": 0.0, "backoff_multiplier": 2.0}
SLOW = {"backoff_initial": 30.0, "backoff_jitter": 0.0, "backoff_multiplier": 2.0}


def restart_timers(actions: list[object]) -> list[SetTimer]:
    return [a for a in actions if isinstance(a, SetTimer) and a.key.purpose is TimerPurpose.RESTART]


def test_a_replaced_policy_sets_the_next_backoff_of_a_running_node_and_emits_nothing() -> None:
    sim = Simulation(runs_groups({"one": remote()}), policies=go_policies({"root.one": FAST}))
    sim.start()
    sim.run_until(lambda: sim.alive("root.one"))

    assert sim.feed(PoliciesReplaced(policies=go_policies({"root.one": SLOW}))) == []
    died = sim.process("root.one").die()

    [timer] = restart_timers(died)
    assert timer.deadline == sim.now + 30.0
    assert sim.tree.status("root.one").state.value == "NODE_STATE_DEAD"


def test_a_node_whose_policy_is_unchanged_keeps_its_backoff_progress() -> None:
    sim = Simulation(
        runs_groups({"one": remote(), "two": remote()}),
        policies=go_policies({"root.one": FAST, "root.two": FAST}),
    )
    sim.start()
    sim.run_until(lambda: sim.alive("root.one"))
    sim.process("root.one").die()
    sim.settle()
    sim.run_until(lambda: sim.alive("root.one"))

    sim.feed(PoliciesReplaced(policies=go_policies({"root.one": FAST, "root.two": SLOW})))
    died = sim.process("root.one").die()

    [timer] = restart_timers(died)
    assert timer.deadline == sim.now + 2.0  # the second death of root.one: 1 s doubled


def test_nodes_created_after_the_replacement_take_the_new_policy() -> None:
    sim = Simulation(runs_groups({"one": remote()}), policies=go_policies({"root.one": FAST}))
    sim.feed(PoliciesReplaced(policies=go_policies({"root.one": SLOW})))
    sim.start()
    sim.run_until(lambda: sim.alive("root.one"))

    [timer] = restart_timers(sim.process("root.one").die())

    assert timer.deadline == sim.now + 30.0
