"""Waiting in a system test: the one `wait_until`, and a call run in a thread.

Every wait has a timeout and says what it waited for. Prefer waiting on a notification
(a condition variable, a `Probe` event, a future); `wait_until` polls, for conditions
nothing can notify us of (bytes queued in a kernel buffer, a process gone, a state
only the CLI shows).
"""

from __future__ import annotations

import concurrent.futures
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["in_thread", "wait_until"]

T = TypeVar("T")


def wait_until(
    predicate: Callable[[], T], timeout: float, what: str, *, interval: float = 0.01
) -> T:
    """Calls `predicate` every `interval` s until it returns a true value; returns that value.

    Args:
        predicate: the condition; its first true result is returned.
        timeout: seconds before the test fails.
        what: what is waited for, in the failure's message.
        interval: seconds between two calls.

    Raises:
        AssertionError: `predicate` was not true within `timeout` s.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        assert time.monotonic() < deadline, f"{what}: not within {timeout}s"
        time.sleep(interval)


def in_thread(fn: Callable[..., T], *args: Any) -> concurrent.futures.Future[T]:
    """Runs `fn(*args)` in a daemon thread; returns its future."""
    future: concurrent.futures.Future[T] = concurrent.futures.Future()

    def body() -> None:
        try:
            future.set_result(fn(*args))
        except BaseException as e:  # noqa: BLE001 - handed to the test
            future.set_exception(e)

    threading.Thread(target=body, daemon=True).start()
    return future
