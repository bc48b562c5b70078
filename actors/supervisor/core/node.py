"""The node record of the supervision tree, and its read-only status.

Theory of operation
-------------------

A `Node` is the supervisor's memory of one runnable: where it sits (parent,
children in insertion order, the groups its children were started in, the
sub-logger names it reserved), what it runs (`spec`, `policy`), and what its
current incarnation is doing. An *incarnation* is one start of the runnable;
each gets a fresh tree-wide `generation`, and every event about a process
carries the generation it was started with, so late news about an earlier
incarnation is recognised and dropped.

Three things describe an incarnation and must not be confused:

* `state` — the Go `NodeState`, what metrics and status show.
* `phase` — whether a process exists: RUNNING from `StartNode` until its
  `ProcessExited`; PENDING while a restart waits out its backoff (no process;
  the state is still DEAD); EXITED when there is no process and none is due.
* `cancelled` — Go's `ctx.Err() != nil`. Cancellation is hierarchical: when a
  node is cancelled its whole subtree is, and children created under a
  cancelled node are born cancelled, so *cancelled implies every descendant
  is cancelled*. A reset gives the node a fresh, live context.

A node that returned is only forgotten when its parent is reset; until then it
keeps its last state, so the restart GC (`restart.py`) can see which subtrees
have entirely exited.

Nodes are mutable and private to the tree (`tree.py`, `operations.py`); the
outside world sees `NodeStatus`, a frozen copy.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

from actors.supervisor.core.backoff import Backoff
from actors.supervisor.core.events import FactValue, RunnableSpec, TimerPurpose
from actors.supervisor.core.names import child_dn
from actors.supervisor.core.policy import RestartPolicy
from actors.supervisor.core.states import EXITED_STATES, NodeState

__all__ = ["Node", "NodeStatus", "Phase"]


class Phase(enum.Enum):
    """Whether a node has a process."""

    #: `StartNode` was emitted; the process exists or is being spawned.
    RUNNING = "running"
    #: A restart is waiting for its backoff timer; there is no process.
    PENDING = "pending"
    #: The runnable returned and no restart is due (yet).
    EXITED = "exited"


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeStatus:
    """A read-only view of one node, as `Tree.snapshot()` returns it."""

    #: The node's distinguished name, e.g. `root.containerd`.
    dn: str
    #: The Go node state.
    state: NodeState
    #: The generation of the current (or pending) incarnation.
    generation: int
    #: The pid of the running process; None before it said hello and after it exited.
    pid: int | None
    #: How many times this node was restarted since it was created (its parent's
    #: restarts create it anew, from 0).
    restarts: int
    #: Why the node last died, or None if it never did.
    last_error: str | None
    #: The `now` (monotonic seconds) of the last state change.
    since: float
    #: When a pending restart is due (monotonic seconds), None if none is.
    restart_at: float | None = None
    #: The facts the node's runnable reported (`FactReported`), by name.
    facts: Mapping[str, FactValue] = field(default_factory=dict)


@dataclass(slots=True, eq=False, kw_only=True)
class Node:
    """One node of the tree. Mutable; owned by `Tree`."""

    #: The node's name within its parent (`root` for the root).
    name: str
    #: The node's distinguished name.
    dn: str
    #: The parent node, None for the root.
    parent: Node | None
    #: What to run, as data.
    spec: RunnableSpec
    #: The effective restart policy of this DN, set at creation (and by `PoliciesReplaced`).
    policy: RestartPolicy
    #: The generation of the current (or pending) incarnation.
    generation: int
    #: The Go node state.
    state: NodeState
    #: Whether a process exists (see `Phase`).
    phase: Phase
    #: The `now` of the last state change (seconds).
    since: float
    #: The backoff; survives the node's own resets, not its parent's.
    backoff: Backoff
    #: Children by name, in the order they were started.
    children: dict[str, Node] = field(default_factory=dict)
    #: The groups the children were started in, each in request order.
    groups: list[tuple[str, ...]] = field(default_factory=list)
    #: Reserved sub-logger names, in reservation order (values unused).
    reserved: dict[str, None] = field(default_factory=dict)
    #: The runnable signalled DONE (its state turns DONE only when it returns).
    signalled_done: bool = False
    #: Go's `ctx.Err() != nil` for the current incarnation.
    cancelled: bool = False
    #: Why the context was cancelled.
    cancel_reason: str | None = None
    #: If set, the incarnation has failed for this reason: whatever exit it
    #: then reports, it is DEAD with this error.
    fault: str | None = None
    #: KillNode was sent for the current incarnation.
    killed: bool = False
    #: The pid of the running process, once it said hello.
    pid: int | None = None
    #: Why the node last died.
    last_error: str | None = None
    #: How many times the node was reset and started again.
    restarts: int = 0
    #: The `now` of each restart after a death, for the restart intensity.
    restart_history: list[float] = field(default_factory=list)
    #: Armed timers of the current generation: purpose -> deadline (seconds).
    timers: dict[TimerPurpose, float] = field(default_factory=dict)

    # ------------------------------------------------------------ queries

    @property
    def declared(self) -> NodeState:
        """The state the runnable declared by its signals (for `SIGNAL_TRANSITIONS`)."""
        return NodeState.DONE if self.signalled_done else self.state

    @property
    def exited(self) -> bool:
        """Whether the runnable returned and no restart of it is pending."""
        return self.phase is Phase.EXITED and self.state in EXITED_STATES

    @property
    def running(self) -> bool:
        """Whether the node has a process (started and not yet exited)."""
        return self.phase is Phase.RUNNING

    def runs_below(self) -> bool:
        """Whether any descendant still has a process."""
        return any(n.running for c in self.children.values() for n in c.walk())

    def child_dn(self, name: str) -> str:
        """The DN a child called `name` has or would have."""
        return child_dn(self.dn, name)

    def group_of(self, name: str) -> tuple[str, ...]:
        """The group the child `name` was started in (Go's `groupSiblings`)."""
        for group in self.groups:
            if name in group:
                return group
        return ()

    def walk(self) -> Iterator[Node]:
        """This node and its descendants, parents first, children in order."""
        yield self
        for child in self.children.values():
            yield from child.walk()

    def walk_children_first(self) -> Iterator[Node]:
        """This node and its descendants, children before their parent."""
        for child in self.children.values():
            yield from child.walk_children_first()
        yield self

    def status(self, facts: Mapping[str, FactValue] | None = None) -> NodeStatus:
        """A frozen copy of what the outside world may know, with the DN's `facts`."""
        return NodeStatus(
            dn=self.dn,
            state=self.state,
            generation=self.generation,
            pid=self.pid,
            restarts=self.restarts,
            last_error=self.last_error,
            since=self.since,
            restart_at=self.timers.get(TimerPurpose.RESTART),
            facts=dict(facts or {}),
        )

    # ------------------------------------------------------------ mutation

    def reset(self, generation: int) -> list[Node]:
        """Prepare a new incarnation (Go's `reset`): forget children, fresh context.

        The state is left alone: it changes to NEW when the node is started.

        Args:
            generation: the new incarnation's generation.

        Returns:
            The forgotten descendants, parents first, so the tree can unindex them.
        """
        forgotten = [n for c in self.children.values() for n in c.walk()]
        self.generation = generation
        self.children = {}
        self.groups = []
        self.reserved = {}
        self.signalled_done = False
        self.cancelled = False
        self.cancel_reason = None
        self.fault = None
        self.killed = False
        self.pid = None
        self.timers = {}
        return forgotten
