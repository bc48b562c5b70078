"""The supervision tree: a pure state machine, `handle(event, now) -> actions`.

Theory of operation
-------------------

`Tree` is the Go supervisor's processor without goroutines, clocks or I/O. The
shell (the root actor) feeds it what happened (`events.py`) with the current
monotonic time, and carries out what it returns: start, cancel and kill
processes, arm timers, answer requests, write log lines. Time and randomness
are inputs; so one event sequence always gives one action sequence.

Lifecycle of a node (see `node.py` for the record, `operations.py` for the
operations on it, `watch.py` for its watch timers):

* **Start.** `TreeStarted` creates `root`; a `RunGroupRequested` from a NEW
  node creates its children as one group. Each start is a `StateChanged(NEW)`
  and a `StartNode` with a fresh generation, plus the watch timers of its
  policy: *healthy* (deadline to signal HEALTHY) and *liveness* (no heartbeat
  for `3 × heartbeat_interval`; the first one also allows `SPAWN_ALLOWANCE`
  seconds for the process to spawn). Children requested by a node whose
  context is already cancelled are born CANCELED and never started (Go would
  start them with a dead context; they would return at once).
* **Policies** are replaced live by `PoliciesReplaced` (the agent's SIGHUP): every
  node whose policy changes takes the new one and starts its backoff over; armed
  timers keep their deadlines. No action is emitted.
* **Signals** follow `SIGNAL_TRANSITIONS`. An illegal one is the runnable's
  programming error: the node *fails*. HEALTHY (or DONE) resets the backoff,
  or, with `min_healthy_uptime`, the *uptime* timer does if the node is still
  running by then.
* **Facts** (`FactReported`) are what a runnable reports about the world it
  watches, as data (the preseed: is the sandbox image present). The tree keeps
  the newest value per DN and name, shows it in `NodeStatus.facts`, and emits
  `FactChanged` when it changes. A DN's facts outlive its restarts: the new
  incarnation reports them again.
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
    Event,
    FactChanged,
    FactReported,
    HeartbeatReceived,
    NodeFaulted,
    PoliciesReplaced,
    ProcessExited,
    ProcessSpawned,
    ReplyRunGroup,
    ReplySubLogger,
    RestartRequested,
    RunGroupRequested,
    ShutdownComplete,
    ShutdownRequested,
    SignalReceived,
    SubLoggerRequested,
    TimerFired,
    TimerKey,
    TimerPurpose,
    TreeStarted,
)
from actors.supervisor.core.names import ROOT_DN
from actors.supervisor.core.node import Node, NodeStatus, Phase
from actors.supervisor.core.operations import TreeOperations
from actors.supervisor.core.policy import PolicySet
from actors.supervisor.core.rules import exit_outcome, run_group_error, sub_logger_error
from actors.supervisor.core.severity import Severity
from actors.supervisor.core.states import SIGNAL_TRANSITIONS, NodeState, Signal
from actors.supervisor.core.watch import (
    MISSED_HEARTBEATS,
    SPAWN_ALLOWANCE,
    grace_over_reason,
    healthy_missed_reason,
    judged_late,
    liveness_deadline,
    liveness_lost_reason,
)

__all__ = ["DEFAULT_POLICIES", "MISSED_HEARTBEATS", "SPAWN_ALLOWANCE", "NodeStatus", "Tree"]

#: The policies of a tree made without any: Go's behaviour, plus the defaults
#: of the extensions (see `RestartPolicy`).
DEFAULT_POLICIES = PolicySet()


class Tree(TreeOperations):
    """The supervision core. Not thread-safe: one caller feeds it events in order.

    `Tree` is what each event means; the operations it calls, and the state
    they change, are `TreeOperations` (`operations.py`).

    Args:
        policies: the restart policy of each DN.
        rng: the random source of the backoff jitter (seed it for reproducible
            runs); a fresh `random.Random()` if None.
    """

    def __init__(
        self, policies: PolicySet = DEFAULT_POLICIES, rng: random.Random | None = None
    ) -> None:
        super().__init__(policies, rng if rng is not None else random.Random())

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
        return self._lookup(dn).status(self._facts.get(dn))

    def snapshot(self) -> list[NodeStatus]:
        """Every node's status, in tree order (parents first, children in start order)."""
        if self._root is None:
            return []
        return [n.status(self._facts.get(n.dn)) for n in self._root.walk()]

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
            case PoliciesReplaced():
                return partial(self._on_policies_replaced, event)
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
            case FactReported():
                return partial(self._on_fact, event)
            case _:
                _unknown_event(event)

    def _on_tree_started(self, event: TreeStarted) -> None:
        if self._root is not None:
            raise IllegalEvent("the tree was already started")
        self._root = self._create(None, ROOT_DN, event.root)
        self._start(self._root, None)

    def _on_policies_replaced(self, event: PoliciesReplaced) -> None:
        self._policies = event.policies
        for node in () if self._root is None else self._root.walk():
            policy = event.policies.for_dn(node.dn)
            if policy != node.policy:
                node.policy = policy
                node.backoff = Backoff.from_policy(policy)

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

    def _on_fact(self, event: FactReported) -> None:
        if self._running(event.dn, event.generation, "fact") is None:
            return
        facts = self._facts.setdefault(event.dn, {})
        old = facts.get(event.key)
        if type(old) is type(event.value) and old == event.value:
            return  # `True == 1`: a change of type is a change
        if event.value is None:
            del facts[event.key]
        else:
            facts[event.key] = event.value
        self._out.append(FactChanged(dn=event.dn, key=event.key, value=event.value))

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
        if self._now < node.timers[key.purpose]:
            # Fired for an earlier deadline, then re-armed (a heartbeat raced the
            # firing through the mailbox): stale, the timer stays armed.
            return
        deadline = node.timers.pop(key.purpose)
        match key.purpose:
            case TimerPurpose.RESTART:
                self._on_restart_due(node)
            case TimerPurpose.GRACE:
                self._on_grace_over(node)
            case TimerPurpose.HEALTHY:
                self._on_healthy_deadline(node)
            case TimerPurpose.LIVENESS:
                self._on_liveness_lost(node, deadline)
            case TimerPurpose.UPTIME:
                self._on_uptime_reached(node)
            case _:
                assert_never(key.purpose)

    def _on_restart_requested(self, event: RestartRequested) -> None:
        node = self._lookup(event.dn)
        if self._shutting_down:
            raise IllegalEvent(f"cannot restart {event.dn!r}: the tree is shutting down")
        self._log(node, Severity.INFO, f"restart of {node.dn!r} requested")
        self._cancel(node, "restart requested")

    def _on_shutdown_requested(self, event: ShutdownRequested) -> None:
        if not self._shutting_down:
            self._shutdown(event.reason)

    # ================================================================ timers

    def _on_restart_due(self, node: Node) -> None:
        self._start(node, node.state)

    def _on_grace_over(self, node: Node) -> None:
        reason = grace_over_reason(node)
        if node.fault is None:
            node.fault = reason
        self._log(node, Severity.WARNING, f"node {node.dn!r} {reason}; killing it")
        self._kill(node, reason)

    def _on_healthy_deadline(self, node: Node) -> None:
        self._fail(node, healthy_missed_reason(node))

    def _on_liveness_lost(self, node: Node, deadline: float) -> None:
        late = judged_late(node.policy, deadline, self._now)
        if late is not None:
            # Frozen ourselves (SIGSTOP, a VM pause, starvation): the heartbeats may be
            # waiting in the links. Judge nobody until a fresh window has passed.
            self._log(node, Severity.WARNING, late)
            fresh = liveness_deadline(node.policy, self._now)
            assert fresh is not None
            self._arm(node, TimerPurpose.LIVENESS, fresh)
            return
        self._fail(node, liveness_lost_reason(node))

    def _on_uptime_reached(self, node: Node) -> None:
        node.backoff = node.backoff.reset()

    # ================================================================ lookups

    def _lookup(self, dn: str) -> Node:
        """The node `dn`, whatever its generation; `UnknownNode` if there is none."""
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


def _unknown_event(event: Never) -> Never:
    """Refuse an event of no `Event` type.

    Typed `Never` like `typing.assert_never`, so mypy proves `Tree._handler`
    has a case for every `Event`; at run time it raises the core's own error.
    """
    raise IllegalEvent(f"unknown event {event!r}")
