"""How a supervision tree ended: the one record of its failure reason.

`TreeEnd` is written on the supervisor actor's thread (when the core emits
`TreeFailed` or `ShutdownComplete`, or when the actor itself crashes) and read
from any thread by the `Supervisor` facade. It outlives the actor, so the
reason stays readable after the actor stopped or died; nobody asks the actor
for it through a proxy.
"""

from __future__ import annotations

import threading

__all__ = ["TreeEnd"]


class TreeEnd:
    """Whether the tree has finished, and why it failed if it did. Thread-safe."""

    def __init__(self) -> None:
        #: Set once every runnable has exited (or the actor crashed).
        self.finished = threading.Event()
        self._lock = threading.Lock()
        self._failure: str | None = None

    @property
    def failure(self) -> str | None:
        """Why the tree failed, None if it did not (or has not yet)."""
        with self._lock:
            return self._failure

    def failed(self, reason: str) -> None:
        """The core escalated a failure past the root (`TreeFailed`)."""
        with self._lock:
            if self._failure is None:
                self._failure = reason

    def crashed(self, reason: str) -> None:
        """The actor itself broke: this reason wins over any earlier one."""
        with self._lock:
            self._failure = reason
        self.finished.set()
