"""Go's `osbase/supervisor/supervisor_test.go`, ported to the pure core.

Each Go test is one test here, with a sentence for a name (the Go name is in
its docstring). The runnables are the simulation harness's fakes; time is a
fake clock, so backoffs are asserted as timer delays, never waited out.
Policies are Go's (no heartbeat watch) unless a test says otherwise.
"""

from __future__ import annotations

import random

from actors.supervisor import (
    CancelNode,
    CancelTimer,
    ExitKind,
    LogNode,
    NodeState,
    RestartPolicy,
    SetTimer,
    StartNode,
    StateChanged,
    TimerKey,
)
from actors.supervisor.core.backoff import Backoff
from actors.supervisor.core.severity import Severity
from actors.supervisor.core.states import EXITED_STATES
from actors.supervisor.testing.simulation import (
    Simulation,
    becomes_healthy,
    busy_loop,
    done_after,
    done_without_healthy,
    go_policies,
    remote,
    runs_groups,
    spawns_forever,
    spawns_tree,
    stale_signal,
)

NEW, HEALTHY, DONE = NodeState.NEW, NodeState.HEALTHY, NodeState.DONE
DEAD, CANCELED = NodeState.DEAD, NodeState.CANCELED
GO = RestartPolicy(heartbeat_interval=None)


def backoff_delays(seed: int, count: int) -> list[float]:
    """The delays the tree draws for `count` consecutive deaths of a fresh node."""
    backoff, rng, delays = Backoff(), random.Random(seed), []
    for _ in range(count):
        delay, backoff = backoff.next(rng)
        delays.append(delay)
    return delays


def restart_timer(sim: Simulation, dn: str) -> SetTimer:
    """The last restart timer armed for `dn`."""
    return [a for a in sim.actions_of(SetTimer) if a.key.dn == dn and a.key.purpose == "restart"][
        -1
    ]


def test_both_members_of_a_group_start_and_become_healthy() -> None:
    """TestSimple."""
    sim = Simulation(
        runs_groups({"one": becomes_healthy(), "two": becomes_healthy()}), policies=go_policies()
    )
    sim.start()

    assert sim.transitions() == [
        ("root", None, NEW),
        ("root.one", None, NEW),
        ("root.two", None, NEW),
        ("root", NEW, HEALTHY),
        ("root", HEALTHY, DONE),
        ("root.one", NEW, HEALTHY),
        ("root.two", NEW, HEALTHY),
    ]
    assert sim.states() == {"root": DONE, "root.one": HEALTHY, "root.two": HEALTHY}
    assert [(p.dn, p.generation) for p in sim.processes] == [
        ("root", 1),
        ("root.one", 2),
        ("root.two", 3),
    ]


def test_group_sibling_restarts_when_one_member_dies() -> None:
    """TestSimpleFailure."""
    sim = Simulation(
        runs_groups({"one": becomes_healthy(), "two": remote()}), policies=go_policies()
    )
    sim.start()
    sim.process("root.two").become_healthy()
    sim.settle()
    first_one = sim.process("root.one")
    sim.advance_by(1.0)

    died = sim.process("root.two").die()

    (delay,) = backoff_delays(0, 1)
    assert died == [
        StateChanged(dn="root.two", old=HEALTHY, new=DEAD),
        LogNode(
            dn="root.two", severity=Severity.FATAL, message="node 'root.two' died: died on request"
        ),
        CancelNode(dn="root.one", generation=2, reason="group sibling 'root.two' died"),
        SetTimer(key=TimerKey(purpose="grace", dn="root.one", generation=2), deadline=6.0),
        LogNode(
            dn="root.two",
            severity=Severity.INFO,
            message=f"rescheduling supervised node 'root.two' with backoff {delay:.3f} s",
        ),
        SetTimer(
            key=TimerKey(purpose="restart", dn="root.two", generation=4), deadline=1.0 + delay
        ),
    ]
    sim.settle()
    assert first_one.exit_kind is ExitKind.CANCELED
    assert [p.generation for p in sim.incarnations("root.one")] == [2, 5]
    assert sim.states() == {"root": DONE, "root.one": HEALTHY, "root.two": DEAD}

    sim.run_until(lambda: sim.alive("root.two"))
    assert sim.now == 1.0 + delay
    assert sim.states() == {"root": DONE, "root.one": HEALTHY, "root.two": NEW}


