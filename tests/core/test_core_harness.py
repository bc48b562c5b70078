"""The simulation harness itself: quiescence, the fake clock, fake processes."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from actors.supervisor import ExitKind, HeartbeatReceived, NodeState, RunnableSpec
from actors.supervisor.testing.simulation import (
    Behaviour,
    FakeProcess,
    Simulation,
    SimulationError,
    SimulationTimeout,
    becomes_healthy,
    busy_loop,
    done_without_healthy,
    go_policies,
    remote,
    runs_groups,
    spawns_forever,
    stale_signal,
)


def test_settle_stops_when_nothing_is_pending_and_no_timer_is_due() -> None:
    sim = Simulation(runs_groups({"one": remote()}))
    sim.start()

    assert sim.quiescent
    assert sim.now == 0.0
    assert sim.next_deadline() == 1.0  # the first heartbeats


def test_advance_jumps_the_clock_to_the_next_deadline() -> None:
    sim = Simulation(runs_groups({"one": remote()}), policies=go_policies(), seed=1)
    sim.start()
    sim.process("root.one").die()
    sim.settle()
    (deadline,) = sim.timers.values()

    assert sim.advance()
    assert sim.now == deadline
    assert sim.alive("root.one")
    assert not sim.advance()


def test_live_processes_heartbeat_on_time_unless_hung() -> None:
    sim = Simulation(runs_groups({"one": becomes_healthy()}, then="done"))
    sim.start()
    sim.advance_to(3.0)
    sim.process("root.one").hang()
    sim.advance_to(5.0)

    beats = [(t, e.dn) for t, e in sim.events if isinstance(e, HeartbeatReceived)]
    assert beats == [(1.0, "root.one"), (2.0, "root.one"), (3.0, "root.one")]


def test_run_until_gives_up_at_its_time_limit() -> None:
    sim = Simulation(runs_groups({"one": becomes_healthy()}, then="done"))
    sim.start()

    with pytest.raises(SimulationTimeout) as e:
        sim.run_until(lambda: False, timeout=2.5)
    assert str(e.value) == "condition still false at 2.0 (limit 2.5)"


def test_commanding_a_process_that_exited_is_an_error() -> None:
    sim = Simulation(runs_groups({"one": remote()}), policies=go_policies())
    sim.start()
    one = sim.process("root.one")
    one.die()

    with pytest.raises(SimulationError) as e:
        one.become_healthy()
    assert str(e.value) == "process of 'root.one' (generation 2) exited"
    with pytest.raises(SimulationError) as e:
        sim.process("root.one")
    assert str(e.value) == "no live process of 'root.one'"


def test_an_unknown_target_is_an_error() -> None:
    sim = Simulation(RunnableSpec(target="sim:nope"))

    with pytest.raises(SimulationError) as e:
        sim.start()
    assert str(e.value) == "no fake runnable for target 'sim:nope'"


def test_own_behaviours_can_be_plugged_in() -> None:
    class Quitter(Behaviour):
        def on_start(self, proc: FakeProcess) -> None:
            proc.become_healthy()
            proc.after(2.0, lambda p: p.exit(ExitKind.ERROR, "quit"))

    def factory(args: Mapping[str, Any]) -> Behaviour:
        return Quitter()

    sim = Simulation(
        RunnableSpec(target="test:quitter"),
        policies=go_policies(),
        behaviours={"test:quitter": factory},
    )
    sim.start()
    sim.advance()

    assert sim.now == 2.0
    assert sim.status("root").last_error == "quit"


def test_the_shell_s_timer_table_mirrors_the_tree_s() -> None:
    root = runs_groups(
        {"one": becomes_healthy(), "two": stale_signal()},
        {"three": done_without_healthy()},
        {"four": busy_loop()},
    )
    sim = Simulation(root, seed=4)
    sim.start()
    for _ in range(40):
        sim.advance()
        assert sim.timers == sim.tree.timers()
    sim.shutdown()
    sim.run_until(lambda: sim.complete)
    assert sim.timers == sim.tree.timers() == {}


def test_one_seed_gives_one_history() -> None:
    def run(seed: int) -> list[Any]:
        root = runs_groups({"five": spawns_forever(), "two": stale_signal()}, then="healthy")
        sim = Simulation(root, seed=seed)
        sim.start()
        sim.advance_by(5.0)
        return sim.actions

    assert run(8) == run(8)
    assert run(8) != run(9)


def test_metrics_keep_the_last_state_of_forgotten_nodes() -> None:
    sim = Simulation(remote(), policies=go_policies())
    sim.start()
    sim.process("root").run("child", remote())
    sim.settle()
    sim.process("root").die()
    sim.settle()

    assert sim.states() == {"root": NodeState.DEAD}
    assert sim.metrics == {"root": NodeState.DEAD, "root.child": NodeState.CANCELED}


def test_a_remote_told_to_ignore_cancels_is_only_ended_by_the_grace_kill() -> None:
    sim = Simulation(runs_groups({"one": remote(), "two": remote()}), policies=go_policies())
    sim.start()
    one = sim.process("root.one")
    one.ignore_cancel()
    sim.process("root.two").die()
    sim.settle()
    assert one.cancelled and one.alive

    sim.advance_to(5.0)

    assert (one.killed, one.exit_kind, one.exit_error) == (
        True,
        ExitKind.CRASHED,
        "killed by signal SIGKILL",
    )
