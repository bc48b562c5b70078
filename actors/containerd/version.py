"""The one Version probe: does containerd answer `Version` on its socket.

Every place that asks "is containerd there?" asks it here, with `version_call`:
readiness (`root.containerd` after `READY=1`, or at once in `"version"`
mode), liveness (`root.containerd` while HEALTHY, see `lifecycle`), and the
preseed's wait for containerd (`actors.preseed.client`).

The call is the gRPC method `containerd.services.version.v1.Version/Version`,
which every containerd (1.x and 2.x) serves. It is made raw: the request is the
empty `google.protobuf.Empty` (zero bytes, wire-valid) and the response is
decoded by `parse_version_response` — fields 1 (`version`) and 2
(`revision`) of `VersionResponse` — without generated code.

Waiting for a containerd that is still starting is gRPC's job, not a sleep loop's:
the call is made with `wait_for_ready`, on a channel that retries the connection
every 100 ms (at most every second), so a socket that appears is used within about
100 ms and the call fails only at its deadline. A stopped (SIGSTOP) or deadlocked
containerd accepts the connection in the kernel but never answers: the call then
fails with `DEADLINE_EXCEEDED` at its deadline.
"""

from __future__ import annotations

from dataclasses import dataclass

import grpc

__all__ = [
    "VERSION_METHOD",
    "VersionInfo",
    "describe_probe_error",
    "parse_version_response",
    "version_call",
]

#: The gRPC method every containerd (1.x and 2.x) serves.
VERSION_METHOD = "/containerd.services.version.v1.Version/Version"

_CHANNEL_OPTIONS = [
    ("grpc.enable_http_proxy", 0),
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 1000),
]


@dataclass(frozen=True, slots=True, kw_only=True)
class VersionInfo:
    """What containerd's Version call answered."""

    #: e.g. `1.6.20~ds1`.
    version: str
    #: e.g. `1.6.20~ds1-1+deb12u3`.
    revision: str


def version_call(address: str, timeout: float) -> VersionInfo:
    """Calls Version on the containerd socket `address` and decodes the answer.

    Waits (inside gRPC, up to `timeout` seconds) for the socket to accept.

    Raises:
        grpc.RpcError: the call failed or timed out.
        ValueError: the answer is not a valid `VersionResponse`.
    """
    with grpc.insecure_channel(f"unix://{address}", options=_CHANNEL_OPTIONS) as channel:
        call = channel.unary_unary(VERSION_METHOD)  # bytes in, bytes out
        answer = call(b"", timeout=timeout, wait_for_ready=True)
    return parse_version_response(answer)


def describe_probe_error(error: Exception) -> str:
    """Words for a failed `version_call`: `deadline_exceeded: Deadline Exceeded`.

    A gRPC error gives its status code (lowercase) and details; anything else
    (a `ValueError` about the answer) its text.
    """
    details = getattr(error, "details", None)
    code = getattr(error, "code", None)
    if callable(details) and callable(code):
        return f"{code().name.lower()}: {details()}"
    return str(error)


def parse_version_response(data: bytes) -> VersionInfo:
    """Decodes a `containerd.services.version.v1.VersionResponse`.

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
