"""The children of `root.containerd`: the runsc log pump and preseed.

As in Go's two `supervisor.Run` calls, each child is a group of its own: a dead
pump does not re-run the preseed import, and a failing preseed (a bad tarball
backing off) does not restart the pump.

When preseeding is disabled, `preseed` is `preseed_disabled`: it says so and is
DONE. It imports nothing and does not pretend to.
"""

from __future__ import annotations

from typing import Any

from actors.containerd.core.dns import PRESEED_NAME, RUNSC_NAME
from actors.containerd.core.spec import ContainerdSpec, logpump_spec
from actors.containerd.node import ChildSpecs
from actors.supervisor.process.api import Context, Signal, logger, signal
from messages.specs import spec_to_wire

__all__ = ["LOGPUMP", "PRESEED", "PRESEED_DISABLED", "child_specs", "preseed_disabled"]

LOGPUMP = "actors.containerd.logpump:run"
PRESEED = "actors.preseed.service.runnable:run"
PRESEED_DISABLED = "actors.containerd.children:preseed_disabled"


def child_specs(spec: ContainerdSpec) -> ChildSpecs:
    """Name → (runnable, wire arguments) of each child, in start order."""
    if spec.preseed is not None:
        preseed: tuple[str, dict[str, Any]] = (PRESEED, spec_to_wire(spec.preseed))
    else:
        preseed = (PRESEED_DISABLED, {})
    return {
        RUNSC_NAME: (LOGPUMP, spec_to_wire(logpump_spec(spec))),
        PRESEED_NAME: preseed,
    }


def preseed_disabled(ctx: Context) -> None:
    """`root.containerd.preseed` when preseeding is disabled: says so, HEALTHY, DONE."""
    logger(ctx).info("preseeding is disabled")
    signal(ctx, Signal.HEALTHY)
    signal(ctx, Signal.DONE)
