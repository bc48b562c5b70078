"""A runsc stand-in that writes numbered lines into a FIFO, for the pump tests.

    python -m tests.support.programs.fifo_writer stream FIFO COUNT
        one open, COUNT lines, then "END"
    python -m tests.support.programs.fifo_writer churn FIFO COUNT
        COUNT times: open, one line, close, pause 1 ms

Line i is `numbered_line(i)`: 100 bytes with its newline.
"""

from __future__ import annotations

import os
import sys
import time

BATCH = 50  # lines per write(2) in stream mode: 5,000 bytes, more than PIPE_BUF


def numbered_line(i: int) -> bytes:
    """Line `i` of the stream: 100 bytes, newline included."""
    return b"%06d " % i + b"x" * 92 + b"\n"


def stream(path: str, count: int) -> None:
    fd = os.open(path, os.O_WRONLY)
    try:
        for start in range(0, count, BATCH):
            data = b"".join(numbered_line(i) for i in range(start, min(start + BATCH, count)))
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
        os.write(fd, b"END\n")
    finally:
        os.close(fd)


def churn(path: str, count: int) -> None:
    for i in range(count):
        fd = os.open(path, os.O_WRONLY)
        os.write(fd, numbered_line(i))
        os.close(fd)
        time.sleep(0.001)  # the workload: writers that come and go


if __name__ == "__main__":
    mode, fifo, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    {"stream": stream, "churn": churn}[mode](fifo, n)