def test_a_group_sibling_death_restarts_a_whole_deep_subtree() -> None:
    """TestDeepFailure."""
    sim = Simulation(runs_groups({"one": spawns_tree(5), "two": remote()}), policies=go_policies())
    sim.start()
    sim.process("root.two").become_healthy()
    sim.settle()
    subtree = spawns_more_dns(5, order="children first")
    assert len(subtree) == 63
    assert all(sim.tree.state(dn) is HEALTHY for dn in subtree)
    before = [p for p in sim.processes if p.dn in subtree]
    mark = len(sim.actions)

    sim.process("root.two").die()
    sim.settle()

    assert [a.dn for a in sim.actions_of(CancelNode, since=mark)] == subtree
    assert {p.exit_kind for p in before} == {ExitKind.CANCELED}
    restarted = [a.dn for a in sim.actions_of(StartNode, since=mark)]
    assert restarted == spawns_more_dns(5, order="breadth first")
    assert {s.dn: (s.state, s.restarts) for s in sim.tree.snapshot()} == {
        "root": (DONE, 0),
        **{dn: (HEALTHY, 1 if dn == "root.one" else 0) for dn in spawns_more_dns(5)},
        "root.two": (DEAD, 1),
    }


def spawns_more_dns(levels: int, order: str = "tree", dn: str = "root.one") -> list[str]:
    """The DNs of a spawns_tree(levels) subtree at `dn`.

    Orders: "tree" (parents first, a before b), "children first" (how a
    cancel reaches them), "breadth first" (how spawns_tree starts them).
    """
    if order == "breadth first":
        found, level = [], [dn]
        for _ in range(levels + 1):
            found.extend(level)
            level = [f"{d}.{c}" for d in level for c in "ab"]
        return found
    if levels == 0:
        return [dn]
    below = [
        *spawns_more_dns(levels - 1, order, f"{dn}.a"),
        *spawns_more_dns(levels - 1, order, f"{dn}.b"),
    ]
    return [*below, dn] if order == "children first" else [dn, *below]


def test_a_panicking_or_killed_group_member_restarts_its_sibling() -> None:
    """TestPanic (an uncaught exception, and a SIGKILL)."""
    for how, error in (("panic", "panic: at the disco"), ("crash", "killed by signal SIGKILL")):
        sim = Simulation(
            runs_groups({"one": becomes_healthy(), "two": remote()}), policies=go_policies()
        )
        sim.start()
        two = sim.process("root.two")
        two.become_healthy()
        sim.settle()

        getattr(two, how)()
        sim.settle()

        assert sim.status("root.two").last_error == error
        assert [line for line in sim.logs if line.dn == "root.two"] == [
            LogNode(
                dn="root.two", severity=Severity.FATAL, message=f"node 'root.two' died: {error}"
            ),
            LogNode(
                dn="root.two",
                severity=Severity.INFO,
                message=f"rescheduling supervised node 'root.two' with backoff "
                f"{backoff_delays(0, 1)[0]:.3f} s",
            ),
        ]
        assert [p.exit_kind for p in sim.incarnations("root.one")] == [ExitKind.CANCELED, None]
        assert sim.states() == {"root": DONE, "root.one": HEALTHY, "root.two": DEAD}


def test_a_tree_of_several_levels_comes_up_without_failures() -> None:
    """TestMultipleLevelFailure."""
    sim = Simulation(
        runs_groups({"one": spawns_tree(4), "two": spawns_tree(4)}), policies=go_policies()
    )
    sim.start()

    states = sim.states()
    assert len(states) == 1 + 2 * 31
    assert states == {"root": DONE, **{dn: HEALTHY for dn in states if dn != "root"}}
    assert [line for line in sim.logs if line.severity == Severity.FATAL] == []


def test_backoff_grows_with_each_death_and_resets_when_healthy() -> None:
    """TestBackoff: assert the restart timers' delays instead of waiting them out."""
    seed = 3
    sim = Simulation(runs_groups({"one": remote()}), policies=go_policies(), seed=seed)
    sim.start()
    sim.process("root.one").become_healthy()
    sim.settle()

    expected = backoff_delays(seed, 5)
    for delay in expected:
        sim.process("root.one").die()
        assert restart_timer(sim, "root.one").deadline == sim.now + delay
        sim.run_until(lambda: sim.alive("root.one"))
        assert sim.process("root.one").declared is NEW
    assert expected[4] >= 1.0

    sim.process("root.one").become_healthy()
    sim.settle()
    sim.process("root.one").die()
    rng = random.Random(seed)
    for _ in range(5):
        rng.random()
    after_healthy, _ = Backoff().next(rng)
    assert restart_timer(sim, "root.one").deadline == sim.now + after_healthy
    assert 0.1 <= after_healthy <= 1.0


