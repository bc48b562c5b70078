"""A runnable for the parsed-log tests: writes given chunks to its raw log, then waits.

Runs as ``tests.support.programs.parse_child:write`` in a child process of a real supervisor.
"""

from __future__ import annotations

import os
import socket

from actors.supervisor.process.api import Canceled, Context, Signal, raw_logger, signal


def write(ctx: Context, *, events: str, chunks: list[bytes]) -> None:
    """HEALTHY, writes each chunk with its own write call, reports ``written``, waits."""
    raw = raw_logger(ctx)
    signal(ctx, Signal.HEALTHY)
    for chunk in chunks:
        raw.write(chunk)
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        s.sendto(f"{ctx.dn} written {os.getpid()}".encode(), events)
    finally:
        s.close()
    ctx.wait()
    raise Canceled("canceled")
