"""The tree's handling of single events, asserted as whole action lists.

These drive `Tree` directly (no harness), with Go's policies (no heartbeat
watch) so that every action of an event can be listed.
"""

from __future__ import annotations

import random

import pytest

from actors.supervisor import (
    CancelNode,
    CancelTimer,
    ExitKind,
    FactChanged,
    FactReported,
    HeartbeatReceived,
    IllegalEvent,
    KillNode,
    LogNode,
    NodeFaulted,
    NodeState,
    NodeStatus,
    PolicySet,
    ProcessExited,
    ProcessSpawned,
    ReplyRunGroup,
    ReplySubLogger,
    RestartPolicy,
    RestartRequested,
    RunGroupRequested,
    RunnableSpec,
    SetTimer,
    ShutdownComplete,
    ShutdownRequested,
    Signal,
    SignalReceived,
    StartNode,
    StateChanged,
    SubLoggerRequested,
    TimerFired,
    TimerKey,
    Tree,
    TreeStarted,
    UnknownNode,
)
from actors.supervisor.core.events import Event
from actors.supervisor.core.severity import Severity

NEW, HEALTHY, DONE = NodeState.NEW, NodeState.HEALTHY, NodeState.DONE
DEAD, CANCELED = NodeState.DEAD, NodeState.CANCELED
GO = RestartPolicy(heartbeat_interval=None)
ROOT = RunnableSpec(target="test:root")
CHILD = RunnableSpec(target="test:child")


def new_tree() -> Tree:
    return Tree(PolicySet(base=GO), random.Random(1))


def started() -> Tree:
    """A tree whose root (generation 1) runs and said hello at t=0."""
    tree = new_tree()
    tree.handle(TreeStarted(root=ROOT), 0.0)
    tree.handle(ProcessSpawned(dn="root", generation=1, pid=100), 0.0)
    return tree


def run_group(dn: str, generation: int, *names: str, request_id: int = 1) -> RunGroupRequested:
    return RunGroupRequested(
        dn=dn,
        generation=generation,
        request_id=request_id,
        children=tuple((n, CHILD) for n in names),
    )


def with_children() -> Tree:
    """root (gen 1) runs the group {one (gen 2), two (gen 3)}, all spawned, at t=0."""
    tree = started()
    tree.handle(run_group("root", 1, "one", "two"), 0.0)
    tree.handle(ProcessSpawned(dn="root.one", generation=2, pid=101), 0.0)
    tree.handle(ProcessSpawned(dn="root.two", generation=3, pid=102), 0.0)
    return tree


def signal(dn: str, generation: int, s: Signal) -> SignalReceived:
    return SignalReceived(dn=dn, generation=generation, signal=s)


def exited(dn: str, generation: int, kind: ExitKind, error: str | None = None) -> ProcessExited:
    return ProcessExited(dn=dn, generation=generation, kind=kind, error=error)


# ---------------------------------------------------------------- starting


def test_tree_started_creates_the_root_as_new_and_starts_it() -> None:
    tree = new_tree()

    actions = tree.handle(TreeStarted(root=ROOT), 0.5)

    assert actions == [
        StateChanged(dn="root", old=None, new=NEW),
        StartNode(dn="root", generation=1, spec=ROOT, policy=GO),
    ]
    assert tree.snapshot() == [
        NodeStatus(
            dn="root", state=NEW, generation=1, pid=None, restarts=0, last_error=None, since=0.5
        )
    ]


def test_process_spawned_records_the_pid() -> None:
    tree = new_tree()
    tree.handle(TreeStarted(root=ROOT), 0.0)

    assert tree.handle(ProcessSpawned(dn="root", generation=1, pid=4242), 0.1) == []
    assert tree.status("root").pid == 4242


def test_run_group_creates_the_children_as_one_group_and_starts_them_in_order() -> None:
    tree = started()

    actions = tree.handle(run_group("root", 1, "one", "two", request_id=7), 1.0)

    assert actions == [
        StateChanged(dn="root.one", old=None, new=NEW),
        StartNode(dn="root.one", generation=2, spec=CHILD, policy=GO),
        StateChanged(dn="root.two", old=None, new=NEW),
        StartNode(dn="root.two", generation=3, spec=CHILD, policy=GO),
        ReplyRunGroup(dn="root", generation=1, request_id=7, error=None),
    ]
    assert [(s.dn, s.state, s.generation) for s in tree.snapshot()] == [
        ("root", NEW, 1),
        ("root.one", NEW, 2),
        ("root.two", NEW, 3),
    ]