def test_a_parent_failure_cancels_the_pending_restart_of_its_child() -> None:
    """TestCancelRestart."""
    sim = Simulation(remote(), policies=go_policies())
    sim.start()
    outer = sim.process("root")
    assert outer.run("inner", remote()) is None
    sim.settle()
    sim.process("root.inner").die()
    inner_timer = restart_timer(sim, "root.inner")
    sim.advance_by(0.01)
    assert sim.now < inner_timer.deadline

    died = outer.die("failed")

    rng = random.Random(0)
    rng.random()  # the inner's delay
    root_delay, _ = Backoff().next(rng)
    assert died == [
        StateChanged(dn="root", old=NEW, new=DEAD),
        LogNode(dn="root", severity=Severity.FATAL, message="node 'root' died: failed"),
        CancelTimer(key=inner_timer.key),
        StateChanged(dn="root.inner", old=DEAD, new=CANCELED),
        LogNode(
            dn="root",
            severity=Severity.INFO,
            message=f"rescheduling supervised node 'root' with backoff {root_delay:.3f} s",
        ),
        SetTimer(
            key=TimerKey(purpose="restart", dn="root", generation=4), deadline=0.01 + root_delay
        ),
    ]
    failed_at = sim.now
    sim.run_until(lambda: sim.alive("root"))
    assert sim.now - failed_at <= 1.0
    assert sim.states() == {"root": NEW}


def test_a_node_that_signalled_done_is_restartable_only_once_it_returned() -> None:
    """TestDoneDelay."""
    sim = Simulation(remote(), policies=go_policies())
    sim.start()
    outer = sim.process("root")
    outer.run("inner", done_after(0.01))
    sim.settle()
    assert sim.states() == {"root": NEW, "root.inner": HEALTHY}

    outer.die("failed")
    sim.settle()
    assert sim.states() == {"root": DEAD, "root.inner": HEALTHY}
    assert sim.tree.timers() == {TimerKey(purpose="grace", dn="root.inner", generation=2): 5.0}

    sim.advance()
    assert sim.now == 0.01
    assert sim.transitions("root.inner") == [
        ("root.inner", None, NEW),
        ("root.inner", NEW, HEALTHY),
        ("root.inner", HEALTHY, DONE),
    ]
    assert restart_timer(sim, "root").deadline == 0.01 + backoff_delays(0, 1)[0]
    assert sim.states() == {"root": DEAD}


def test_a_done_node_is_restarted_when_its_group_sibling_dies() -> None:
    """TestCancelDoneSibling."""
    done = runs_groups({"inner": remote(ignores_cancel=True)}, then="done")
    sim = Simulation(runs_groups({"done": done, "sibling": remote()}), policies=go_policies())
    sim.start()
    assert sim.states() == {
        "root": DONE,
        "root.done": DONE,
        "root.done.inner": NEW,
        "root.sibling": NEW,
    }
    first_inner = sim.process("root.done.inner")
    sim.advance_by(1.0)

    sim.process("root.sibling").die("failed")
    sim.settle()
    assert first_inner.cancelled and first_inner.alive
    assert sim.states() == {
        "root": DONE,
        "root.done": DONE,
        "root.done.inner": NEW,
        "root.sibling": DEAD,
    }

    mark = len(sim.actions)
    first_inner.exit(ExitKind.CANCELED)
    sim.settle()

    assert sim.transitions()[-5:] == [
        ("root.done.inner", NEW, CANCELED),
        ("root.done", DONE, NEW),
        ("root.done.inner", None, NEW),
        ("root.done", NEW, HEALTHY),
        ("root.done", HEALTHY, DONE),
    ]
    assert [a.dn for a in sim.actions_of(StartNode, since=mark)] == ["root.done", "root.done.inner"]
    assert sim.now == 1.0
    assert sim.process("root.done.inner") is not first_inner
    assert sim.states() == {
        "root": DONE,
        "root.done": DONE,
        "root.done.inner": NEW,
        "root.sibling": DEAD,
    }


