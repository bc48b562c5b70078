"""Node states, signals and exit kinds of the supervision tree, with Go's names and strings.

This module has no dependencies. Legal signal transitions are data
(`SIGNAL_TRANSITIONS`), not an if-chain: a signal that is not in the table is a
programming error of the runnable that sent it, and the core fails that node.

States:
    NEW       the runnable was started and has not signalled anything yet.
              Children may be started only now.
    HEALTHY   the runnable signalled HEALTHY. A runnable that has signalled
              DONE but not yet returned is still HEALTHY (as in Go: the
              transition to DONE happens only when it returns, so a node is
              never restartable while its runnable still runs; TestDoneDelay).
    DONE      the runnable signalled DONE (after HEALTHY) and then returned
              cleanly. It is not restarted, unless its context is cancelled
              (a group sibling died, a parent restarts).
    DEAD      the runnable exited in any way it should not have: an error, a
              clean return without DONE, a crash, a kill, a protocol error.
              A node waiting out its backoff before a restart stays DEAD
              until it is started again (as Go's metrics show it).
    CANCELED  the runnable exited because its context was cancelled.

`SIGNAL_TRANSITIONS` is over the state the runnable has *declared*: its node
state, except DONE once it signalled DONE (even while it still runs). So
HEALTHY twice, DONE without HEALTHY and DONE twice are all missing from it.
"""

from __future__ import annotations

import enum

__all__ = ["EXITED_STATES", "SIGNAL_TRANSITIONS", "ExitKind", "NodeState", "Signal"]


class NodeState(enum.Enum):
    """The state of one node, spelled as in Go's `osbase/supervisor`."""

    NEW = "NODE_STATE_NEW"
    HEALTHY = "NODE_STATE_HEALTHY"
    DEAD = "NODE_STATE_DEAD"
    DONE = "NODE_STATE_DONE"
    CANCELED = "NODE_STATE_CANCELED"

    @property
    def short(self) -> str:
        """The state without its prefix: `NEW`, `HEALTHY`, ..."""
        return self.value.removeprefix("NODE_STATE_")


class Signal(enum.Enum):
    """What a runnable may tell its supervisor about itself.

    The wire spelling is `messages.wire.SIGNAL_WIRE`, not the value.
    """

    #: The runnable is up (from NEW only).
    HEALTHY = "healthy"
    #: The runnable's work is done; it returns soon (from HEALTHY only, once).
    DONE = "done"


class ExitKind(enum.Enum):
    """How a runnable's process ended, as the shell saw it.

    The wire spelling of the kinds a runnable reports itself is
    `messages.wire.EXIT_KIND_WIRE`; CRASHED is the root's own finding.
    """

    #: The runnable returned normally (Go: returned nil).
    OK = "ok"
    #: The runnable returned because its context was cancelled (Go: returned ctx.Err()).
    CANCELED = "canceled"
    #: The runnable raised / returned an error.
    ERROR = "error"
    #: The process died without saying how (signal, crash, lost connection).
    CRASHED = "crashed"


#: (declared state before, signal) -> declared state after. Anything else is illegal.
SIGNAL_TRANSITIONS: dict[tuple[NodeState, Signal], NodeState] = {
    (NodeState.NEW, Signal.HEALTHY): NodeState.HEALTHY,
    (NodeState.HEALTHY, Signal.DONE): NodeState.DONE,
}

#: States a node can only be in once its runnable has returned.
EXITED_STATES: frozenset[NodeState] = frozenset(
    {NodeState.DEAD, NodeState.CANCELED, NodeState.DONE}
)
