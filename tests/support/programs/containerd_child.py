"""`run_containerd` in a process of its own, for the parent-death test.

    python -m tests.support.programs.containerd_child SPEC_JSON

Prints containerd's pid on stdout once it is HEALTHY, then runs until killed.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
from collections.abc import Callable

from actors.containerd.core.spec import ContainerdSpec
from actors.containerd.process import run_containerd
from messages.specs import spec_from_wire


class _Discard:
    def write(self, data: bytes) -> int:
        return len(data)

    def flush(self) -> None:
        pass


class ChildNode:
    def __init__(self) -> None:
        self.cancelled = threading.Event()
        self.log = logging.getLogger("containerd_child")
        self.raw = _Discard()
        self.log.addHandler(_PidPrinter())
        self.log.setLevel(logging.INFO)
        self.vouched: list[Callable[[], bool]] = []

    def cancel_reason(self) -> str | None:
        return None

    def signal_healthy(self) -> None:
        os.write(1, b"healthy\n")

    def start_children(self, children: object) -> None:
        pass

    def add_metric(self, name: str, value: float, labels: object) -> None:
        pass

    def observe_metric(self, name: str, value: float, labels: object) -> None:
        pass

    def vouch(self, check: Callable[[], bool]) -> None:
        self.vouched.append(check)


class _PidPrinter(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if message.startswith("started containerd"):
            os.write(1, message.rsplit("pid ", 1)[1].rstrip(")").encode() + b"\n")


if __name__ == "__main__":
    run_containerd(spec_from_wire(ContainerdSpec, json.loads(sys.argv[1])), ChildNode())
