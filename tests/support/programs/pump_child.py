"""A log pump in a process of its own, for the SIGKILL loss-bound test.

    python -m tests.support.programs.pump_child FIFO

Pumps FIFO to stdout (each read written out before the next one, unbuffered),
says ``healthy`` on stderr once HEALTHY, stops gracefully on SIGTERM.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading

from actors.containerd.logpump import run_pump


class StdoutSink:
    def write(self, data: bytes) -> int:
        view = memoryview(data)
        while view:
            view = view[os.write(1, view) :]
        return len(data)

    def flush(self) -> None:
        pass


class ChildNode:
    def __init__(self) -> None:
        self.cancelled = threading.Event()
        self.log = logging.getLogger("pump_child")
        self.raw = StdoutSink()

    def cancel_reason(self) -> str | None:
        return "sigterm" if self.cancelled.is_set() else None

    def signal_healthy(self) -> None:
        os.write(2, b"healthy\n")

    def start_children(self, children: object) -> None:
        raise AssertionError("the pump starts no children")

    def vouch(self, check: object) -> None:
        pass  # no heartbeats in this process


def main() -> int:
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})  # inherited by every thread
    node = ChildNode()

    def on_sigterm() -> None:
        signal.sigwait({signal.SIGTERM})
        node.cancelled.set()

    threading.Thread(target=on_sigterm, daemon=True).start()
    error = run_pump(sys.argv[1], 1 << 20, node)
    if error is not None:
        print(error, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
