"""Helpers for system tests of the supervision runtime with real processes."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator

import pytest
from procs import pid_alive

from actors.supervisor.core.events import RunnableSpec
from actors.supervisor.core.policy import PolicyRule, PolicySet
from actors.supervisor.runtime.actor import Supervisor
from actors.supervisor.testing.kit import Probe, StateRecorder

TK = "actors.supervisor.testing.kit:"

#: Fast policies for tests: short backoff and grace, quick heartbeats.
FAST = {
    "backoff_initial": 0.05,
    "backoff_max": 1.0,
    "grace_period": 2.0,
    "heartbeat_interval": 0.2,
}


@pytest.fixture
def probe() -> Iterator[Probe]:
    d = tempfile.mkdtemp(prefix="nc-rt-", dir="/tmp")
    p = Probe(d)
    try:
        yield p
    finally:
        p.close()
        shutil.rmtree(d, ignore_errors=True)


class Harness:
    """A started Supervisor plus its recorder; stopped and checked at teardown."""

    def __init__(self, probe: Probe) -> None:
        self.probe = probe
        self.sup: Supervisor | None = None
        self.states = StateRecorder()

    def start(
        self, root: RunnableSpec, *, rules: dict[str, dict] | None = None, base: dict | None = None
    ) -> Supervisor:
        overrides = dict(FAST, **(base or {}))
        policy_rules = [PolicyRule("*", overrides)]
        for pattern, o in (rules or {}).items():
            policy_rules.append(PolicyRule(pattern, o))
        self.sup = Supervisor(root, policies=PolicySet(rules=policy_rules), observers=[self.states])
        self.sup.start()
        return self.sup

    def state_map(self) -> dict[str, str]:
        assert self.sup is not None
        return {n.dn: n.state.short for n in self.sup.snapshot()}


@pytest.fixture
def harness(probe: Probe) -> Iterator[Harness]:
    h = Harness(probe)
    try:
        yield h
    finally:
        if h.sup is not None:
            h.sup.stop(timeout=30)
            pids = {pid for _, _, _, pid in probe.events}
            leftover = [pid for pid in pids if pid_alive(pid)]
            assert leftover == [], f"processes left behind: {leftover}"


def group_spec(
    probe: Probe, children: dict[str, tuple[str, dict]], done: bool = True
) -> RunnableSpec:
    """A root that starts `children` as one group, then HEALTHY (and DONE)."""
    return RunnableSpec(
        target=TK + "group",
        args={
            "events": probe.events_path,
            "children": {
                n: [TK + t if ":" not in t else t, dict(a, events=probe.events_path)]
                for n, (t, a) in children.items()
            },
            "done": done,
        },
    )
