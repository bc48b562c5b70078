"""The one Version probe: does containerd answer `Version` on its socket.

Every place that asks "is containerd there?" asks it here, with `version_call`:
readiness (`root.containerd` after `READY=1`, or at once in `"version"`
mode), liveness (`root.containerd` while HEALTHY, see `lifecycle`), and the
preseed's wait for containerd (`actors.containerd.api.client`).

The call is the gRPC method `containerd.services.version.v1.Version/Version`,
which every containerd (1.x and 2.x) serves. It is made raw: the request is the
empty `google.protobuf.Empty` (zero bytes, wire-valid) and the response is
decoded by `actors.containerd.core.version.parse_version_response` — fields 1 (`version`) and 2
(`revision`) of `VersionResponse` — without generated code.

Waiting for a containerd that is still starting is gRPC's job, not a sleep loop's:
the call is made with `wait_for_ready`, on a channel that retries the connection
every 100 ms (at most every second), so a socket that appears is used within about
100 ms and the call fails only at its deadline. A stopped (SIGSTOP) or deadlocked
containerd accepts the connection in the kernel but never answers: the call then
fails with `DEADLINE_EXCEEDED` at its deadline.
"""

from __future__ import annotations

import grpc

from actors.containerd.core.version import VersionInfo, parse_version_response

__all__ = ["VERSION_METHOD", "describe_probe_error", "version_call"]

#: The gRPC method every containerd (1.x and 2.x) serves.
VERSION_METHOD = "/containerd.services.version.v1.Version/Version"

_CHANNEL_OPTIONS = [
    ("grpc.enable_http_proxy", 0),
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 1000),
]


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
