"""A real `Supervisor` under test: fast policies, its state changes, the kit's group root.

Go's supervisor ships a `TestHarness` with the library; this is ours, for system tests
with real processes (`tests/runtime`). `Harness.start` runs a `Supervisor` whose every
node has `FAST` policies (short backoff and grace, quick heartbeats) under the test's
own rules, recording its state changes in a `StateRecorder`, its hosts spawned fresh
("exec") or forked from a zygote that preloads the kit ("zygote"); `group_spec` builds a root
that starts the kit's runnables as one group and reports to a `Probe`. The test
framework's fixtures (setting up the probe, stopping the tree and checking that no
process is left) stay with the tests.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from actors.supervisor.core.events import RunnableSpec
from actors.supervisor.core.policy import PolicyRule, PolicySet
from actors.supervisor.runtime.actor import Supervisor
from actors.supervisor.runtime.zygote import Zygote
from actors.supervisor.testing.kit import Probe, StateRecorder

__all__ = ["FAST", "KIT", "Harness", "group_spec"]

#: The target prefix of the kit's runnables: `KIT + "becomes_healthy"`.
KIT = "actors.supervisor.testing.kit:"

#: Fast policies for tests: short backoff and grace (seconds), quick heartbeats.
FAST: Mapping[str, float] = {
    "backoff_initial": 0.05,
    "backoff_max": 1.0,
    "grace_period": 2.0,
    "heartbeat_interval": 0.2,
}


class Harness:
    """A `Supervisor` started with `FAST` policies, and the recorder of its state changes."""

    def __init__(self, probe: Probe, spawn: str = "exec", preload: Sequence[str] = ()) -> None:
        #: The probe the test's runnables report to.
        self.probe = probe
        #: How hosts start: "exec" (fresh interpreters) or "zygote" (forked).
        self.spawn = spawn
        #: What the zygote loads after the kit.
        self.preload = tuple(preload)
        #: The zygote the hosts are forked from, once `start` ran with "zygote".
        self.zygote: Zygote | None = None
        #: The supervisor, once `start` ran.
        self.sup: Supervisor | None = None
        #: Every state change of the tree.
        self.states = StateRecorder()

    def start(
        self,
        root: RunnableSpec,
        *,
        rules: Mapping[str, Mapping[str, Any]] | None = None,
        base: Mapping[str, Any] | None = None,
    ) -> Supervisor:
        """Starts a supervisor of `root`.

        Args:
            root: the root runnable.
            rules: policy overrides by DN pattern, applied after the defaults.
            base: overrides of `FAST` for every node (pattern `*`).
        """
        overrides = dict(FAST, **(base or {}))
        policy_rules = [PolicyRule("*", overrides)]
        for pattern, o in (rules or {}).items():
            policy_rules.append(PolicyRule(pattern, o))
        if self.spawn == "zygote":
            self.zygote = Zygote([KIT.rstrip(":"), *self.preload])
            self.zygote.start()
        self.sup = Supervisor(
            root,
            policies=PolicySet(rules=policy_rules),
            observers=[self.states],
            zygote=self.zygote,
        )
        self.sup.start()
        return self.sup

    def stop(self, timeout: float = 30.0) -> None:
        """Stops the supervisor (if started), then the zygote (if any)."""
        if self.sup is not None:
            self.sup.stop(timeout=timeout)
        if self.zygote is not None:
            self.zygote.close()

    def state_map(self) -> dict[str, str]:
        """Every node's DN and its state's short name, as the tree reports them now."""
        assert self.sup is not None
        return {n.dn: n.state.short for n in self.sup.snapshot()}


def group_spec(
    probe: Probe, children: Mapping[str, tuple[str, Mapping[str, Any]]], done: bool = True
) -> RunnableSpec:
    """A root that starts `children` as one group, then HEALTHY (and DONE).

    Args:
        probe: where the root and its children report.
        children: name → (target, arguments); a target without `:` names a runnable of
            the kit. Each child gets `events` (the probe's socket) in its arguments.
        done: whether the root signals DONE after HEALTHY.
    """
    return RunnableSpec(
        target=KIT + "group",
        args={
            "events": probe.events_path,
            "children": {
                n: [KIT + t if ":" not in t else t, dict(a, events=probe.events_path)]
                for n, (t, a) in children.items()
            },
            "done": done,
        },
    )
