"""Handing work to a pykka actor from helper threads.

An actor never blocks in a handler: the long waits (a child process, a FIFO,
a cancel) run in helper threads that tell the actor what happened. Two things
every such actor needs, written once:

* `tell_or_drop(ref, message)`: tell the actor, or drop the message if the
  actor has already stopped (a helper thread may outlive it by a moment, and
  what it reports no longer matters then);
* `tell_when_set(event, ref, make_message)`: a daemon thread that waits for
  an event (a runnable's `ctx.cancelled`) and then tells the actor once, a
  message made at that moment (so it can carry, e.g., the cancel's reason).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pykka

__all__ = ["tell_or_drop", "tell_when_set"]


def tell_or_drop(ref: pykka.ActorRef[Any], message: object) -> None:
    """Tell `ref` `message`; drop it silently if the actor has stopped.

    Args:
        ref: the actor to tell.
        message: what to put in its mailbox.
    """
    try:
        ref.tell(message)
    except pykka.ActorDeadError:
        pass


def tell_when_set(
    event: threading.Event,
    ref: pykka.ActorRef[Any],
    make_message: Callable[[], object],
    *,
    name: str = "nc-cancel",
) -> threading.Thread:
    """Start a daemon thread that tells `ref` `make_message()` once `event` is set.

    Args:
        event: what to wait for, e.g. the runnable's `ctx.cancelled`.
        ref: the actor to tell.
        make_message: called once `event` is set, on the watcher thread; its
            result is told at most once (dropped if the actor stopped). A message
            class without fields will do.
        name: the thread's name.

    Returns:
        The started thread.
    """

    def watch() -> None:
        event.wait()
        tell_or_drop(ref, make_message())

    thread = threading.Thread(target=watch, name=name, daemon=True)
    thread.start()
    return thread
