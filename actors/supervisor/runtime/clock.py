"""Where the supervisor's root side reads time.

The core never reads a clock: `Tree.handle` takes `now` as a parameter. On the
root side, the supervisor actor (the `now` it feeds the core, the timestamps
of the lines the core logs) and the timer thread read time only through this
module, so what the core sees comes from one place.

It is not the only module in the codebase that reads a clock: code outside
the supervisor reads `time` for its own waits and timestamps (the child's
heartbeat loop in `process/link.py`, log-tree readers and sinks, preseed's
deadlines and durations, the benchmarks). None of those feeds the core.
"""

from __future__ import annotations

import time

__all__ = ["monotonic", "wall"]


def monotonic() -> float:
    """Seconds on the monotonic clock (for deadlines and durations)."""
    return time.monotonic()


def wall() -> float:
    """Seconds since the epoch (for log timestamps only)."""
    return time.time()
