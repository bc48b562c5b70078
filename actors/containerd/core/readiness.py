"""Deciding when containerd is ready: `READY=1`, then a Version call that answers.

A spawned process is not a ready containerd. `ReadinessTracker` is the pure rule
(events in, actions out, time passed in):

* mode `"notify"` (default): wait for `READY=1` on the private notify socket,
  then confirm with one gRPC `containerd.services.version.v1.Version/Version` call
  on containerd's socket; HEALTHY when it answers. containerd sends `READY=1` only
  after its gRPC listener is bound, so the confirming call succeeds at once.
* mode `"version"`: for a containerd that does not speak sd_notify, probe at once;
  gRPC's own reconnect (`wait_for_ready`) waits for the socket, no sleep loop here.
* Either way, not ready within `timeout` seconds of the spawn → fail.

The Version call itself is the one probe of `actors.containerd.api.version`; the
tracker only asks for it (`ProbeVersion`) and is told how it went. `ContainerdLifecycle`
(`actors.containerd.core.lifecycle`) owns one tracker per start of containerd.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from actors.containerd.core.notify import NotifyMessage
from actors.containerd.core.version import VersionInfo

__all__ = [
    "MODES",
    "BecomeHealthy",
    "Fail",
    "ProbeVersion",
    "ReadinessAction",
    "ReadinessTracker",
]

#: The readiness modes (see the module doc).
MODES = ("notify", "version")


@dataclass(frozen=True, slots=True)
class ProbeVersion:
    """Make one Version call, giving up after `timeout` seconds."""

    timeout: float


@dataclass(frozen=True, slots=True)
class BecomeHealthy:
    """containerd is ready: signal HEALTHY."""

    info: VersionInfo


@dataclass(frozen=True, slots=True)
class Fail:
    """containerd did not become ready: fail the node with `reason`."""

    reason: str


ReadinessAction = ProbeVersion | BecomeHealthy | Fail


class _Phase(enum.Enum):
    WAITING = "waiting for READY=1"
    PROBING = "probing Version"
    READY = "ready"
    FAILED = "failed"


class ReadinessTracker:
    """The readiness rule for one start of containerd. Pure: no I/O, no clock.

    Args:
        address: containerd's gRPC socket (for messages).
        notify_path: the notify socket (for messages).
        timeout: seconds from `started_at` to become ready.
        started_at: monotonic time of the spawn.
        mode: `"notify"` or `"version"` (see the module doc).
    """

    def __init__(
        self, *, address: str, notify_path: str, timeout: float, started_at: float, mode: str
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"readiness mode {mode!r} is invalid: expected one of {MODES!r}")
        self.address = address
        self.notify_path = notify_path
        self.timeout = timeout
        self.deadline = started_at + timeout
        self.mode = mode
        self._phase = _Phase.WAITING

    @property
    def ready(self) -> bool:
        """Whether containerd was found ready."""
        return self._phase is _Phase.READY

    def start(self, now: float) -> list[ReadinessAction]:
        """The actions right after the spawn."""
        if self.mode == "version":
            return self._probe(now)
        return []

    def notified(self, message: NotifyMessage, now: float) -> list[ReadinessAction]:
        """containerd sent a notify datagram."""
        if self._phase is _Phase.WAITING and message.ready:
            return self._probe(now)
        return []

    def version_answered(self, info: VersionInfo) -> list[ReadinessAction]:
        """The Version call answered."""
        if self._phase is not _Phase.PROBING:
            return []
        self._phase = _Phase.READY
        return [BecomeHealthy(info)]

    def version_failed(self, error: str) -> list[ReadinessAction]:
        """The Version call failed (its deadline included)."""
        if self._phase is not _Phase.PROBING:
            return []
        said = "said READY=1 but " if self.mode == "notify" else ""
        return self._fail(f"containerd {said}did not answer Version on {self.address!r}: {error}")

    def deadline_passed(self) -> list[ReadinessAction]:
        """`timeout` seconds have passed since the spawn."""
        if self._phase is _Phase.WAITING:
            return self._fail(
                f"containerd did not become ready within {self.timeout:g}s: "
                f"no READY=1 on notify socket {self.notify_path!r}"
            )
        if self._phase is _Phase.PROBING:
            return self._fail(
                f"containerd did not become ready within {self.timeout:g}s: "
                f"no answer to Version on {self.address!r}"
            )
        return []

    def _probe(self, now: float) -> list[ReadinessAction]:
        self._phase = _Phase.PROBING
        return [ProbeVersion(max(self.deadline - now, 0.001))]

    def _fail(self, reason: str) -> list[ReadinessAction]:
        self._phase = _Phase.FAILED
        return [Fail(reason)]