@pytest.mark.parametrize(
    ("names", "error"),
    [
        (("Foo",), "runnable name 'Foo' is invalid"),
        (("oneSibling",), "runnable name 'oneSibling' is invalid"),
        (("",), "runnable name '' is invalid"),
        (("a" * 65,), f"runnable name '{'a' * 65}' is invalid"),
        (("a.b",), "runnable name 'a.b' is invalid"),
        (("ok", "bad-name"), "runnable name 'bad-name' is invalid"),
        (("one",), "runnable 'one' already exists"),
        (("dut",), "runnable 'dut' would shadow reserved name (eg. sub-logger)"),
        (("x", "x"), "duplicate child name 'x'"),
    ],
)
def test_a_refused_run_group_replies_with_the_error_and_changes_nothing(
    names: tuple[str, ...], error: str
) -> None:
    tree = started()
    tree.handle(run_group("root", 1, "one"), 0.0)
    tree.handle(SubLoggerRequested(dn="root", generation=1, request_id=2, name="dut"), 0.0)
    before = tree.snapshot()

    actions = tree.handle(run_group("root", 1, *names, request_id=3), 1.0)

    assert actions == [ReplyRunGroup(dn="root", generation=1, request_id=3, error=error)]
    assert tree.snapshot() == before


def test_a_node_may_run_children_only_while_new() -> None:
    tree = started()
    tree.handle(signal("root", 1, Signal.HEALTHY), 0.0)
    before = tree.snapshot()

    actions = tree.handle(run_group("root", 1, "late"), 1.0)

    assert actions == [
        ReplyRunGroup(
            dn="root", generation=1, request_id=1, error="cannot run new runnable on non-NEW node"
        )
    ]
    assert tree.snapshot() == before


def test_children_requested_by_a_cancelled_node_are_born_canceled_and_never_started() -> None:
    tree = started()
    tree.handle(ShutdownRequested(), 1.0)

    actions = tree.handle(run_group("root", 1, "late"), 2.0)

    assert actions == [
        StateChanged(dn="root.late", old=None, new=CANCELED),
        ReplyRunGroup(dn="root", generation=1, request_id=1, error=None),
    ]


# ---------------------------------------------------------------- sub-loggers


def test_sub_logger_names_are_reserved_and_may_be_reserved_again() -> None:
    tree = started()

    first = tree.handle(SubLoggerRequested(dn="root", generation=1, request_id=1, name="dut"), 0)
    again = tree.handle(SubLoggerRequested(dn="root", generation=1, request_id=2, name="dut"), 0)

    assert first == [ReplySubLogger(dn="root", generation=1, request_id=1, name="dut", error=None)]
    assert again == [ReplySubLogger(dn="root", generation=1, request_id=2, name="dut", error=None)]


@pytest.mark.parametrize(
    ("name", "error"),
    [
        ("one", "name 'one' already in use by child runnable"),
        ("Dut", "sub-logger name 'Dut' is invalid"),
        ("", "sub-logger name '' is invalid"),
    ],
)
def test_a_refused_sub_logger_replies_with_the_error(name: str, error: str) -> None:
    tree = with_children()

    actions = tree.handle(SubLoggerRequested(dn="root", generation=1, request_id=9, name=name), 0)

    assert actions == [
        ReplySubLogger(dn="root", generation=1, request_id=9, name=name, error=error)
    ]


# ---------------------------------------------------------------- signals


def test_healthy_moves_a_new_node_to_healthy() -> None:
    tree = started()

    assert tree.handle(signal("root", 1, Signal.HEALTHY), 2.0) == [
        StateChanged(dn="root", old=NEW, new=HEALTHY)
    ]
    assert tree.status("root").since == 2.0


def test_done_is_recorded_but_the_node_stays_healthy_until_it_returns() -> None:
    tree = started()
    tree.handle(signal("root", 1, Signal.HEALTHY), 0.0)

    assert tree.handle(signal("root", 1, Signal.DONE), 1.0) == []
    assert tree.state("root") is HEALTHY
    assert tree.handle(exited("root", 1, ExitKind.OK), 2.0) == [
        StateChanged(dn="root", old=HEALTHY, new=DONE)
    ]


