"""The interpreter setting a root process runs its supervision tree with.

Python's GIL switch interval is process-global state, so a library must not
change it behind its caller's back (constructing a `Supervisor` used to). The
process entry points that host a tree call `use_fast_switching()` once,
before they start it: the agent's `run` command and the benchmarks.

Why: a runnable's death travels from the waiter thread (waitpid returns) to
the supervisor actor's thread, and a log line from a reader thread to the log
tree. With the default 5 ms interval a busy reader thread can hold the GIL for
5 ms before the hand-off runs; 1 ms keeps death detection around a
millisecond at a small cost in throughput.
"""

from __future__ import annotations

import sys

__all__ = ["SWITCH_INTERVAL", "use_fast_switching"]

#: The GIL switch interval a root process runs its tree with, in seconds.
SWITCH_INTERVAL = 0.001


def use_fast_switching() -> None:
    """Lower this process's GIL switch interval to `SWITCH_INTERVAL` (never raise it)."""
    if sys.getswitchinterval() > SWITCH_INTERVAL:
        sys.setswitchinterval(SWITCH_INTERVAL)
