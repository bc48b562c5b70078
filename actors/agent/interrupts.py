"""SIGINT, SIGTERM and SIGHUP as one exception, and cleanup that no signal can cut short.

A one-shot command that makes things it must remove again (`check` runs pods)
needs two promises from its signals: any of the three ends the command the same
way — an `Interrupted` exception raised in the main thread, so that every
`finally` runs — and a signal that arrives while cleanup runs neither stops the
cleanup nor gets lost. Python gives neither: SIGTERM and SIGHUP kill the process
without running any `finally`, and a `KeyboardInterrupt` raised inside cleanup
ends it half-way (or is replaced by the cleanup's own error, and the command
goes on as if nothing had happened).

`SignalGuard.installed()` installs the handlers for the duration of the command
(the main thread only); `shielded()` marks a cleanup: a signal that arrives in it
is kept and raised once it ends (`raise_pending` raises a kept one at a safe
point). Cleanup must bound its own duration: a shielded block is not
interruptible by design. The exit status of an interrupted command is
`128 + signal number` (`Interrupted.exit_code`), as shells report it.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

__all__ = ["SIGNALS", "Interrupted", "SignalGuard"]

#: The signals that interrupt a command.
SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class Interrupted(BaseException):
    """The command was interrupted by a signal (a `BaseException`, like `KeyboardInterrupt`).

    Args:
        signum: the signal's number.
    """

    def __init__(self, signum: int) -> None:
        super().__init__(f"interrupted by {signal.Signals(signum).name}")
        #: The signal's number.
        self.signum = signum

    @property
    def name(self) -> str:
        """The signal's name, e.g. `SIGTERM`."""
        return signal.Signals(self.signum).name

    @property
    def exit_code(self) -> int:
        """128 + the signal's number: 130 for SIGINT, 143 for SIGTERM, 129 for SIGHUP."""
        return 128 + self.signum


class SignalGuard:
    """Turns `SIGNALS` into `Interrupted` in the main thread, deferred while shielded."""

    def __init__(self) -> None:
        #: How deep in shielded blocks the main thread is.
        self._depth = 0
        #: A signal that arrived while shielded, not raised yet.
        self._pending: int | None = None
        #: Whether the handlers are installed.
        self._active = False

    @contextmanager
    def installed(self) -> Iterator[None]:
        """Installs the handlers for the block (main thread only); restores the old ones."""
        old = {sig: signal.signal(sig, self._handle) for sig in SIGNALS}
        self._active = True
        try:
            yield
        finally:
            self._active = False
            for sig, handler in old.items():
                signal.signal(sig, handler)

    @contextmanager
    def shielded(self) -> Iterator[None]:
        """A block no signal interrupts; a signal that came meanwhile is raised after it."""
        self._depth += 1
        try:
            yield
        finally:
            self._depth -= 1
        self.raise_pending()

    def raise_pending(self) -> None:
        """Raises `Interrupted` for a signal kept while shielded, if there is one.

        Raises:
            Interrupted: a signal arrived during a shielded block.
        """
        if self._depth == 0 and self._pending is not None:
            signum, self._pending = self._pending, None
            raise Interrupted(signum)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self._depth > 0:
            if self._pending is None:
                self._pending = signum
            return
        raise Interrupted(signum)
