"""Liveness of the real containerd: a stopped one is failed and restarted, a paused one is not.

The probes use short settings (interval 0.5 s, timeout 2 s, 3 failures: a bound of
0.5 × 3 + 2 = 3.5 s); the waits add generous slack for a loaded machine. The exact
bound is asserted on a fake clock in test_containerd_lifecycle.py.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import os
import shutil
import signal
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from actors.agent.root import RootSpec
from actors.containerd.core.events import LIVENESS_DURATION, LIVENESS_PROBES
from actors.containerd.core.spec import ContainerdSpec
from actors.containerd.process import ContainerdOutcome, run_containerd
from actors.supervisor.core.events import RunnableSpec
from actors.supervisor.core.policy import PolicyRule, PolicySet
from actors.supervisor.runtime.actor import Supervisor
from actors.supervisor.testing.kit import StateRecorder
from messages.specs import spec_to_wire
from tests.support.containerd_daemon import ContainerdDaemon
from tests.support.nodes import FakeNode
from tests.support.processes import pid_alive
from tests.support.specs import containerd_spec_in
from tests.support.waiting import in_thread, wait_until

pytestmark = [pytest.mark.containerd, pytest.mark.timeout(120)]

CD = "root.containerd"
LIVENESS = {"liveness_interval": 0.5, "liveness_timeout": 2.0, "liveness_failures": 3}
BOUND = 0.5 * 3 + 2.0
SLACK = 20.0


@pytest.fixture(scope="module")
def base() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="nc-live-", dir="/tmp"))
    ContainerdDaemon(path).write_config()
    (path / "tmp").mkdir()
    yield path
    shutil.rmtree(path, ignore_errors=True)


def make_spec(base: Path) -> ContainerdSpec:
    return containerd_spec_in(base, ready_timeout=20.0, stop_timeout=5.0, **LIVENESS)


def reason(address: str) -> str:
    return (
        f"containerd did not answer the liveness probe (Version on {address!r}, timeout 2s) "
        "3 times in a row; last error: deadline_exceeded: Deadline Exceeded"
    )


def started_pid(node: FakeNode) -> int:
    message = node.wait_message("started containerd", timeout=20)
    return int(message.rsplit("pid ", 1)[1].rstrip(")"))


def probes(node: FakeNode, result: str) -> int:
    return sum(1 for name, _, labels in node.metrics if labels == {"result": result})


def test_a_stopped_containerd_fails_the_node_naming_the_probe_and_is_killed(
    base: Path,
) -> None:
    spec = make_spec(base)
    node = FakeNode()
    outcome = in_thread(run_containerd, spec, node)
    assert node.healthy.wait(20), node.messages()
    pid = started_pid(node)
    wait_until(lambda: probes(node, "ok") >= 1, 20, "a first liveness probe answered")
    os.kill(pid, signal.SIGSTOP)
    try:
        assert outcome.result(timeout=BOUND + SLACK) == ContainerdOutcome(
            error=reason(spec.address)
        )
    finally:
        with contextlib.suppress(ProcessLookupError):  # gone once it was killed
            os.kill(pid, signal.SIGCONT)
    assert not pid_alive(pid)  # SIGKILLed while stopped
    assert probes(node, "fail") == 3
    assert {name for name, _, _ in node.metrics} == {LIVENESS_DURATION, LIVENESS_PROBES}
    warnings = [m for m in node.messages("WARNING") if "liveness probe" in m]
    assert [w.split(" (Version on ")[0] for w in warnings] == [
        "containerd did not answer the liveness probe"
    ] * 2
    assert "(2 of 3 in a row): deadline_exceeded: Deadline Exceeded" in warnings[-1]


def test_a_containerd_paused_for_less_than_the_timeout_is_left_running(base: Path) -> None:
    spec = make_spec(base)
    node = FakeNode()
    outcome = in_thread(run_containerd, spec, node)
    assert node.healthy.wait(20), node.messages()
    pid = started_pid(node)
    wait_until(lambda: probes(node, "ok") >= 1, 20, "a first liveness probe answered")
    os.kill(pid, signal.SIGSTOP)
    try:
        # Paused for 1.2 s: across two probe ticks, shorter than a probe's timeout.
        with pytest.raises(concurrent.futures.TimeoutError):
            outcome.result(timeout=1.2)
    finally:
        os.kill(pid, signal.SIGCONT)
    wait_until(lambda: probes(node, "ok") >= 8, 30, "eight liveness probes answered")
    slow = [v for name, v, _ in node.metrics if name == LIVENESS_DURATION and v > 0.5]
    assert slow, node.metrics  # some probes waited out the pause, and were answered
    assert probes(node, "fail") == 0
    assert not outcome.done() and pid_alive(pid)
    node.cancel()
    assert outcome.result(timeout=20) == ContainerdOutcome(canceled=True)


def test_the_supervisor_restarts_a_stopped_containerd_and_keeps_the_reason(
    base: Path,
) -> None:
    spec = make_spec(base)
    states = StateRecorder()
    fast = {"backoff_initial": 0.1, "backoff_max": 1.0, "grace_period": 5.0}
    sup = Supervisor(
        RunnableSpec(target="actors.agent.root:run", args=spec_to_wire(RootSpec(containerd=spec))),
        policies=PolicySet(rules=[PolicyRule("*", fast)]),
        observers=[states],
    )
    sup.start()
    pids: list[int] = []
    try:
        states.wait_for(CD, "HEALTHY", timeout=30)
        first = containerd_pids(sup, 1)[0]
        pids.append(first)
        os.kill(first, signal.SIGSTOP)
        states.wait_for(CD, "DEAD", timeout=BOUND + SLACK)
        node = {n.dn: n for n in sup.snapshot()}[CD]
        assert node.last_error is not None and reason(spec.address) in node.last_error
        states.wait_for(CD, "HEALTHY", count=2, timeout=30)
        second = containerd_pids(sup, 2)[1]
        pids.append(second)
        assert second != first and not pid_alive(first) and pid_alive(second)
    finally:
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)
        assert sup.stop(timeout=60) is None
    assert [pid for pid in pids if pid_alive(pid)] == []


def containerd_pids(sup: Supervisor, count: int) -> list[int]:
    """containerd's pids from root.containerd's 'started containerd' lines, once `count`."""
    found: list[int] = []

    def started() -> bool:
        reader = sup.log_tree.read(CD, backlog=None, raw=False)
        found[:] = [
            int(e.message.rsplit("pid ", 1)[1].rstrip(")"))
            for e in reader.backlog  # type: ignore[union-attr]
            if e.message.startswith("started containerd ")
        ]
        return len(found) >= count

    wait_until(started, 20, f"containerd started {count} time(s)")
    return found
