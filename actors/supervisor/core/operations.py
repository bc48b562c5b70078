"""What the tree does to its nodes: start, fail, kill, die, cancel, restart, shut down.

`TreeOperations` holds the supervision tree's state (the nodes by DN, the
generation counter, the shutdown bookkeeping, the time and the actions of the
event being handled) and the operations that change a node. `Tree` (`tree.py`)
adds the events: each handler checks its event, then calls these. Their rules
are the theory of operation in `tree.py`; the decisions they apply are pure
functions of their own modules: the restart GC and intensity (`restart.py`),
the watch timers' deadlines (`watch.py`), the backoff (`backoff.py`).

Every change the shell must hear of is made together with the action that
tells it: a state with its `StateChanged`, a timer with its `SetTimer` or
`CancelTimer`, a kill with its `KillNode`. The actions of one event collect in
order in `_out`; `Tree.handle` returns them, or drops them if the event is
refused (every handler validates before it calls an operation).

Not thread-safe, and pure: no I/O, no clock (`now` is given with each event),
randomness only from the injected `random.Random`.
"""

from __future__ import annotations

import random

from actors.supervisor.core.backoff import Backoff
from actors.supervisor.core.events import (
    Action,
    CancelNode,
    CancelTimer,
    FactValue,
    KillNode,
    LogNode,
    RunnableSpec,
    SetTimer,
    StartNode,
    StateChanged,
    TimerKey,
    TimerPurpose,
    TreeFailed,
)
from actors.supervisor.core.names import ROOT_DN
from actors.supervisor.core.node import Node, Phase
from actors.supervisor.core.policy import PolicySet
from actors.supervisor.core.restart import (
    intensity_reached,
    intensity_reason,
    plan_restarts,
    recent_restarts,
)
from actors.supervisor.core.severity import Severity
from actors.supervisor.core.states import EXITED_STATES, NodeState
from actors.supervisor.core.watch import liveness_deadline, start_deadlines

__all__ = ["TreeOperations"]