@pytest.mark.parametrize(
    ("signals", "reason"),
    [
        ((Signal.DONE,), "illegal signal DONE in state NEW"),
        ((Signal.HEALTHY, Signal.HEALTHY), "illegal signal HEALTHY in state HEALTHY"),
        ((Signal.HEALTHY, Signal.DONE, Signal.DONE), "illegal signal DONE in state DONE"),
        ((Signal.HEALTHY, Signal.DONE, Signal.HEALTHY), "illegal signal HEALTHY in state DONE"),
    ],
)
def test_an_illegal_signal_fails_the_node_and_kills_it(
    signals: tuple[Signal, ...], reason: str
) -> None:
    tree = started()
    for s in signals[:-1]:
        tree.handle(signal("root", 1, s), 0.0)

    actions = tree.handle(signal("root", 1, signals[-1]), 1.0)

    assert actions == [
        LogNode(dn="root", severity=Severity.FATAL, message=f"node 'root' failed: {reason}"),
        KillNode(dn="root", generation=1, reason=reason),
    ]
    assert tree.handle(signal("root", 1, Signal.HEALTHY), 1.0) == []
    tree.handle(exited("root", 1, ExitKind.OK), 2.0)
    assert tree.status("root").last_error == reason
    assert tree.state("root") is DEAD


# ---------------------------------------------------------------- exits


@pytest.mark.parametrize(
    ("signals", "cancel", "kind", "error", "state", "last_error"),
    [
        ((Signal.HEALTHY, Signal.DONE), False, ExitKind.OK, None, DONE, None),
        ((Signal.HEALTHY, Signal.DONE), True, ExitKind.OK, None, DONE, None),
        ((Signal.HEALTHY, Signal.DONE), True, ExitKind.CANCELED, None, CANCELED, None),
        ((Signal.HEALTHY,), True, ExitKind.CANCELED, None, CANCELED, None),
        ((), True, ExitKind.CANCELED, None, CANCELED, None),
        ((Signal.HEALTHY,), False, ExitKind.OK, None, DEAD, "returned nil when NODE_STATE_HEALTHY"),
        ((), False, ExitKind.OK, None, DEAD, "returned nil when NODE_STATE_NEW"),
        ((), True, ExitKind.OK, None, DEAD, "returned nil when NODE_STATE_NEW"),
        (
            (Signal.HEALTHY,),
            False,
            ExitKind.CANCELED,
            None,
            DEAD,
            "returned canceled while its context was live",
        ),
        ((Signal.HEALTHY, Signal.DONE), False, ExitKind.ERROR, "boom", DEAD, "boom"),
        ((), True, ExitKind.ERROR, "boom", DEAD, "boom"),
        ((), False, ExitKind.ERROR, None, DEAD, "returned an error"),
        ((), False, ExitKind.CRASHED, "killed by signal SIGSEGV", DEAD, "killed by signal SIGSEGV"),
        ((), False, ExitKind.CRASHED, None, DEAD, "crashed"),
    ],
)
def test_an_exit_becomes_done_canceled_or_dead_as_in_go(
    signals: tuple[Signal, ...],
    cancel: bool,
    kind: ExitKind,
    error: str | None,
    state: NodeState,
    last_error: str | None,
) -> None:
    tree = started()
    for s in signals:
        tree.handle(signal("root", 1, s), 0.0)
    if cancel:
        tree.handle(ShutdownRequested(), 0.0)

    actions = tree.handle(exited("root", 1, kind, error), 1.0)

    old = HEALTHY if signals else NEW
    changes = [a for a in actions if isinstance(a, StateChanged)]
    assert changes[0] == StateChanged(dn="root", old=old, new=state)
    assert tree.status("root").last_error == last_error
    assert (
        LogNode(dn="root", severity=Severity.FATAL, message=f"node 'root' died: {last_error}")
        in actions
    ) == (state is DEAD)


