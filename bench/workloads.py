"""Runnables that only the benchmarks run (as `bench.workloads:<name>`).

They are not part of the product: a runnable's process finds them because the
root puts the project directory on its children's PYTHONPATH. They report to a
`Probe` like the test kit's runnables (`actors.supervisor.testing.kit`).
"""

from __future__ import annotations

import os

from actors.supervisor.process.api import Context, Signal, raw_logger, signal
from actors.supervisor.testing.kit import report

__all__ = ["blast"]


def blast(
    ctx: Context, *, events: str, total: int, line: int, chunk: int, devnull: bool = False
) -> None:
    """Write `total` bytes of `line`-byte lines in `chunk`-byte writes, then DONE.

    To the node's raw log, or with `devnull` to /dev/null (the reference).
    """
    one = b"x" * (line - 1) + b"\n"
    block = one * max(1, chunk // line)
    raw = raw_logger(ctx)
    fd = os.open(os.devnull, os.O_WRONLY) if devnull else -1
    signal(ctx, Signal.HEALTHY)
    report(events, ctx, "started")
    sent = 0
    while sent < total:
        if devnull:
            os.write(fd, block)
        else:
            raw.write(block)
        sent += len(block)
    raw.flush()
    report(events, ctx, "written")
    signal(ctx, Signal.DONE)
