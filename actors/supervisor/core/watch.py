"""The watch timers: by when a node must show it is alive, and why it fails when it does not.

Three of a node's timers (`TimerPurpose`) watch it, on top of Go's supervisor,
which trusts a runnable to return:

* *healthy* — armed at start with the policy's `healthy_deadline`: a node still
  NEW by then is taken as hung.
* *liveness* — armed at start for `MISSED_HEARTBEATS` heartbeat intervals plus
  `SPAWN_ALLOWANCE` (the process must spawn and say hello first), then re-armed
  for `MISSED_HEARTBEATS` intervals by the hello and by every heartbeat: a
  process from which nothing arrives for that long is stopped or deadlocked —
  unless the timer itself fired more than an interval late (`judged_late`): then
  the supervisor was the one stopped, and the node gets a fresh window. The
  runtime reads the node's link before it hands this core a liveness firing
  (`runtime.actor`), so heartbeats sent in time are never judged missing because
  the root had not yet read them, however little late the timer was.
* *grace* — armed when a running node is told to cancel: a process still there
  when its `grace_period` is over ignored the cancel.

This module says when each is due and what a missed one means; the tree arms
them (`operations.py`) and, when one fires, fails or kills the node with the
reason given here (`tree.py`).
It is pure and reads no clock: `now` is passed in.
"""

from __future__ import annotations

from actors.supervisor.core.events import TimerPurpose
from actors.supervisor.core.node import Node
from actors.supervisor.core.policy import RestartPolicy

__all__ = [
    "MISSED_HEARTBEATS",
    "SPAWN_ALLOWANCE",
    "grace_over_reason",
    "healthy_missed_reason",
    "judged_late",
    "liveness_deadline",
    "liveness_lost_reason",
    "start_deadlines",
]

#: Seconds a fresh process gets, on top of the liveness window, to spawn and
#: say hello before its first heartbeat is due.
SPAWN_ALLOWANCE = 10.0

#: A node is failed after this many heartbeat intervals without a heartbeat.
MISSED_HEARTBEATS = 3


def start_deadlines(policy: RestartPolicy, now: float) -> list[tuple[TimerPurpose, float]]:
    """The watch timers a start arms, in arming order (healthy, then liveness).

    Args:
        policy: the node's policy; a watch it disables is not armed.
        now: the time of the start, in seconds.

    Returns:
        Each timer's purpose and its deadline in seconds.
    """
    deadlines: list[tuple[TimerPurpose, float]] = []
    if policy.healthy_deadline is not None:
        deadlines.append((TimerPurpose.HEALTHY, now + policy.healthy_deadline))
    if policy.heartbeat_interval is not None:
        window = MISSED_HEARTBEATS * policy.heartbeat_interval
        deadlines.append((TimerPurpose.LIVENESS, now + window + SPAWN_ALLOWANCE))
    return deadlines


def liveness_deadline(policy: RestartPolicy, now: float) -> float | None:
    """The liveness deadline after a hello or heartbeat at `now`; None if not watched."""
    interval = policy.heartbeat_interval
    return None if interval is None else now + MISSED_HEARTBEATS * interval


def judged_late(policy: RestartPolicy, deadline: float, now: float) -> str | None:
    """Whether a liveness timer due at `deadline` fired so late that the supervisor, not
    the node, was stopped; then the words for the log, else None.

    A timer that fires more than one heartbeat interval after its deadline means the
    supervisor itself did not run (it was stopped, its VM paused, its CPU starved):
    the node's heartbeats may be sitting unread in its link, so the node gets a fresh
    window instead of a verdict.
    """
    interval = policy.heartbeat_interval
    if interval is None or now - deadline <= interval:
        return None
    return (
        f"the supervisor itself was {now - deadline:.1f} s late (stopped or starved); "
        "judging liveness again after a fresh window"
    )


def healthy_missed_reason(node: Node) -> str:
    """Why `node` fails when its healthy timer fires: it never signalled HEALTHY."""
    return f"not healthy within {node.policy.healthy_deadline:g} s of its start"


def liveness_lost_reason(node: Node) -> str:
    """Why `node` fails when its liveness timer fires: no hello, or no heartbeat."""
    interval = node.policy.heartbeat_interval
    assert interval is not None
    window = MISSED_HEARTBEATS * interval
    if node.pid is None:
        return f"did not say hello within {window + SPAWN_ALLOWANCE:g} s"
    return f"no heartbeat for {window:g} s"


def grace_over_reason(node: Node) -> str:
    """Why `node` is killed when its grace timer fires: it outlived its cancel."""
    return f"ignored cancel ({node.cancel_reason}) for {node.policy.grace_period:g} s"