def test_a_death_cancels_its_children_first_then_its_group_siblings() -> None:
    tree = with_children()
    tree.handle(run_group("root.one", 2, "x", "y"), 0.0)
    tree.handle(run_group("root.one.x", 4, "deep"), 0.0)
    tree.handle(run_group("root", 1, "alone", request_id=2), 0.0)

    actions = tree.handle(exited("root.one", 2, ExitKind.ERROR, "boom"), 3.0)

    def grace(dn: str, generation: int) -> SetTimer:
        return SetTimer(key=TimerKey(purpose="grace", dn=dn, generation=generation), deadline=8.0)

    assert actions[:9] == [
        StateChanged(dn="root.one", old=NEW, new=DEAD),
        LogNode(dn="root.one", severity=Severity.FATAL, message="node 'root.one' died: boom"),
        CancelNode(dn="root.one.x.deep", generation=6, reason="'root.one' died"),
        grace("root.one.x.deep", 6),
        CancelNode(dn="root.one.x", generation=4, reason="'root.one' died"),
        grace("root.one.x", 4),
        CancelNode(dn="root.one.y", generation=5, reason="'root.one' died"),
        grace("root.one.y", 5),
        CancelNode(dn="root.two", generation=3, reason="group sibling 'root.one' died"),
    ]
    assert tree.state("root.alone") is NEW


# ---------------------------------------------------------------- facts


def fact(dn: str, generation: int, key: str, value: object) -> FactReported:
    return FactReported(dn=dn, generation=generation, key=key, value=value)  # type: ignore[arg-type]


def test_a_reported_fact_is_shown_in_the_nodes_status_and_announced_once() -> None:
    tree = with_children()
    value = {"image": "pause:1", "present": False}

    assert tree.handle(fact("root.one", 2, "sandbox_image", value), 1.0) == [
        FactChanged(dn="root.one", key="sandbox_image", value=value)
    ]
    assert tree.handle(fact("root.one", 2, "sandbox_image", dict(value)), 1.1) == []
    assert [s.facts for s in tree.snapshot()] == [{}, {"sandbox_image": value}, {}]
    assert tree.status("root.one").facts == {"sandbox_image": value}


def test_a_fact_is_replaced_by_a_newer_value_and_withdrawn_with_none() -> None:
    tree = with_children()
    tree.handle(fact("root.one", 2, "present", True), 1.0)

    assert tree.handle(fact("root.one", 2, "present", 1), 1.1) == [
        FactChanged(dn="root.one", key="present", value=1)
    ]  # `True == 1`, yet another type is another fact
    assert tree.handle(fact("root.one", 2, "present", None), 1.2) == [
        FactChanged(dn="root.one", key="present", value=None)
    ]
    assert tree.status("root.one").facts == {}
    assert tree.handle(fact("root.one", 2, "present", None), 1.3) == []


def test_a_dns_facts_outlive_its_restart_until_the_new_incarnation_reports_them() -> None:
    tree = with_children()
    tree.handle(fact("root.one", 2, "present", False), 1.0)
    tree.handle(RestartRequested(dn="root"), 1.0)
    for dn, generation in (("root.one", 2), ("root.two", 3), ("root", 1)):
        tree.handle(exited(dn, generation, ExitKind.CANCELED), 1.0)
    tree.handle(ProcessSpawned(dn="root", generation=4, pid=200), 1.0)
    tree.handle(run_group("root", 4, "one"), 1.0)

    assert tree.status("root.one").generation == 5
    assert tree.status("root.one").facts == {"present": False}
    assert tree.handle(fact("root.one", 5, "present", True), 2.0) == [
        FactChanged(dn="root.one", key="present", value=True)
    ]


# ---------------------------------------------------------------- stale and illegal events


def stale_events() -> list[Event]:
    """One event of each kind from generation 2 of root.one (restarted since)."""
    return [
        ProcessSpawned(dn="root.one", generation=2, pid=1),
        run_group("root.one", 2, "x"),
        SubLoggerRequested(dn="root.one", generation=2, request_id=1, name="x"),
        signal("root.one", 2, Signal.HEALTHY),
        HeartbeatReceived(dn="root.one", generation=2),
        exited("root.one", 2, ExitKind.ERROR, "late"),
        NodeFaulted(dn="root.one", generation=2, reason="late"),
        fact("root.one", 2, "late", True),
        TimerFired(key=TimerKey(purpose="grace", dn="root.one", generation=2)),
        signal("root.one.gone", 2, Signal.HEALTHY),
        signal("root.one", 0, Signal.HEALTHY),
    ]


@pytest.mark.parametrize("event", stale_events(), ids=lambda e: type(e).__name__)
def test_an_event_of_an_earlier_incarnation_is_ignored(event: Event) -> None:
    tree = with_children()
    tree.handle(RestartRequested(dn="root.one"), 1.0)
    tree.handle(exited("root.one", 2, ExitKind.CANCELED), 1.0)
    assert tree.status("root.one").generation == 4
    before, timers = tree.snapshot(), tree.timers()

    assert tree.handle(event, 2.0) == []
    assert (tree.snapshot(), tree.timers()) == (before, timers)


