"""The Go scenarios about process behaviour, again with real processes and signals."""

from __future__ import annotations

import os
import signal
import time

import pytest

from actors.supervisor.testing.harness import KIT, group_spec
from tests.support.processes import pid_alive
from tests.support.waiting import wait_until

pytestmark = pytest.mark.timeout(60)


def test_simple_group_of_two_processes_comes_up(harness, probe):
    harness.start(
        group_spec(probe, {"one": ("becomes_healthy", {}), "two": ("becomes_healthy", {})})
    )
    probe.wait_for("root.one", "started")
    probe.wait_for("root.two", "started")
    # A runnable reports "started" to the probe after sending HEALTHY to the root:
    # wait for the root to have processed it too.
    for dn, state in (("root", "DONE"), ("root.one", "HEALTHY"), ("root.two", "HEALTHY")):
        harness.states.wait_for(dn, state)
    assert harness.state_map() == {"root": "DONE", "root.one": "HEALTHY", "root.two": "HEALTHY"}
    pids = {n.dn: n.pid for n in harness.sup.snapshot()}
    assert pids["root"] is None and pid_alive(pids["root.one"]) and pid_alive(pids["root.two"])


def _rc(probe):
    return ("remote_controlled", {"control_dir": str(probe.dir)})


@pytest.mark.parametrize("death", ["die", "crash"])
def test_when_a_group_member_dies_its_sibling_is_cancelled_and_both_restart(harness, probe, death):
    harness.start(group_spec(probe, {"one": ("becomes_healthy", {}), "two": _rc(probe)}))
    probe.wait_for("root.one", "started")
    probe.command("root.two", "healthy")
    harness.states.wait_for("root.two", "HEALTHY")
    probe.command("root.two", death)
    harness.states.wait_for("root.two", "DEAD")
    probe.wait_for("root.one", "done")
    probe.wait_for("root.one", "started", count=2)
    probe.wait_for("root.two", "started", count=2)
    assert harness.states.count("root.one", "CANCELED") == 1
    node = {n.dn: n for n in harness.sup.snapshot()}["root.two"]
    expected = "RuntimeError: died on command" if death == "die" else "killed by signal SIGKILL"
    assert expected in (node.last_error or "")


def test_sigkill_of_a_child_from_outside_is_noticed_and_the_subtree_restarts(harness, probe):
    harness.start(
        group_spec(probe, {"one": ("spawns_more", {"levels": 2}), "two": ("becomes_healthy", {})})
    )
    probe.wait_for("root.one.sub.sub", "started")
    _, pid = probe.wait_for("root.one", "started")
    os.kill(pid, signal.SIGKILL)
    harness.states.wait_for("root.one", "DEAD")
    # The whole subtree under one and its group sibling are cancelled and restarted.
    probe.wait_for("root.one.sub.sub", "started", count=2)
    probe.wait_for("root.two", "started", count=2)
    assert not pid_alive(pid)


def test_backoff_grows_between_consecutive_deaths_and_resets_after_healthy(harness, probe):
    harness.start(
        group_spec(probe, {"one": _rc(probe)}),
        base={"backoff_initial": 0.1, "backoff_multiplier": 2.0, "backoff_jitter": 0.0},
    )
    gaps = []
    for i in range(1, 5):
        probe.wait_for("root.one", "started", count=i)
        probe.command("root.one", "die")
        died = harness.states.wait_for("root.one", "DEAD", count=i)
        restarted, _ = probe.wait_for("root.one", "started", count=i + 1, timeout=20)
        gaps.append(restarted - died)
    # 0.1, 0.2, 0.4, 0.8 s plus process start-up, which varies by more than a tenth on
    # a loaded machine: each gap is at least its backoff, and the last outgrows the first.
    assert all(gap >= 0.1 * 2**i for i, gap in enumerate(gaps)), gaps
    assert gaps[3] > gaps[0] and gaps[0] < 0.8, gaps
    probe.command("root.one", "healthy")
    harness.states.wait_for("root.one", "HEALTHY")
    probe.command("root.one", "die")
    died = harness.states.wait_for("root.one", "DEAD", count=5)
    restarted, _ = probe.wait_for("root.one", "started", count=6, timeout=20)
    assert restarted - died < 0.8, "HEALTHY must reset the backoff to its initial value"


def test_a_pending_restart_is_dropped_when_the_parent_fails(harness, probe):
    inner = [
        KIT + "remote_controlled",
        {"control_dir": str(probe.dir), "events": probe.events_path},
    ]
    outer = ("remote_controlled", {"control_dir": str(probe.dir), "children": {"inner": inner}})
    harness.start(
        group_spec(probe, {"outer": outer}),
        rules={
            "root.outer": {"backoff_initial": 0.05},
            "root.outer.inner": {"backoff_initial": 30.0},
        },
    )
    probe.wait_for("root.outer.inner", "started")
    probe.command("root.outer.inner", "die")
    harness.states.wait_for("root.outer.inner", "DEAD")
    t0 = time.monotonic()
    probe.command("root.outer", "die")
    # inner's 30 s backoff is not waited for: outer and a fresh inner come back at once.
    probe.wait_for("root.outer", "started", count=2, timeout=5)
    probe.wait_for("root.outer.inner", "started", count=2, timeout=5)
    assert time.monotonic() - t0 < 5


