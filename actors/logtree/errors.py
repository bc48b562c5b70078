"""The log tree's one exception type."""

from __future__ import annotations

__all__ = ["LogTreeError"]


class LogTreeError(ValueError):
    """A caller handed the log tree something invalid: a bad DN, entry or read option.

    It subclasses `ValueError` so that callers that already treat bad arguments
    as `ValueError` keep working.
    """
