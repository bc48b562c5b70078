"""What the containerd actors need from their supervision node, and the real adapter.

The actors of this package never touch the runtime directly: they are handed a
`NodeHandle` (the `Context` of their process, through `ContextNode`) so that they can
also be driven in tests by a fake node, without a supervisor.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from actors.supervisor.process.api import (
    Context,
    Signal,
    add_metric,
    logger,
    observe_metric,
    raw_logger,
    run,
    signal,
    vouch,
)

__all__ = ["ChildSpecs", "ContextNode", "NodeHandle", "RawSink"]

#: Children to start: name -> (runnable import path, keyword arguments).
ChildSpecs = Mapping[str, tuple[str, Mapping[str, Any]]]


class RawSink(Protocol):
    """Where raw bytes go: the node's raw log. Must be thread-safe."""

    def write(self, data: bytes) -> Any: ...

    def flush(self) -> None: ...


class NodeHandle(Protocol):
    """A supervision node as seen by an actor of this package."""

    #: Set when the node is cancelled.
    cancelled: threading.Event
    #: Leveled log of the node.
    log: logging.Logger
    #: Raw log of the node.
    raw: RawSink

    def cancel_reason(self) -> str | None:
        """Why the node was cancelled, once it was."""
        ...

    def signal_healthy(self) -> None:
        """Signal HEALTHY (legal once, from NEW)."""
        ...

    def start_children(self, children: ChildSpecs) -> None:
        """Start each child as a group of its own (only while NEW)."""
        ...

    def add_metric(self, name: str, value: float, labels: Mapping[str, str]) -> None:
        """Add `value` to the agent's counter `name` for `labels`."""
        ...

    def observe_metric(self, name: str, value: float, labels: Mapping[str, str]) -> None:
        """Observe `value` in the agent's histogram `name` for `labels`."""
        ...

    def vouch(self, check: Callable[[], bool]) -> None:
        """Send heartbeats only while `check()` holds (see `api.vouch`)."""
        ...


class ContextNode:
    """`NodeHandle` backed by a runnable's `Context`.

    Args:
        ctx: the runnable's context.
        attribute: the raw log's attribution hook (see `raw_logger`), or None.
        hold: the raw log's `hold` hook, with `attribute`.
    """

    def __init__(
        self,
        ctx: Context,
        attribute: Callable[[Any], None] | None = None,
        hold: Callable[[Any, int], int] | None = None,
    ) -> None:
        self._ctx = ctx
        self.cancelled = ctx.cancelled
        self.log = logger(ctx)
        self.raw: RawSink = raw_logger(ctx, attribute, hold)

    def cancel_reason(self) -> str | None:
        return self._ctx.cancel_reason

    def signal_healthy(self) -> None:
        signal(self._ctx, Signal.HEALTHY)

    def start_children(self, children: ChildSpecs) -> None:
        for name, (target, args) in children.items():
            run(self._ctx, name, target, **args)

    def add_metric(self, name: str, value: float, labels: Mapping[str, str]) -> None:
        add_metric(self._ctx, name, value, labels)

    def observe_metric(self, name: str, value: float, labels: Mapping[str, str]) -> None:
        observe_metric(self._ctx, name, value, labels)

    def vouch(self, check: Callable[[], bool]) -> None:
        vouch(self._ctx, check)