def test_a_healthy_runnable_keeps_working_and_restarting_among_nasty_ones() -> None:
    """TestResilience, with the nasty runnables adapted to processes.

    two signals with a stale generation (Go: a foreign context) and returns;
    three signals DONE without HEALTHY; four ignores cancellation (Go: a busy
    loop), so only a kill stops it; five keeps starting runnables and, once
    HEALTHY, is refused. Heartbeats are on (the default policy).
    """
    root = runs_groups(
        {"one": becomes_healthy(), "one_sibling": remote()},
        {"two": stale_signal()},
        {"three": done_without_healthy()},
        {"four": busy_loop()},
        {"five": spawns_forever(interval=0.1, healthy_after=3)},
    )
    sim = Simulation(root, seed=11)
    sim.start()

    for _ in range(5):
        sim.run_until(lambda: sim.alive("root.one_sibling"))
        sim.process("root.one_sibling").become_healthy()
        one = sim.process("root.one")
        for _ in range(10):  # 'one' answers pings for a second
            sim.advance_by(0.1)
            assert sim.process("root.one") is one
            assert sim.tree.state("root.one") is HEALTHY
        sim.process("root.one_sibling").panic()
        sim.settle()
        assert one.exit_kind is ExitKind.CANCELED
        assert sim.process("root.one") is not one
        assert sim.tree.state("root.one") is HEALTHY

    assert len(sim.incarnations("root.one")) == 6
    assert sim.status("root.two").last_error == "returned nil when NODE_STATE_NEW"
    assert sim.status("root.three").last_error == "illegal signal DONE in state NEW"
    assert "cannot run new runnable on non-NEW node" in {
        p.exit_error for p in sim.incarnations("root.five")
    }
    assert len(sim.incarnations("root.four")) == 1

    sim.shutdown()
    sim.run_until(lambda: sim.complete)
    (four,) = sim.incarnations("root.four")
    assert four.killed
    assert sim.status("root.four").last_error == "ignored cancel (shutdown requested) for 5 s"
    assert not any(p.alive for p in sim.processes)
    assert all(s.state in EXITED_STATES for s in sim.tree.snapshot())


def test_sub_logger_and_child_names_cannot_collide() -> None:
    """TestSubLoggers (the log line itself is the log tree's business)."""
    sim = Simulation(remote(), policies=go_policies())
    sim.start()
    root = sim.process("root")
    assert root.run("foo", remote()) is None
    sim.settle()
    foo = sim.process("root.foo")

    assert foo.sub_logger("dut") is None
    assert foo.run("dut", becomes_healthy()) == (
        "runnable 'dut' would shadow reserved name (eg. sub-logger)"
    )
    foo.become_healthy()
    foo.become_done()
    foo.exit(ExitKind.OK)
    assert root.sub_logger("foo") == "name 'foo' already in use by child runnable"
    root.become_healthy()
    root.become_done()
    root.exit(ExitKind.OK)
    sim.settle()

    assert sim.states() == {"root": DONE, "root.foo": DONE}


def test_metrics_step_through_the_go_state_sequence() -> None:
    """TestMetrics: root waits, starts one; one starts two and fails once, then
    starts two again, becomes HEALTHY and DONE; two becomes HEALTHY."""
    sim = Simulation(remote(), policies=go_policies())
    sim.start()
    assert sim.metrics == {"root": NEW}

    sim.process("root").run("one", remote())
    sim.settle()
    assert sim.metrics == {"root": NEW, "root.one": NEW}

    one = sim.process("root.one")
    one.run("two", remote())
    one.die("failed")
    sim.settle()
    assert sim.metrics == {"root": NEW, "root.one": DEAD, "root.one.two": CANCELED}

    sim.run_until(lambda: sim.alive("root.one"))
    one = sim.process("root.one")
    one.run("two", remote())
    one.become_healthy()
    sim.settle()
    assert sim.metrics == {"root": NEW, "root.one": HEALTHY, "root.one.two": NEW}

    one.become_done()
    one.exit(ExitKind.OK)
    sim.settle()
    assert sim.metrics == {"root": NEW, "root.one": DONE, "root.one.two": NEW}

    sim.process("root.one.two").become_healthy()
    sim.settle()
    assert sim.metrics == {"root": NEW, "root.one": DONE, "root.one.two": HEALTHY}
    assert sim.transitions() == [
        ("root", None, NEW),
        ("root.one", None, NEW),
        ("root.one.two", None, NEW),
        ("root.one", NEW, DEAD),
        ("root.one.two", NEW, CANCELED),
        ("root.one", DEAD, NEW),
        ("root.one.two", None, NEW),
        ("root.one", NEW, HEALTHY),
        ("root.one", HEALTHY, DONE),
        ("root.one.two", NEW, HEALTHY),
    ]
