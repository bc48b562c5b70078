"""The runnable of bench/logs' parsed cases: replay a captured log into the raw log.

Runs as `bench.logs_replay:replay` in a child process (the project root is on its
`PYTHONPATH`). The node's `raw_format` (set by the benchmark with
`LogTree.set_parse`) decides whether the child parses the lines or sends them raw.
"""

from __future__ import annotations

import os
import socket

from actors.logtree.parse.runsc import RunscAttribution
from actors.supervisor.process.api import Context, Signal, raw_logger, signal

__all__ = ["replay", "workload"]


def _report(events: str, ctx: Context, event: str) -> None:
    """Tells the benchmark's probe `"<dn> <event> <pid>"` (as the testing kit does)."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        s.sendto(f"{ctx.dn} {event} {os.getpid()}".encode(), events)
    finally:
        s.close()


def workload(sample: str, chunk: int) -> tuple[list[bytes], int, int]:
    """One round of a replay: writes of whole lines, about `chunk` bytes each.

    The sample's lines are repeated until a round holds at least four chunks.

    Returns:
        `(blocks, bytes, lines)` of one round.
    """
    with open(sample, "rb") as f:
        lines = f.read().splitlines(keepends=True)
    size = sum(map(len, lines))
    lines = lines * max(1, -(-chunk * 4 // size))
    blocks: list[bytes] = []
    block = b""
    for line in lines:
        if block and len(block) + len(line) > chunk:
            blocks.append(block)
            block = b""
        block += line
    blocks.append(block)
    return blocks, sum(map(len, blocks)), len(lines)


def replay(
    ctx: Context, *, events: str, sample: str, rounds: int, chunk: int, attribute: bool = False
) -> None:
    """Writes `rounds` rounds of `workload` to the raw log, then DONE.

    Args:
        ctx: the node's context.
        events: the probe's event socket.
        sample: a file of log lines.
        rounds: how many times to write the round.
        chunk: about how many bytes per write.
        attribute: attribute the parsed lines to runsc's sandboxes, as the runsc
            pump does (`actors.logtree.parse.runsc`).
    """
    blocks, _, _ = workload(sample, chunk)
    attribution = RunscAttribution() if attribute else None
    raw = raw_logger(
        ctx,
        attribution.annotate if attribution else None,
        attribution.hold_back if attribution else None,
    )
    signal(ctx, Signal.HEALTHY)
    _report(events, ctx, "started")
    write = raw.write
    for _ in range(rounds):
        for block in blocks:
            write(block)
    raw.flush()
    _report(events, ctx, "written")
    signal(ctx, Signal.DONE)
