"""The restart "GC": which subtrees to restart now, and how often is too often.

Theory of operation
-------------------

Go's supervisor calls this its GC: not a garbage collector but "a
Necromancer" that finds runnables to bring back. A node *wants* a restart when
its context was cancelled and its runnable has returned: it died (a death
cancels the node's own context), it was cancelled (a group sibling or an
ancestor died, an operator asked for a restart), or it was DONE and then
cancelled (TestCancelDoneSibling: a DONE node whose sibling died is restarted
with the group). A DONE node whose context is still live is *not* restarted.

A subtree can only be restarted once *every* runnable in it has returned:
resetting a node forgets its children, and a child that is still running
(for instance one that signalled DONE and has not yet returned, TestDoneDelay)
must not be forgotten under its feet. And a subtree is only restarted by its
own node when that node's parent is live: if the parent is cancelled too, the
parent's restart will recreate the whole subtree anyway.

`plan_restarts` computes this in three named phases over the current tree:

1. **Ready** (bottom-up): a subtree is ready when its node and all of its
   descendants have exited (state DONE, DEAD or CANCELED and no restart
   pending).
2. **Wanted**: an exited node whose context is cancelled wants a restart.
3. **Chosen** (top-down, from the root): the first node on each path that is
   wanted, ready and whose parent is live (or that is the root) is chosen,
   and its subtree is not searched further: that gives the largest restartable
   subtrees, each restarted once.

The tree then restarts each chosen node: a node that DIED waits out its
backoff first (and counts against its restart intensity); one that was
CANCELED or was DONE starts again at once.

Restart intensity (Erlang/OTP's `MaxR` in `MaxT`): `recent_restarts` keeps
the restarts-after-a-death of the last `restart_window` seconds, as of the
`now` passed in; when there already were `max_restarts` of them, one more
death is one too many and the failure escalates (see `tree.py`).

This module is pure and reads no clock.
"""

from __future__ import annotations

from actors.supervisor.core.node import Node
from actors.supervisor.core.policy import RestartPolicy

__all__ = [
    "intensity_reached",
    "intensity_reason",
    "plan_restarts",
    "ready_subtrees",
    "recent_restarts",
]


def ready_subtrees(root: Node) -> set[str]:
    """Phase 1, ready: the DNs whose whole subtree has exited."""
    ready: set[str] = set()
    for node in root.walk_children_first():
        if node.exited and all(c.dn in ready for c in node.children.values()):
            ready.add(node.dn)
    return ready


def _wanted(node: Node) -> bool:
    """Phase 2, wanted: the node returned and its context is cancelled."""
    return node.exited and node.cancelled


def _parent_live(node: Node) -> bool:
    """Whether the node's parent context is live (the root has none: always)."""
    return node.parent is None or not node.parent.cancelled


def plan_restarts(root: Node) -> list[Node]:
    """The largest subtrees to restart now, in tree order (phases 1 to 3).

    Args:
        root: the root of the tree.

    Returns:
        The chosen nodes; no chosen node is inside another's subtree.
    """
    ready = ready_subtrees(root)
    chosen: list[Node] = []
    stack = [root]
    while stack:
        node = stack.pop()
        if _wanted(node) and node.dn in ready and _parent_live(node):
            chosen.append(node)
            continue
        stack.extend(reversed(node.children.values()))
    return chosen


def recent_restarts(history: list[float], now: float, window: float) -> list[float]:
    """The restart times of `history` that lie within the last `window` seconds."""
    return [t for t in history if t > now - window]


def intensity_reached(recent: list[float], policy: RestartPolicy) -> bool:
    """Whether one more restart after a death would exceed the restart intensity.

    Args:
        recent: the restarts after a death within the window (`recent_restarts`).
        policy: the node's policy; `max_restarts=None` never gives up (Go).
    """
    return policy.max_restarts is not None and len(recent) >= policy.max_restarts


def intensity_reason(node: Node, count: int) -> str:
    """Why `node`'s parent fails: `node` was restarted `count` times and died again."""
    return (
        f"restart intensity reached: {node.dn!r} was restarted {count} times"
        f" within {node.policy.restart_window:g} s and died again: {node.last_error}"
    )
