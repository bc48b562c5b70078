"""Events into the supervision core and actions out of it.

The core (`tree.py`) is driven as `actions = tree.handle(event, now)`. Events
are past-tense facts the shell observed; actions are imperatives the shell
carries out. Both are frozen dataclasses and plain data, so a core test can
compare whole lists of them. Output order is deterministic.

The shell's contract:

* It feeds every event with the current monotonic time `now` (seconds).
* For `StartNode` it spawns a fresh process for the node and, once the
  process exists, feeds `ProcessSpawned`; when the process is gone (exit
  message received *and* the process reaped, or reaped without a message) it
  feeds exactly one `ProcessExited` for that start.
* `SetTimer(key, deadline)` replaces any timer with the same key; when the
  deadline passes the shell feeds `TimerFired(key)` once. `CancelTimer(key)`
  removes it (a `TimerFired` for a cancelled key may still race in; the core
  ignores stale timers by their `generation`).
* Node identities: every start of a node gets a new `generation` number from
  the core; events about a process carry it, so a late event about an
  earlier incarnation of the same DN is recognised and ignored.
* `StartNode` always comes right after a `StateChanged(..., new=NEW)` for the
  same node. `CancelNode` may come before the process said hello: deliver it
  once it can be. `CancelNode` or `KillNode` for a process that is already
  gone is a no-op (the process group was reaped).
* After `KillNode`, report the exit as usual, whatever it looks like: the core
  already knows why the node failed and records that reason.
* A node that died and waits out its backoff stays DEAD (its `NodeStatus`
  has `restart_at`); it turns NEW with the `StartNode` of its restart.
* `RestartRequested` for an unknown DN raises `UnknownNode`, and during a
  shutdown `IllegalEvent`: report these to the operator. Any other raise is a
  shell bug (an event that cannot happen); the tree is left unchanged.
* Cancellations are emitted children first, in tree order.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TypeAlias

from actors.supervisor.core.policy import PolicySet, RestartPolicy
from actors.supervisor.core.severity import Severity
from actors.supervisor.core.states import ExitKind, NodeState, Signal

__all__ = [
    "RunnableSpec",
    "ExitKind",
    # events
    "Event",
    "TreeStarted",
    "PoliciesReplaced",
    "ProcessSpawned",
    "RunGroupRequested",
    "SubLoggerRequested",
    "SignalReceived",
    "HeartbeatReceived",
    "ProcessExited",
    "NodeFaulted",
    "TimerFired",
    "RestartRequested",
    "ShutdownRequested",
    "FactReported",
    "FactValue",
    # actions
    "Action",
    "StartNode",
    "CancelNode",
    "KillNode",
    "SetTimer",
    "CancelTimer",
    "ReplyRunGroup",
    "ReplySubLogger",
    "LogNode",
    "StateChanged",
    "FactChanged",
    "TreeFailed",
    "ShutdownComplete",
    "TimerKey",
    "TimerPurpose",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class RunnableSpec:
    """What to run for a node, as plain data that can cross a process boundary.

    `target` is `"package.module:function"`; the function is called as
    `function(ctx, **args)` in a fresh process. `args` must be msgpack-serialisable.
    """

    target: str
    args: Mapping[str, Any] = field(default_factory=dict)


# ---------------------------------------------------------------- events


@dataclass(frozen=True, slots=True, kw_only=True)
class TreeStarted:
    """The shell started: start the root runnable."""

    root: RunnableSpec


@dataclass(frozen=True, slots=True, kw_only=True)
class PoliciesReplaced:
    """The operator reloaded the config: from now on each DN's policy is `policies.for_dn`.

    A node whose policy changes takes it at once, and its backoff starts over from the
    new initial delay; timers already armed keep the deadlines they were set with.
    """

    policies: PolicySet


@dataclass(frozen=True, slots=True, kw_only=True)
class ProcessSpawned:
    """The process for `dn` (start `generation`) exists and said hello."""

    dn: str
    generation: int
    pid: int


@dataclass(frozen=True, slots=True, kw_only=True)
class RunGroupRequested:
    """The runnable of `dn` asks to start `children` (name -> spec) as one group.

    A single `run(ctx, name, r)` is a group of one. Group members are siblings
    that die together: when one dies, the others are cancelled.
    """

    dn: str
    generation: int
    request_id: int
    children: tuple[tuple[str, RunnableSpec], ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class SubLoggerRequested:
    """The runnable of `dn` reserves the sub-logger `name` (DN `dn.name`)."""

    dn: str
    generation: int
    request_id: int
    name: str


@dataclass(frozen=True, slots=True, kw_only=True)
class SignalReceived:
    """The runnable of `dn` signalled HEALTHY or DONE."""

    dn: str
    generation: int
    signal: Signal


@dataclass(frozen=True, slots=True, kw_only=True)
class HeartbeatReceived:
    """The process of `dn` is alive (anything it sends counts as a heartbeat)."""

    dn: str
    generation: int


@dataclass(frozen=True, slots=True, kw_only=True)
class ProcessExited:
    """The process of `dn` is gone; `error` says why for ERROR/CRASHED."""

    dn: str
    generation: int
    kind: ExitKind
    error: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeFaulted:
    """The shell caught `dn` misbehaving (e.g. a protocol error): fail it now."""

    dn: str
    generation: int
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class TimerFired:
    """A timer set with `SetTimer(key)` reached its deadline."""

    key: TimerKey


@dataclass(frozen=True, slots=True, kw_only=True)
class RestartRequested:
    """An operator asks to restart `dn` (and so its subtree) now."""

    dn: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ShutdownRequested:
    """Stop the whole tree: cancel every node, then report `ShutdownComplete`."""

    reason: str = "shutdown requested"


#: A fact's value: what JSON holds (`None` withdraws the fact). Checked on the wire.
FactValue: TypeAlias = str | int | float | bool | list["FactValue"] | dict[str, "FactValue"] | None


@dataclass(frozen=True, slots=True, kw_only=True)
class FactReported:
    """The runnable of `dn` reports a fact about what it watches, as data.

    `status` shows a node's facts (the preseed's `sandbox_image`); the newest value
    of a key wins, and it outlives the node's restarts until it is reported again.
    """

    dn: str
    generation: int
    #: The fact's name, e.g. `sandbox_image`.
    key: str
    #: Its value; None withdraws it.
    value: FactValue


Event = (
    TreeStarted
    | PoliciesReplaced
    | ProcessSpawned
    | RunGroupRequested
    | SubLoggerRequested
    | SignalReceived
    | HeartbeatReceived
    | ProcessExited
    | NodeFaulted
    | TimerFired
    | RestartRequested
    | ShutdownRequested
    | FactReported
)


# ---------------------------------------------------------------- actions


class TimerPurpose(enum.StrEnum):
    """Why the core armed a timer; one handler in `Tree` per member.

    A `StrEnum`, so a purpose compares (and hashes) equal to its lowercase
    string: `TimerPurpose.GRACE == "grace"`.
    """

    #: The backoff before a dead node's restart.
    RESTART = "restart"
    #: From a cancel message to SIGKILL (the policy's grace period).
    GRACE = "grace"
    #: The deadline to signal HEALTHY after a start.
    HEALTHY = "healthy"
    #: The heartbeat watch: no heartbeat for this long fails the node.
    LIVENESS = "liveness"
    #: The minimum healthy uptime before the backoff resets.
    UPTIME = "uptime"


@dataclass(frozen=True, slots=True, kw_only=True)
class TimerKey:
    """Names one timer: its purpose, the node and the node's generation."""

    #: What the timer is for.
    purpose: TimerPurpose
    #: The node the timer is about.
    dn: str
    #: The node's incarnation (for RESTART: the one about to be started).
    generation: int


