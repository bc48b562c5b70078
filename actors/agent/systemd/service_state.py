"""What the agent tells its init system, as a pure function of the tree's state changes.

`ServiceState` is fed every `StateChanged` of the supervision tree and returns the
notify assignments to send (`READY=1`, `STATUS=...`); it does no I/O, so the
sequence is tested without processes. `actors.agent.systemd.notifier` sends what it returns.

Rules:
    * **Ready** once `root.containerd` is HEALTHY *and* the initial preseed has
      finished: `root.containerd.preseed` signalled HEALTHY (it keeps watching its
      directory) or DONE, or it failed (went DEAD). A failed preseed does not hold the
      machine back: `READY=1` is sent with a `STATUS=` that says the preseed
      failed. `READY=1` is sent once; a later restart of containerd changes only
      the status.
    * **Status** is one line computed from the current states, sent only when it
      changes: a DEAD node is named (it is being restarted by its policy), a preseed
      failure says where to read why, and otherwise the line says what the agent is
      waiting for or that it is ready.
    * **Extending the start timeout.** While the initial preseed imports (containerd is
      HEALTHY, the preseed has not finished, `READY=1` not yet sent), `extend_timeout`
      returns `EXTEND_TIMEOUT_USEC=` of `EXTEND_TIMEOUT`; the notifier sends it every
      `EXTEND_EVERY` seconds, so a large preseed never hits `TimeoutStartSec=` while a
      containerd that never comes up still does. The first extension goes out with
      the state change that starts the import.
    * After `ServiceState.stopping`, state changes (the shutdown cancelling every
      node) send nothing more.
"""

from __future__ import annotations

from actors.containerd.core.dns import CONTAINERD_DN, PRESEED_DN
from actors.supervisor.core.events import StateChanged
from actors.supervisor.core.states import NodeState

__all__ = ["EXTEND_EVERY", "EXTEND_TIMEOUT", "ServiceState"]

#: Seconds each `EXTEND_TIMEOUT_USEC=` asks systemd to wait from the moment it arrives.
EXTEND_TIMEOUT = 60.0
#: Seconds between two extensions: a third of `EXTEND_TIMEOUT`, so one lost or late
#: datagram does not let the start timeout run out.
EXTEND_EVERY = 20.0

_FINISHED = (NodeState.HEALTHY, NodeState.DONE)


class ServiceState:
    """The agent's readiness and status line, driven by the tree's state changes."""

    def __init__(self) -> None:
        #: `READY=1` has been returned.
        self.ready = False
        #: The preseed's last run failed (it went DEAD and has not finished since).
        self.preseed_failed = False
        #: The last `STATUS=` text returned, or None before the first.
        self.status: str | None = None
        self._preseed_finished = False
        #: `STOPPING=1` has been returned.
        self.shutting_down = False
        self._states: dict[str, NodeState] = {}
        self._importing = False

    def starting(self) -> list[str]:
        """The assignments to send as the agent starts its tree."""
        return self._status_update()

    def handle(self, change: StateChanged) -> list[str]:
        """Records one state change; returns the assignments to send (maybe none)."""
        if self.shutting_down:
            return []
        self._states[change.dn] = change.new
        if change.dn == PRESEED_DN:
            if change.new in _FINISHED:
                self._preseed_finished = True
                self.preseed_failed = False
            elif change.new is NodeState.DEAD:
                self._preseed_finished = True
                self.preseed_failed = True
        out: list[str] = []
        if (
            not self.ready
            and self._preseed_finished
            and self._states.get(CONTAINERD_DN) is NodeState.HEALTHY
        ):
            self.ready = True
            out.append("READY=1")
        was_importing = self._importing
        self._importing = self._is_importing()
        out += self._status_update()
        if self._importing and not was_importing:
            out += self.extend_timeout()
        return out

    def extend_timeout(self) -> list[str]:
        """`EXTEND_TIMEOUT_USEC=` while the initial preseed imports, else nothing."""
        if not self._importing:
            return []
        return [f"EXTEND_TIMEOUT_USEC={int(EXTEND_TIMEOUT * 1e6)}"]

    def _is_importing(self) -> bool:
        return (
            not self.ready
            and not self.shutting_down
            and not self._preseed_finished
            and self._states.get(CONTAINERD_DN) is NodeState.HEALTHY
        )

    def stopping(self, reason: str) -> list[str]:
        """The assignments to send when the agent begins to shut down, for `reason`."""
        if self.shutting_down:
            return []
        self.shutting_down = True
        self._importing = False
        self.status = f"stopping: {reason}"
        return ["STOPPING=1", f"STATUS={self.status}"]

    def _status_update(self) -> list[str]:
        text = self._status_text()
        if text == self.status:
            return []
        self.status = text
        return [f"STATUS={text}"]

    def _status_text(self) -> str:
        dead = [dn for dn, s in self._states.items() if s is NodeState.DEAD and dn != PRESEED_DN]
        if dead:
            return f"{', '.join(dead)} DEAD, restarting (node-containerd status shows why)"
        if self._states.get(CONTAINERD_DN) is not NodeState.HEALTHY:
            return "starting containerd" if not self.ready else "containerd is restarting"
        if self.preseed_failed:
            prefix = "ready; " if self.ready else ""
            return f"{prefix}preseed failed, retrying (node-containerd logs {PRESEED_DN} shows why)"
        if not self._preseed_finished:
            return "containerd is up; importing preseed images"
        return "ready: containerd is up, preseed finished"
