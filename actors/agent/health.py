"""`GET /healthz` on the metrics endpoint: is this node able to run pods right now?

`Health` is fed the tree's state changes (a `Supervisor` observer, like the metrics
and the systemd notifier) and answers with a verdict; `health_app` puts it in front
of the metrics page's WSGI app. Every other path is served by the library as before.

Rules:
    * 200 `ok` only while `root.containerd` is HEALTHY and the initial preseed has
      finished (HEALTHY, DONE, or failed: a failed preseed does not take the node out,
      as it does not hold back `READY=1`).
    * Otherwise 503 with a one-line reason naming what is missing: containerd's
      current state, or that the preseed is still importing.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import Any

from actors.containerd.core.dns import CONTAINERD_DN, PRESEED_DN
from actors.supervisor.core.events import StateChanged
from actors.supervisor.core.states import NodeState

__all__ = ["HEALTH_PATH", "Health", "health_app"]

#: The path of the health check.
HEALTH_PATH = "/healthz"

_FINISHED = (NodeState.HEALTHY, NodeState.DONE, NodeState.DEAD)

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class Health:
    """The node's health from the tree's state changes; any thread may call it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._containerd: NodeState | None = None
        self._preseed_finished = False

    def observe_state(self, change: StateChanged, now: float) -> None:
        """A `Supervisor` state observer (actor thread; `now` unused)."""
        with self._lock:
            if change.dn == CONTAINERD_DN:
                self._containerd = change.new
            elif change.dn == PRESEED_DN and change.new in _FINISHED:
                self._preseed_finished = True

    def verdict(self) -> tuple[bool, str]:
        """(healthy, one line saying why)."""
        with self._lock:
            containerd, finished = self._containerd, self._preseed_finished
        if containerd is not NodeState.HEALTHY:
            state = containerd.value if containerd is not None else "not started"
            return False, f"{CONTAINERD_DN} is {state}"
        if not finished:
            return False, f"{PRESEED_DN} is still importing the initial images"
        return True, "ok"


def health_app(app: WsgiApp, health: Health) -> WsgiApp:
    """`app` with `HEALTH_PATH` answered from `health`."""

    def wrapped(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO") != HEALTH_PATH:
            return app(environ, start_response)
        ok, reason = health.verdict()
        body = f"{reason}\n".encode()
        status = "200 OK" if ok else "503 Service Unavailable"
        start_response(
            status,
            [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body)))],
        )
        return [body]

    return wrapped