@dataclass(frozen=True, slots=True, kw_only=True)
class StartNode:
    """Spawn a fresh process running `spec` as node `dn`."""

    dn: str
    generation: int
    spec: RunnableSpec
    policy: RestartPolicy


@dataclass(frozen=True, slots=True, kw_only=True)
class CancelNode:
    """Send the process of `dn` a cancel message carrying `reason`."""

    dn: str
    generation: int
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class KillNode:
    """SIGKILL the whole process group of `dn` now."""

    dn: str
    generation: int
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class SetTimer:
    """Arm (or re-arm) the timer `key` to fire at monotonic time `deadline`."""

    key: TimerKey
    deadline: float


@dataclass(frozen=True, slots=True, kw_only=True)
class CancelTimer:
    """Disarm the timer `key`."""

    key: TimerKey


@dataclass(frozen=True, slots=True, kw_only=True)
class ReplyRunGroup:
    """Answer a `RunGroupRequested`: `error` is None on success."""

    dn: str
    generation: int
    request_id: int
    error: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class ReplySubLogger:
    """Answer a `SubLoggerRequested`: `error` is None on success."""

    dn: str
    generation: int
    request_id: int
    #: The sub-logger name asked for: on success, the node may log under `dn.name`.
    name: str
    error: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class LogNode:
    """Write a leveled line about `dn` into the log tree at DN `dn`."""

    dn: str
    #: INFO, WARNING or FATAL (what happened, why, and which DN).
    severity: Severity
    message: str


@dataclass(frozen=True, slots=True, kw_only=True)
class StateChanged:
    """`dn` moved from `old` to `new` (old is None for a node just created)."""

    dn: str
    old: NodeState | None
    new: NodeState


@dataclass(frozen=True, slots=True, kw_only=True)
class FactChanged:
    """A fact of `dn` changed (or appeared); `value` None: it was withdrawn."""

    dn: str
    #: The fact's name.
    key: str
    #: Its new value.
    value: FactValue


@dataclass(frozen=True, slots=True, kw_only=True)
class TreeFailed:
    """A failure escalated past the root: the agent must stop and exit non-zero."""

    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ShutdownComplete:
    """After `ShutdownRequested` (or `TreeFailed`), every runnable has exited."""


Action = (
    StartNode
    | CancelNode
    | KillNode
    | SetTimer
    | CancelTimer
    | ReplyRunGroup
    | ReplySubLogger
    | LogNode
    | StateChanged
    | FactChanged
    | TreeFailed
    | ShutdownComplete
)
