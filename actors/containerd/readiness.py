"""Deciding when containerd is ready: ``READY=1``, then a Version call that answers.

A spawned process is not a ready containerd. `ReadinessTracker` is the pure rule
(events in, actions out, time passed in):

* mode ``"notify"`` (default): wait for ``READY=1`` on the private notify socket,
  then confirm with one gRPC ``containerd.services.version.v1.Version/Version`` call
  on containerd's socket; HEALTHY when it answers. containerd sends ``READY=1`` only
  after its gRPC listener is bound, so the confirming call succeeds at once.
* mode ``"version"``: for a containerd that does not speak sd_notify, probe at once;
  gRPC's own reconnect (``wait_for_ready``) waits for the socket, no sleep loop here.
* Either way, not ready within ``timeout`` seconds of the spawn → fail.

`version_call` does the I/O: a raw unary call whose request is the empty
``google.protobuf.Empty`` (zero bytes, wire-valid) and whose response is decoded by
`parse_version_response` — fields 1 (``version``) and 2 (``revision``) of
``VersionResponse`` — without generated code.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

import grpc

from actors.containerd.notify import NotifyMessage

__all__ = [
    "VERSION_METHOD",
    "BecomeHealthy",
    "Fail",
    "Probe",
    "ReadinessAction",
    "ReadinessTracker",
    "VersionInfo",
    "parse_version_response",
    "version_call",
]

VERSION_METHOD = "/containerd.services.version.v1.Version/Version"
"""The gRPC method every containerd (1.x and 2.x) serves."""

MODES = ("notify", "version")


@dataclass(frozen=True, slots=True, kw_only=True)
class VersionInfo:
    """What containerd's Version call answered.

    Attributes:
        version: e.g. ``1.6.20~ds1``.
        revision: e.g. ``1.6.20~ds1-1+deb12u3``.
    """

    version: str
    revision: str


@dataclass(frozen=True, slots=True)
class Probe:
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


ReadinessAction = Probe | BecomeHealthy | Fail


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
        mode: ``"notify"`` or ``"version"`` (see the module doc).
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
        return [Probe(max(self.deadline - now, 0.001))]

    def _fail(self, reason: str) -> list[ReadinessAction]:
        self._phase = _Phase.FAILED
        return [Fail(reason)]


def version_call(address: str, timeout: float) -> VersionInfo:
    """Calls Version on the containerd socket `address` and decodes the answer.

    Waits (inside gRPC, up to `timeout` seconds) for the socket to accept.

    Raises:
        grpc.RpcError: the call failed or timed out.
        ValueError: the answer is not a valid ``VersionResponse``.
    """
    with grpc.insecure_channel(f"unix://{address}") as channel:
        call = channel.unary_unary(VERSION_METHOD)  # bytes in, bytes out
        answer = call(b"", timeout=timeout, wait_for_ready=True)
    return parse_version_response(answer)


def parse_version_response(data: bytes) -> VersionInfo:
    """Decodes a ``containerd.services.version.v1.VersionResponse``.

    Fields 1 and 2 are strings; any other field is skipped by its wire type.

    Raises:
        ValueError: the bytes are not a valid protobuf message.
    """
    strings = {1: "", 2: ""}
    pos = 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        number, wire_type = key >> 3, key & 7
        if wire_type == 0:
            _, pos = _varint(data, pos)
        elif wire_type == 1:
            pos += 8
        elif wire_type == 5:
            pos += 4
        elif wire_type == 2:
            length, pos = _varint(data, pos)
            if number in strings:
                strings[number] = data[pos : pos + length].decode("utf-8", "replace")
            pos += length
        else:
            raise ValueError(f"version response is invalid: wire type {wire_type} at {pos}")
        if pos > len(data):
            raise ValueError("version response is invalid: truncated")
    return VersionInfo(version=strings[1], revision=strings[2])


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(data) or shift > 63:
            raise ValueError("version response is invalid: bad varint")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, pos
