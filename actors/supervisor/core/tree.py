"""The supervision tree: a pure state machine, `handle(event, now) -> actions`.

Theory of operation
-------------------

`Tree` is the Go supervisor's processor without goroutines, clocks or I/O. The
shell (the root actor) feeds it what happened (`events.py`) with the current
monotonic time, and carries out what it returns: start, cancel and kill
processes, arm timers, answer requests, write log lines. Time and randomness
are inputs; so one event sequence always gives one action sequence.

Lifecycle of a node (see `node.py` for the record):

* **Start.** `TreeStarted` creates `root`; a `RunGroupRequested` from a NEW
  node creates its children as one group. Each start is a `StateChanged(NEW)`
  and a `StartNode` with a fresh generation, plus the watch timers of its
  policy: *healthy* (deadline to signal HEALTHY) and *liveness* (no heartbeat
  for `3 × heartbeat_interval`; the first one also allows `SPAWN_ALLOWANCE`
  seconds for the process to spawn). Children requested by a node whose
  context is already cancelled are born CANCELED and never started (Go would
  start them with a dead context; they would return at once).
* **Signals** follow `SIGNAL_TRANSITIONS`. An illegal one is the runnable's
  programming error: the node *fails*. HEALTHY (or DONE) resets the backoff,
  or, with `min_healthy_uptime`, the *uptime* timer does if the node is still
  running by then.
* **Failing** a node (illegal signal, `NodeFaulted`, a missed healthy deadline
  or heartbeat, a cancel ignored past the grace period) logs FATAL, records
  the reason and kills the process at once (`KillNode`): a hung process is
  not asked nicely. Whatever exit it then reports, it is DEAD with that
  reason. A missed healthy deadline kills for the same reason: a node that
  never becomes healthy is assumed hung.
* **Exit** (Go's `processDied`): signalled DONE and returned OK is DONE;
  returned CANCELED with a cancelled context is CANCELED; anything else is
  DEAD (`rules.py`). A death is logged FATAL and cancels the node's
  context (so its descendants) and its group siblings' subtrees.
* **Cancel** marks a subtree cancelled, children first: a running process gets
  `CancelNode` and a *grace* timer, after which it is killed; a pending
  restart is disarmed and the node becomes CANCELED at once (TestCancelRestart).
* **Restart** (`restart.py`): after every event the GC restarts the largest
  subtrees that have exited and want it; a DEAD node waits out its backoff
  (a *restart* timer; it stays DEAD meanwhile), others start at once.
* **Restart intensity**: a death beyond `max_restarts` in `restart_window`
  does not restart the node but fails its parent: the parent is cancelled
  gracefully and, when it has exited, is DEAD with a "restart intensity
  reached" reason and so handled by its own policy. Past the root there is
  no parent: the tree emits `TreeFailed` and shuts down.
* **Shutdown** cancels everything (no more restarts) in reverse tree order:
  every context is cancelled at once, but a running node is *told* (CancelNode
  and its grace timer) only when no process below it runs any more, so children
  stop before their parents (the pump and preseed before containerd). It emits
  `ShutdownComplete` once no process is left; later events are ignored.

Errors: an event that cannot happen (an exit of a node with no process, a
second `TreeStarted`, time running backwards) raises a `SupervisionError` and
leaves the tree unchanged: every handler validates before it mutates. Events
of an earlier incarnation (a stale generation) are ignored.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from functools import partial
from typing import Never, assert_never

from actors.supervisor.core.backoff import Backoff
from actors.supervisor.core.errors import IllegalEvent, SupervisionError, UnknownNode
from actors.supervisor.core.events import (
    Action,
    CancelNode,
    CancelTimer,
    Event,
    HeartbeatReceived,
    KillNode,
    LogNode,
    NodeFaulted,
    ProcessExited,
    ProcessSpawned,
    ReplyRunGroup,
    ReplySubLogger,
    RestartRequested,
    RunGroupRequested,
    RunnableSpec,
    SetTimer,
    ShutdownComplete,
    ShutdownRequested,
    SignalReceived,
    StartNode,
    StateChanged,
    SubLoggerRequested,
    TimerFired,
    TimerKey,
    TimerPurpose,
    TreeFailed,
    TreeStarted,
)
from actors.supervisor.core.names import ROOT_DN
from actors.supervisor.core.node import Node, NodeStatus, Phase
from actors.supervisor.core.policy import PolicySet
from actors.supervisor.core.restart import (
    intensity_reached,
    intensity_reason,
    plan_restarts,
    recent_restarts,
)
from actors.supervisor.core.rules import exit_outcome, run_group_error, sub_logger_error
from actors.supervisor.core.states import EXITED_STATES, SIGNAL_TRANSITIONS, NodeState, Signal

__all__ = ["DEFAULT_POLICIES", "MISSED_HEARTBEATS", "SPAWN_ALLOWANCE", "NodeStatus", "Tree"]

#: Seconds a fresh process gets, on top of the liveness window, to spawn and
#: say hello before its first heartbeat is due.
SPAWN_ALLOWANCE = 10.0

#: A node is failed after this many heartbeat intervals without a heartbeat.
MISSED_HEARTBEATS = 3

#: The policies of a tree made without any: Go's behaviour, plus the defaults
#: of the extensions (see `RestartPolicy`).
DEFAULT_POLICIES = PolicySet()


class Tree:
    """The supervision core. Not thread-safe: one caller feeds it events in order.

    Args:
        policies: the restart policy of each DN.
        rng: the random source of the backoff jitter (seed it for reproducible
            runs); a fresh `random.Random()` if None.
    """

    def __init__(
        self, policies: PolicySet = DEFAULT_POLICIES, rng: random.Random | None = None
    ) -> None:
        self._policies = policies
        self._rng = rng if rng is not None else random.Random()
        self._root: Node | None = None
        self._index: dict[str, Node] = {}
        self._next_generation = 1
        self._now = float("-inf")
        self._out: list[Action] = []
        self._shutting_down = False
        self._finished = False
        #: During shutdown: DN -> reason of running nodes whose cancel waits until
        #: every process below them has exited (children stop before parents).
        self._deferred: dict[str, str] = {}
        self._failure: str | None = None
        # Something exited or was cancelled since the last GC run (Go: markDirty).
        self._dirty = False

    # ================================================================ API

    def handle(self, event: Event, now: float) -> list[Action]:
        """Feed one event; return the actions to carry out, in order.

        Args:
            event: what happened.
            now: the current monotonic time in seconds; never decreasing.

        Returns:
            The actions, in the order the shell must carry them out. Empty for
            a stale event and for any event after `ShutdownComplete`.

        Raises:
            SupervisionError: the event cannot happen now (the tree is unchanged).
        """
        if self._finished:
            return []
        handler = self._handler(event)
        if now < self._now:
            raise IllegalEvent(f"time went backwards: {now!r} after {self._now!r}")
        previous, self._now, self._out = self._now, now, []
        try:
            handler()
        except SupervisionError:
            self._now, self._out = previous, []
            raise
        if self._dirty and not self._shutting_down:
            self._collect_garbage()
        if self._deferred:
            self._release_deferred_cancels()
        if self._shutting_down and not self._finished and not self._any_running():
            self._finished = True
            self._out.append(ShutdownComplete())
        out, self._out = self._out, []
        return out

    def state(self, dn: str) -> NodeState:
        """The state of `dn`. Raises `UnknownNode` if there is no such node."""
        return self._lookup(dn).state

    def status(self, dn: str) -> NodeStatus:
        """The status of `dn`. Raises `UnknownNode` if there is no such node."""
        return self._lookup(dn).status()

    def snapshot(self) -> list[NodeStatus]:
        """Every node's status, in tree order (parents first, children in start order)."""
        return [] if self._root is None else [n.status() for n in self._root.walk()]

    def timers(self) -> dict[TimerKey, float]:
        """Every armed timer and its deadline, in tree order."""
        if self._root is None:
            return {}
        return {
            TimerKey(purpose=p, dn=n.dn, generation=n.generation): deadline
            for n in self._root.walk()
            for p, deadline in n.timers.items()
        }

    @property
    def shutting_down(self) -> bool:
        """Whether a shutdown (requested, or after `TreeFailed`) is under way or done."""
        return self._shutting_down

    @property
    def finished(self) -> bool:
        """Whether `ShutdownComplete` was emitted; the tree ignores events from now on."""
        return self._finished

    @property
    def failure(self) -> str | None:
        """The reason of `TreeFailed`, if a failure escalated past the root."""
        return self._failure

    # ================================================================ events

    def _handler(self, event: Event) -> Callable[[], None]:
        """The handler of `event`, bound to it; one case per `Event` type."""
        match event:
            case TreeStarted():
                return partial(self._on_tree_started, event)
            case ProcessSpawned():
                return partial(self._on_process_spawned, event)
            case RunGroupRequested():
                return partial(self._on_run_group, event)
            case SubLoggerRequested():
                return partial(self._on_sub_logger, event)
            case SignalReceived():
                return partial(self._on_signal, event)
            case HeartbeatReceived():
                return partial(self._on_heartbeat, event)
            case ProcessExited():
                return partial(self._on_process_exited, event)
            case NodeFaulted():
                return partial(self._on_node_faulted, event)
            case TimerFired():
                return partial(self._on_timer, event)
            case RestartRequested():
                return partial(self._on_restart_requested, event)
            case ShutdownRequested():
                return partial(self._on_shutdown_requested, event)
            case _:
                _unknown_event(event)

    def _on_tree_started(self, event: TreeStarted) -> None:
        if self._root is not None:
            raise IllegalEvent("the tree was already started")
        self._root = self._create(None, ROOT_DN, event.root)
        self._start(self._root, None)

    def _on_process_spawned(self, event: ProcessSpawned) -> None:
        node = self._resolve(event.dn, event.generation)
        if node is None:
            return
        if not node.running or node.pid is not None:
            raise IllegalEvent(
                f"unexpected hello from {event.dn!r} (generation {event.generation}):"
                f" it is {node.phase.value} with pid {node.pid!r}"
            )
        node.pid = event.pid
        self._feed_liveness(node)

    def _on_run_group(self, event: RunGroupRequested) -> None:
        node = self._running(event.dn, event.generation, "run-group request")
        if node is None:
            return
        error = run_group_error(node, event.children)
        if error is None:
            children = [self._create(node, name, spec) for name, spec in event.children]
            if children:
                node.groups.append(tuple(c.name for c in children))
            for child in children:
                if node.cancelled:
                    child.cancelled, child.cancel_reason = True, node.cancel_reason
                    self._change_state(child, None, NodeState.CANCELED)
                else:
                    self._start(child, None)
        self._out.append(
            ReplyRunGroup(
                dn=node.dn, generation=node.generation, request_id=event.request_id, error=error
            )
        )

    def _on_sub_logger(self, event: SubLoggerRequested) -> None:
        node = self._running(event.dn, event.generation, "sub-logger request")
        if node is None:
            return
        error = sub_logger_error(node, event.name)
        if error is None:
            node.reserved[event.name] = None
        self._out.append(
            ReplySubLogger(
                dn=node.dn,
                generation=node.generation,
                request_id=event.request_id,
                name=event.name,
                error=error,
            )
        )

    def _on_signal(self, event: SignalReceived) -> None:
        node = self._running(event.dn, event.generation, "signal")
        if node is None or node.fault is not None:
            return
        after = SIGNAL_TRANSITIONS.get((node.declared, event.signal))
        if after is None:
            self._fail(node, f"illegal signal {event.signal.name} in state {node.declared.short}")
        elif event.signal is Signal.HEALTHY:
            self._set_state(node, after)
            self._disarm(node, TimerPurpose.HEALTHY)
            if node.policy.min_healthy_uptime > 0:
                self._arm(node, TimerPurpose.UPTIME, self._now + node.policy.min_healthy_uptime)
            else:
                node.backoff = node.backoff.reset()
        else:
            node.signalled_done = True
            if node.policy.min_healthy_uptime == 0:
                node.backoff = node.backoff.reset()

    def _on_heartbeat(self, event: HeartbeatReceived) -> None:
        node = self._running(event.dn, event.generation, "heartbeat")
        if node is not None:
            self._feed_liveness(node)

    def _on_process_exited(self, event: ProcessExited) -> None:
        node = self._running(event.dn, event.generation, "exit")
        if node is None:
            return
        state: NodeState
        error: str | None
        if node.fault is not None:
            state, error = NodeState.DEAD, node.fault
        else:
            state, error = exit_outcome(node, event.kind, event.error)
        self._disarm_all(node)
        node.phase, node.pid = Phase.EXITED, None
        if state is NodeState.DEAD:
            assert error is not None
            self._die(node, error)
        else:
            self._set_state(node, state)

    def _on_node_faulted(self, event: NodeFaulted) -> None:
        node = self._running(event.dn, event.generation, "fault")
        if node is not None:
            self._fail(node, event.reason)

    def _on_timer(self, event: TimerFired) -> None:
        key = event.key
        node = self._index.get(key.dn)
        if node is None or node.generation != key.generation or key.purpose not in node.timers:
            return
        del node.timers[key.purpose]
        match key.purpose:
            case TimerPurpose.RESTART:
                self._on_restart_due(node)
            case TimerPurpose.GRACE:
                self._on_grace_over(node)
            case TimerPurpose.HEALTHY:
                self._on_healthy_deadline(node)
            case TimerPurpose.LIVENESS:
                self._on_liveness_lost(node)
            case TimerPurpose.UPTIME:
                self._on_uptime_reached(node)
            case _:
                assert_never(key.purpose)

    def _on_restart_requested(self, event: RestartRequested) -> None:
        node = self._lookup(event.dn)
        if self._shutting_down:
            raise IllegalEvent(f"cannot restart {event.dn!r}: the tree is shutting down")
        self._log(node, "INFO", f"restart of {node.dn!r} requested")
        self._cancel(node, "restart requested")

    def _on_shutdown_requested(self, event: ShutdownRequested) -> None:
        if not self._shutting_down:
            self._shutdown(event.reason)

    # ================================================================ timers

    def _on_restart_due(self, node: Node) -> None:
        self._start(node, node.state)

    def _on_grace_over(self, node: Node) -> None:
        grace = node.policy.grace_period
        reason = f"ignored cancel ({node.cancel_reason}) for {grace:g} s"
        if node.fault is None:
            node.fault = reason
        self._log(node, "WARNING", f"node {node.dn!r} {reason}; killing it")
        self._kill(node, reason)

    def _on_healthy_deadline(self, node: Node) -> None:
        deadline = node.policy.healthy_deadline
        self._fail(node, f"not healthy within {deadline:g} s of its start")

    def _on_liveness_lost(self, node: Node) -> None:
        interval = node.policy.heartbeat_interval
        assert interval is not None
        window = MISSED_HEARTBEATS * interval
        if node.pid is None:
            self._fail(node, f"did not say hello within {window + SPAWN_ALLOWANCE:g} s")
        else:
            self._fail(node, f"no heartbeat for {window:g} s")

    def _on_uptime_reached(self, node: Node) -> None:
        node.backoff = node.backoff.reset()

    # ================================================================ lifecycle

    def _create(self, parent: Node | None, name: str, spec: RunnableSpec) -> Node:
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
        node.phase = Phase.RUNNING
        self._change_state(node, old, NodeState.NEW)
        policy = node.policy
        self._out.append(
            StartNode(dn=node.dn, generation=node.generation, spec=node.spec, policy=policy)
        )
        if policy.healthy_deadline is not None:
            self._arm(node, TimerPurpose.HEALTHY, self._now + policy.healthy_deadline)
        if policy.heartbeat_interval is not None:
            window = MISSED_HEARTBEATS * policy.heartbeat_interval
            self._arm(node, TimerPurpose.LIVENESS, self._now + window + SPAWN_ALLOWANCE)

    def _die(self, node: Node, error: str) -> None:
        node.last_error = error
        self._set_state(node, NodeState.DEAD)
        self._log(node, "FATAL", f"node {node.dn!r} died: {error}")
        self._cancel(node, f"{node.dn!r} died")
        parent = node.parent
        if parent is not None:
            for name in parent.group_of(node.name):
                if name != node.name:
                    self._cancel(parent.children[name], f"group sibling {node.dn!r} died")

    def _fail(self, node: Node, reason: str) -> None:
        if node.fault is not None:
            return
        node.fault = reason
        self._log(node, "FATAL", f"node {node.dn!r} failed: {reason}")
        self._kill(node, reason)

    def _kill(self, node: Node, reason: str) -> None:
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
        self._shutting_down = True
        if self._root is not None:
            self._log(self._root, "INFO", f"shutting down: {reason}")
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
            node, "INFO", f"rescheduling supervised node {node.dn!r} with backoff {delay:.3f} s"
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
        self._log(node, "FATAL", f"{reason}; failing {target}")
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
        generation = self._next_generation
        self._next_generation += 1
        return generation

    def _lookup(self, dn: str) -> Node:
        node = self._index.get(dn)
        if node is None:
            raise UnknownNode(f"no node {dn!r}")
        return node

    def _resolve(self, dn: str, generation: int) -> Node | None:
        """The node an event is about; None if the event is stale (earlier incarnation)."""
        node = self._index.get(dn)
        if node is not None and node.generation == generation:
            return node
        if generation < self._next_generation:
            return None
        raise UnknownNode(f"no node {dn!r} of generation {generation!r}")

    def _running(self, dn: str, generation: int, what: str) -> Node | None:
        """Like `_resolve`, and the node must have a process to send `what`."""
        node = self._resolve(dn, generation)
        if node is not None and not node.running:
            raise IllegalEvent(
                f"{what} from {dn!r} (generation {generation}), which has no process"
            )
        return node

    def _any_running(self) -> bool:
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
        interval = node.policy.heartbeat_interval
        if interval is not None and TimerPurpose.LIVENESS in node.timers:
            self._arm(node, TimerPurpose.LIVENESS, self._now + MISSED_HEARTBEATS * interval)

    def _log(self, node: Node, severity: str, message: str) -> None:
        self._out.append(LogNode(dn=node.dn, severity=severity, message=message))


def _unknown_event(event: Never) -> Never:
    """Refuse an event of no `Event` type.

    Typed `Never` like `typing.assert_never`, so mypy proves `Tree._handler`
    has a case for every `Event`; at run time it raises the core's own error.
    """
    raise IllegalEvent(f"unknown event {event!r}")
