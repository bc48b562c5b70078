"""What the agent tells systemd, as a pure function of the tree's state changes."""

from __future__ import annotations

from actors.agent.systemd.service_state import ServiceState
from actors.supervisor.core.events import StateChanged
from actors.supervisor.core.states import NodeState

NEW, HEALTHY, DEAD, DONE, CANCELED = (
    NodeState.NEW,
    NodeState.HEALTHY,
    NodeState.DEAD,
    NodeState.DONE,
    NodeState.CANCELED,
)
C, P, R = "root.containerd", "root.containerd.preseed", "root.containerd.runsc"

READY_OK = "STATUS=ready: containerd is up, preseed finished"
EXTEND = "EXTEND_TIMEOUT_USEC=60000000"
PRESEED_FAILED = (
    "STATUS=ready; preseed failed, retrying "
    "(node-containerd logs root.containerd.preseed shows why)"
)


def _run(state: ServiceState, *changes: tuple[str, NodeState | None, NodeState]) -> list[list[str]]:
    return [state.handle(StateChanged(dn=dn, old=old, new=new)) for dn, old, new in changes]


def test_a_normal_start_is_ready_once_containerd_is_healthy_and_the_preseed_finished():
    state = ServiceState()
    assert state.starting() == ["STATUS=starting containerd"]
    assert _run(
        state,
        ("root", None, NEW),
        (C, None, NEW),
        ("root", NEW, HEALTHY),
        ("root", HEALTHY, DONE),
        (R, None, NEW),
        (P, None, NEW),
        (R, NEW, HEALTHY),
        (C, NEW, HEALTHY),
        (P, NEW, HEALTHY),
        (P, HEALTHY, DONE),
    ) == [
        [],
        [],
        [],
        [],
        [],
        [],
        [],
        ["STATUS=containerd is up; importing preseed images", EXTEND],
        ["READY=1", READY_OK],
        [],
    ]
    assert state.ready and not state.preseed_failed


def test_a_preseed_that_finishes_before_containerd_is_healthy_waits_for_containerd():
    state = ServiceState()
    state.starting()
    assert _run(state, (C, None, NEW), (P, None, NEW), (P, NEW, HEALTHY), (P, HEALTHY, DONE)) == [
        [],
        [],
        [],
        [],
    ]
    assert _run(state, (C, NEW, HEALTHY)) == [["READY=1", READY_OK]]


def test_a_failed_preseed_still_makes_the_agent_ready_with_a_status_saying_so():
    state = ServiceState()
    state.starting()
    _run(state, (C, None, NEW), (P, None, NEW), (C, NEW, HEALTHY))
    assert _run(state, (P, NEW, DEAD)) == [["READY=1", PRESEED_FAILED]]
    assert state.preseed_failed
    # Its policy restarts it; the status stays until a run succeeds, READY=1 is not repeated.
    assert _run(state, (P, DEAD, NEW), (P, NEW, DEAD), (P, DEAD, NEW)) == [[], [], []]
    assert _run(state, (P, NEW, HEALTHY)) == [[READY_OK]]
    assert not state.preseed_failed


def test_a_preseed_that_fails_before_containerd_is_healthy_is_reported_when_ready():
    state = ServiceState()
    state.starting()
    assert _run(state, (C, None, NEW), (P, None, NEW), (P, NEW, DEAD)) == [[], [], []]
    assert _run(state, (C, NEW, HEALTHY)) == [["READY=1", PRESEED_FAILED]]


def test_a_dead_node_after_ready_changes_only_the_status_and_recovery_restores_it():
    state = ServiceState()
    state.starting()
    _run(state, (C, None, NEW), (P, None, NEW), (C, NEW, HEALTHY), (P, NEW, DONE))
    assert _run(state, (C, HEALTHY, DEAD), (P, DONE, CANCELED)) == [
        ["STATUS=root.containerd DEAD, restarting (node-containerd status shows why)"],
        [],
    ]
    assert _run(state, (C, DEAD, NEW), (P, CANCELED, NEW)) == [
        ["STATUS=containerd is restarting"],
        [],
    ]
    assert _run(state, (C, NEW, HEALTHY), (P, NEW, HEALTHY)) == [[READY_OK], []]
    assert _run(state, (R, HEALTHY, DEAD), (R, DEAD, NEW), (R, NEW, HEALTHY)) == [
        ["STATUS=root.containerd.runsc DEAD, restarting (node-containerd status shows why)"],
        [READY_OK],
        [],
    ]


def test_stopping_is_said_once_and_silences_the_shutdowns_own_state_changes():
    state = ServiceState()
    state.starting()
    _run(state, (C, None, NEW), (C, NEW, HEALTHY))
    assert state.stopping("received SIGTERM") == [
        "STOPPING=1",
        "STATUS=stopping: received SIGTERM",
    ]
    assert _run(state, (C, HEALTHY, CANCELED), (P, None, DEAD)) == [[], []]
    assert state.stopping("the tree has stopped") == []
    assert state.shutting_down and not state.ready


def test_the_start_timeout_is_extended_only_while_the_initial_preseed_imports():
    state = ServiceState()
    state.starting()
    assert state.extend_timeout() == []  # containerd not up yet: TimeoutStartSec= holds
    _run(state, (C, None, NEW), (P, None, NEW), (C, NEW, HEALTHY))
    assert state.extend_timeout() == [EXTEND]
    assert _run(state, (P, NEW, HEALTHY)) == [["READY=1", READY_OK]]
    assert state.extend_timeout() == []


def test_a_containerd_restart_during_the_import_stops_the_extensions_until_it_is_back():
    state = ServiceState()
    assert _run(state, (C, None, HEALTHY), (C, HEALTHY, DEAD)) == [
        ["STATUS=containerd is up; importing preseed images", EXTEND],
        ["STATUS=root.containerd DEAD, restarting (node-containerd status shows why)"],
    ]
    assert state.extend_timeout() == []
    assert _run(state, (C, DEAD, NEW), (C, NEW, HEALTHY))[1] == [
        "STATUS=containerd is up; importing preseed images",
        EXTEND,
    ]


def test_no_extension_after_stopping():
    state = ServiceState()
    _run(state, (C, None, HEALTHY))
    state.stopping("received SIGTERM")
    assert state.extend_timeout() == []