def test_a_generation_never_issued_is_an_unknown_node() -> None:
    tree = with_children()

    with pytest.raises(UnknownNode) as e:
        tree.handle(signal("root.one", 99, Signal.HEALTHY), 1.0)
    assert str(e.value) == "no node 'root.one' of generation 99"


ILLEGAL: list[tuple[Event, float, str]] = [
    (TreeStarted(root=ROOT), 1.0, "the tree was already started"),
    (
        ProcessSpawned(dn="root.one", generation=2, pid=5),
        1.0,
        "unexpected hello from 'root.one' (generation 2): it is running with pid 101",
    ),
    (
        exited("root.two", 4, ExitKind.OK),
        1.0,
        "exit from 'root.two' (generation 4), which has no process",
    ),
    (
        signal("root.two", 4, Signal.HEALTHY),
        1.0,
        "signal from 'root.two' (generation 4), which has no process",
    ),
    (
        run_group("root.two", 4, "x"),
        1.0,
        "run-group request from 'root.two' (generation 4), which has no process",
    ),
    (
        fact("root.two", 4, "present", True),
        1.0,
        "fact from 'root.two' (generation 4), which has no process",
    ),
    (signal("root.one", 2, Signal.HEALTHY), 0.5, "time went backwards: 0.5 after 1.0"),
    (RestartRequested(dn="root.nope"), 1.0, "no node 'root.nope'"),
]


@pytest.mark.parametrize(("event", "now", "message"), ILLEGAL, ids=lambda x: str(x)[:30])
def test_an_illegal_event_raises_and_leaves_the_tree_unchanged(
    event: Event, now: float, message: str
) -> None:
    tree, twin = with_children(), with_children()
    for each in (tree, twin):
        each.handle(exited("root.two", 3, ExitKind.ERROR, "boom"), 1.0)
    before, timers = tree.snapshot(), tree.timers()

    with pytest.raises((IllegalEvent, UnknownNode)) as e:
        tree.handle(event, now)

    assert str(e.value) == message
    assert (tree.snapshot(), tree.timers()) == (before, timers)
    follow_up: list[tuple[Event, float]] = [
        (signal("root.one", 2, Signal.HEALTHY), 1.0),
        (TimerFired(key=TimerKey(purpose="restart", dn="root.two", generation=4)), 2.0),
        (exited("root.one", 2, ExitKind.ERROR, "again"), 3.0),
    ]
    for ev, t in follow_up:
        assert tree.handle(ev, t) == twin.handle(ev, t)
    assert tree.snapshot() == twin.snapshot()


def test_an_unknown_event_type_is_refused() -> None:
    tree = started()

    with pytest.raises(IllegalEvent) as e:
        tree.handle("hello", 1.0)  # type: ignore[arg-type]
    assert str(e.value) == "unknown event 'hello'"


def test_a_timer_that_is_not_armed_is_ignored() -> None:
    tree = with_children()

    for purpose in ("restart", "grace", "healthy", "liveness", "uptime"):
        key = TimerKey(purpose=purpose, dn="root.one", generation=2)
        assert tree.handle(TimerFired(key=key), 1.0) == []


def test_every_event_after_shutdown_complete_is_ignored() -> None:
    tree = started()
    tree.handle(ShutdownRequested(), 1.0)
    assert tree.handle(exited("root", 1, ExitKind.CANCELED), 2.0) == [
        CancelTimer(key=TimerKey(purpose="grace", dn="root", generation=1)),
        StateChanged(dn="root", old=NEW, new=CANCELED),
        ShutdownComplete(),
    ]
    assert tree.finished

    later: list[Event] = [
        TreeStarted(root=ROOT),
        signal("root", 1, Signal.HEALTHY),
        exited("root", 1, ExitKind.OK),
        RestartRequested(dn="root.nope"),
        ShutdownRequested(),
    ]
    assert [tree.handle(e, 3.0) for e in later] == [[], [], [], [], []]


def test_queries_about_an_unknown_dn_raise() -> None:
    tree = started()

    with pytest.raises(UnknownNode) as e:
        tree.state("root.nope")
    assert str(e.value) == "no node 'root.nope'"
    assert new_tree().snapshot() == []
