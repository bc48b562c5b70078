"""The one module that reads clocks.

Logic takes `now` as a parameter; only the shells call these.
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