def test_a_child_that_ignores_cancel_is_killed_after_its_grace_period(harness, probe):
    harness.start(
        group_spec(probe, {"one": _rc(probe), "two": _rc(probe)}), base={"grace_period": 0.5}
    )
    probe.wait_for("root.one", "started")
    probe.wait_for("root.two", "started")
    probe.command("root.one", "healthy")
    probe.command("root.one", "ignore_cancel")
    probe.wait_for("root.one", "cmd:ignore_cancel")
    probe.command("root.two", "healthy")
    harness.states.wait_for("root.two", "HEALTHY")
    _, pid = probe.wait_for("root.one", "started")
    t0 = time.monotonic()
    probe.command("root.two", "die")
    probe.wait_for("root.one", "cancelled")
    harness.states.wait_for("root.one", "DEAD", timeout=10)
    assert time.monotonic() - t0 >= 0.5
    assert not pid_alive(pid)
    node = {n.dn: n for n in harness.sup.snapshot()}["root.one"]
    assert node.restarts >= 1 or node.state.short in ("NEW", "DEAD")
    probe.wait_for("root.one", "started", count=2)


def test_a_stopped_child_is_caught_by_the_heartbeat_and_restarted(harness, probe):
    harness.start(
        group_spec(probe, {"one": ("becomes_healthy", {})}), base={"heartbeat_interval": 0.2}
    )
    _, pid = probe.wait_for("root.one", "started")
    t0 = time.monotonic()
    os.kill(pid, signal.SIGSTOP)
    died = harness.states.wait_for("root.one", "DEAD", timeout=10)
    assert died - t0 < 3 * 0.2 + 0.5
    probe.wait_for("root.one", "started", count=2)
    assert not pid_alive(pid)
    assert "heartbeat" in harness.sup.snapshot()[1].last_error


def test_a_child_whose_vouched_work_ended_stops_beating_and_is_restarted(harness, probe, tmp_path):
    alive = tmp_path / "alive"
    alive.touch()
    harness.start(
        group_spec(probe, {"one": ("vouches_while", {"path": str(alive)})}),
        base={"heartbeat_interval": 0.2},
    )
    _, pid = probe.wait_for("root.one", "started")
    t0 = time.monotonic()
    alive.unlink()  # the thread still runs; the work it vouched for does not
    died = harness.states.wait_for("root.one", "DEAD", timeout=10)
    assert died - t0 < 3 * 0.2 + 0.5
    assert not pid_alive(pid)
    assert "no heartbeat" in harness.sup.snapshot()[1].last_error


def test_a_done_node_is_restarted_when_its_group_sibling_dies(harness, probe):
    inner = {"inner": [KIT + "becomes_healthy", {"events": probe.events_path}]}
    harness.start(
        group_spec(
            probe, {"done": ("group", {"children": inner, "done": True}), "sibling": _rc(probe)}
        )
    )
    harness.states.wait_for("root.done", "DONE")
    probe.wait_for("root.done.inner", "started")
    probe.command("root.sibling", "die")
    probe.wait_for("root.done.inner", "started", count=2)
    probe.wait_for("root.done", "started", count=2)


def test_nasty_runnables_are_contained_while_a_well_behaved_one_keeps_restarting(harness, probe):
    harness.start(
        group_spec(probe, {"one": ("becomes_healthy", {}), "sibling": _rc(probe)}),
        base={"grace_period": 0.3},
    )
    nasty = group_spec(
        probe,
        {
            "busy": ("busy_loop", {}),
            "three": ("done_without_healthy", {}),
            "five": ("keeps_running_more", {}),
        },
        done=False,
    )
    # The nasty ones live in a second tree next to the first, sharing the machine.
    from actors.supervisor.core.policy import PolicyRule, PolicySet
    from actors.supervisor.runtime.actor import Supervisor

    other = Supervisor(
        nasty,
        policies=PolicySet(
            rules=[
                PolicyRule(
                    "*", {"grace_period": 0.3, "backoff_initial": 0.05, "heartbeat_interval": 0.2}
                )
            ]
        ),
    )
    other.start()
    try:
        probe.wait_for("root.five", "refused", timeout=10)
        for i in range(1, 6):
            probe.wait_for("root.sibling", "started", count=i)
            probe.command("root.sibling", "healthy")
            probe.command("root.sibling", "die")
            probe.wait_for("root.one", "started", count=i + 1, timeout=10)
        # root.three's error comes back with every round of the other tree, and between
        # rounds a sibling's death (busy's) writes its own: wait to see it, not for a moment.
        wait_until(
            lambda: (
                "illegal signal DONE in state NEW" in (_node(other, "root.three").last_error or "")
            ),
            timeout=10,
            what="root.three's illegal DONE reported as its error",
        )
        assert other.failure() is None  # contained: the other tree did not fail as a whole
    finally:
        assert other.stop(timeout=20) is None


def _node(sup, dn):
    """The node `dn` in a supervisor's snapshot."""
    return next(n for n in sup.snapshot() if n.dn == dn)