class TreeOperations:
    """The tree's state and the operations on its nodes; `Tree` feeds it events.

    Args:
        policies: the restart policy of each DN.
        rng: the random source of the backoff jitter.
    """

    def __init__(self, policies: PolicySet, rng: random.Random) -> None:
        #: The restart policy of each DN, read when a node is created.
        self._policies = policies
        #: The random source of the backoff jitter.
        self._rng = rng
        #: The root node; None until `TreeStarted`.
        self._root: Node | None = None
        #: Every node of the tree by DN (forgotten nodes are removed).
        self._index: dict[str, Node] = {}
        #: The generation the next incarnation gets; tree-wide, from 1.
        self._next_generation = 1
        #: The monotonic time of the event being handled (of the last one
        #: between events), in seconds.
        self._now = float("-inf")
        #: The actions of the event being handled, in order.
        self._out: list[Action] = []
        #: The facts runnables reported, by DN and name; a DN's outlive its nodes.
        self._facts: dict[str, dict[str, FactValue]] = {}
        #: Whether a shutdown (requested, or after `TreeFailed`) is under way.
        self._shutting_down = False
        #: Whether `ShutdownComplete` was emitted.
        self._finished = False
        #: During shutdown: DN -> reason of running nodes whose cancel waits until
        #: every process below them has exited (children stop before parents).
        self._deferred: dict[str, str] = {}
        #: The reason of `TreeFailed`, once a failure escalated past the root.
        self._failure: str | None = None
        #: Something exited or was cancelled since the last GC run (Go: markDirty).
        self._dirty = False

    # ================================================================ lifecycle

    def _create(self, parent: Node | None, name: str, spec: RunnableSpec) -> Node:
        """A NEW node `name` under `parent` (the root if None), indexed, not started."""
        dn = ROOT_DN if parent is None else parent.child_dn(name)
        policy = self._policies.for_dn(dn)
        node = Node(
            name=name,
            dn=dn,
            parent=parent,
            spec=spec,
            policy=policy,
            generation=self._new_generation(),
            state=NodeState.NEW,
            phase=Phase.EXITED,
            since=self._now,
            backoff=Backoff.from_policy(policy),
        )
        self._index[dn] = node
        if parent is not None:
            parent.children[name] = node
        return node

    def _start(self, node: Node, old: NodeState | None) -> None:
        """Start an incarnation of `node`: NEW, `StartNode`, and its watch timers."""
        node.phase = Phase.RUNNING
        self._change_state(node, old, NodeState.NEW)
        policy = node.policy
        self._out.append(
            StartNode(dn=node.dn, generation=node.generation, spec=node.spec, policy=policy)
        )
        for purpose, deadline in start_deadlines(policy, self._now):
            self._arm(node, purpose, deadline)

    def _die(self, node: Node, error: str) -> None:
        """`node` is DEAD of `error`: cancel its subtree and its group siblings' (Go)."""
        node.last_error = error
        self._set_state(node, NodeState.DEAD)
        self._log(node, Severity.FATAL, f"node {node.dn!r} died: {error}")
        self._cancel(node, f"{node.dn!r} died")
        parent = node.parent
        if parent is not None:
            for name in parent.group_of(node.name):
                if name != node.name:
                    self._cancel(parent.children[name], f"group sibling {node.dn!r} died")

    def _fail(self, node: Node, reason: str) -> None:
        """The core gives up on a running `node` for `reason`: log FATAL, kill it."""
        if node.fault is not None:
            return
        node.fault = reason
        self._log(node, Severity.FATAL, f"node {node.dn!r} failed: {reason}")
        self._kill(node, reason)

    def _kill(self, node: Node, reason: str) -> None:
        """Kill `node`'s process at once (no grace); its timers are disarmed."""
        node.killed = True
        self._disarm_all(node)
        self._out.append(KillNode(dn=node.dn, generation=node.generation, reason=reason))

    def _cancel(self, top: Node, reason: str, *, bottom_up: bool = False) -> None:
        """Cancel `top`'s context and so its whole subtree, children first.

        With `bottom_up` (shutdown), a running node is told only once nothing
        below it runs any more: containerd stops after the pump and the preseed
        that talk to it, not under them.
        """
        for node in top.walk_children_first():
            if node.cancelled:
                continue
            node.cancelled, node.cancel_reason = True, reason
            self._dirty = True
            if node.phase is Phase.RUNNING and not node.killed:
                if bottom_up and node.runs_below():
                    self._deferred[node.dn] = reason
                else:
                    self._send_cancel(node, reason)
            elif node.phase is Phase.PENDING:
                self._disarm(node, TimerPurpose.RESTART)
                node.phase = Phase.EXITED
                self._set_state(node, NodeState.CANCELED)

    def _send_cancel(self, node: Node, reason: str) -> None:
        """Tell `node`'s process to cancel, and arm the grace timer of its policy."""
        self._out.append(CancelNode(dn=node.dn, generation=node.generation, reason=reason))
        self._arm(node, TimerPurpose.GRACE, self._now + node.policy.grace_period)

    def _release_deferred_cancels(self) -> None:
        """Tell each deferred node its cancel once nothing below it runs."""
        for dn, reason in list(self._deferred.items()):
            node = self._index.get(dn)
            if node is None or not node.running or node.killed or not node.runs_below():
                del self._deferred[dn]
                if node is not None and node.running and not node.killed:
                    self._send_cancel(node, reason)

    def _shutdown(self, reason: str) -> None:
        """Stop restarting and cancel the whole tree, children before parents."""
        self._shutting_down = True
        if self._root is not None:
            self._log(self._root, Severity.INFO, f"shutting down: {reason}")
            self._cancel(self._root, reason, bottom_up=True)

    # ================================================================ restarts

    def _collect_garbage(self) -> None:
        """Run the restart GC until it finds nothing more to do (see `restart.py`)."""
        while self._dirty and self._root is not None and not self._shutting_down:
            self._dirty = False
            chosen = plan_restarts(self._root)
            if not chosen:
                return
            for node in chosen:
                if self._shutting_down:
                    return
                if node.exited and (node.parent is None or not node.parent.cancelled):
                    self._restart(node)

    def _restart(self, node: Node) -> None:
        """Restart an exited `node` the GC chose: at once, after its backoff, or escalate."""
        delay = 0.0
        if node.state is NodeState.DEAD:
            recent = recent_restarts(node.restart_history, self._now, node.policy.restart_window)
            if intensity_reached(recent, node.policy):
                self._escalate(node, len(recent))
                return
            node.restart_history = [*recent, self._now]
            delay, node.backoff = node.backoff.next(self._rng)
        for forgotten in node.reset(self._new_generation()):
            del self._index[forgotten.dn]
        node.restarts += 1
        self._log(
            node,
            Severity.INFO,
            f"rescheduling supervised node {node.dn!r} with backoff {delay:.3f} s",
        )
        if delay > 0:
            node.phase = Phase.PENDING
            self._arm(node, TimerPurpose.RESTART, self._now + delay)
        else:
            self._start(node, node.state)

    def _escalate(self, node: Node, count: int) -> None:
        """`node` died once too often: fail its parent, or the whole tree at the root."""
        reason = intensity_reason(node, count)
        parent = node.parent
        target = "the tree" if parent is None else repr(parent.dn)
        self._log(node, Severity.FATAL, f"{reason}; failing {target}")
        if parent is None:
            self._failure = reason
            self._out.append(TreeFailed(reason=reason))
            self._shutdown(reason)
        elif parent.running:
            if parent.fault is None:
                parent.fault = reason
            self._cancel(parent, reason)
        else:
            self._die(parent, reason)

    # ================================================================ helpers

    def _new_generation(self) -> int:
        """A fresh generation, never given before."""
        generation = self._next_generation
        self._next_generation += 1
        return generation

    def _any_running(self) -> bool:
        """Whether any node has a process (shutdown completes when none has)."""
        return any(n.running for n in self._index.values())

    def _set_state(self, node: Node, new: NodeState) -> None:
        self._change_state(node, node.state, new)

    def _change_state(self, node: Node, old: NodeState | None, new: NodeState) -> None:
        node.state, node.since = new, self._now
        self._dirty = self._dirty or new in EXITED_STATES
        self._out.append(StateChanged(dn=node.dn, old=old, new=new))

    def _arm(self, node: Node, purpose: TimerPurpose, deadline: float) -> None:
        node.timers[purpose] = deadline
        key = TimerKey(purpose=purpose, dn=node.dn, generation=node.generation)
        self._out.append(SetTimer(key=key, deadline=deadline))

    def _disarm(self, node: Node, purpose: TimerPurpose) -> None:
        if node.timers.pop(purpose, None) is not None:
            key = TimerKey(purpose=purpose, dn=node.dn, generation=node.generation)
            self._out.append(CancelTimer(key=key))

    def _disarm_all(self, node: Node) -> None:
        for purpose in list(node.timers):
            self._disarm(node, purpose)

    def _feed_liveness(self, node: Node) -> None:
        """Re-arm `node`'s liveness timer after its hello or a heartbeat, if it has one."""
        deadline = liveness_deadline(node.policy, self._now)
        if deadline is not None and TimerPurpose.LIVENESS in node.timers:
            self._arm(node, TimerPurpose.LIVENESS, deadline)

    def _log(self, node: Node, severity: Severity, message: str) -> None:
        self._out.append(LogNode(dn=node.dn, severity=severity, message=message))
