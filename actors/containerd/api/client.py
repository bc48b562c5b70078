"""A thin gRPC client for containerd's API over its unix socket.

`ContainerdClient` owns one channel to `unix://<path>` and the stubs of the
services the importer uses (content, images, leases, namespaces, version,
and snapshots and diff for unpacking), and of the events service that
`actors.containerd.api.events` subscribes to. Every
call goes through `call`, which sets the `containerd-namespace` (and
`containerd-lease`) metadata headers and a deadline, and turns a gRPC failure
into a `ContainerdError` with a clear message: the socket does not exist,
containerd is not answering, or what containerd said. Calls that the importer
expects to fail (NotFound, AlreadyExists) can be told apart with `code_of`.

`wait_ready` asks the agent's one Version probe (`actors.containerd.api.version`),
which notices a containerd that has just started within about 100 ms.
Thread-safe: the importer's writer threads share one client.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, Self, TypeVar

import grpc
from google.protobuf import empty_pb2  # type: ignore[import-untyped]

from actors.containerd.api.errors import ContainerdError
from actors.containerd.api.version import version_call
from messages.containerd.services.content.v1 import content_pb2
from messages.containerd.services.content.v1 import content_pb2_grpc as _content
from messages.containerd.services.diff.v1 import diff_pb2_grpc as _diff
from messages.containerd.services.events.v1 import events_pb2_grpc as _events
from messages.containerd.services.images.v1 import images_pb2_grpc as _images
from messages.containerd.services.leases.v1 import leases_pb2_grpc as _leases
from messages.containerd.services.namespaces.v1 import namespace_pb2_grpc as _namespaces
from messages.containerd.services.snapshots.v1 import snapshots_pb2_grpc as _snapshots
from messages.containerd.services.version.v1 import version_pb2_grpc as _version

__all__ = ["ContainerdClient", "code_of"]

# The generated gRPC stubs (*_pb2_grpc) have no .pyi; the messages (*_pb2) do.
content_pb2_grpc: Any = _content
diff_pb2_grpc: Any = _diff
events_pb2_grpc: Any = _events
snapshots_pb2_grpc: Any = _snapshots
images_pb2_grpc: Any = _images
leases_pb2_grpc: Any = _leases
namespace_pb2_grpc: Any = _namespaces
version_pb2_grpc: Any = _version

T = TypeVar("T")
NAMESPACE_HEADER = "containerd-namespace"
LEASE_HEADER = "containerd-lease"
_MAX_MESSAGE = 16 << 20
_CHANNEL_OPTIONS = [
    ("grpc.max_receive_message_length", _MAX_MESSAGE),
    ("grpc.max_send_message_length", _MAX_MESSAGE),
    ("grpc.enable_http_proxy", 0),
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 1000),
]


def code_of(error: BaseException) -> grpc.StatusCode | None:
    """The gRPC status code behind an error (a `ContainerdError` or `grpc.RpcError`)."""
    if isinstance(error, ContainerdError):
        error = error.__cause__ if error.__cause__ is not None else error
    if isinstance(error, grpc.RpcError):
        code = error.code()
        return code if isinstance(code, grpc.StatusCode) else None
    return None


class ContainerdClient:
    """A connection to one containerd."""

    def __init__(self, address: str, *, timeout: float = 30.0) -> None:
        """Prepare a channel to `address` (a socket path, optionally `unix://`-prefixed).

        The connection is made lazily, on the first call.
        """
        path = address.removeprefix("unix://").removeprefix("unix:")
        if not path:
            raise ValueError("containerd address must not be empty")
        #: Path of containerd's gRPC socket.
        self.address = path
        #: Deadline of each unary call, in seconds.
        self.timeout = timeout
        self._channel = grpc.insecure_channel(
            "unix:" + os.path.abspath(path), options=_CHANNEL_OPTIONS
        )
        self.content = content_pb2_grpc.ContentStub(self._channel)
        self.images = images_pb2_grpc.ImagesStub(self._channel)
        self.leases = leases_pb2_grpc.LeasesStub(self._channel)
        self.namespaces = namespace_pb2_grpc.NamespacesStub(self._channel)
        self.snapshots = snapshots_pb2_grpc.SnapshotsStub(self._channel)
        self.diff = diff_pb2_grpc.DiffStub(self._channel)
        self.events = events_pb2_grpc.EventsStub(self._channel)
        self._version = version_pb2_grpc.VersionStub(self._channel)
        # Content.Write taking requests already serialized (see writer.write_request).
        self.write_stream = self._channel.stream_stream(
            "/containerd.services.content.v1.Content/Write",
            request_serializer=None,
            response_deserializer=content_pb2.WriteContentResponse.FromString,
        )

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the channel; calls after this fail."""
        self._channel.close()

    def wait_connected(self, timeout: float) -> bool:
        """Wait up to `timeout` seconds until the channel is connected; whether it is.

        The channel retries the connection every 100 ms (at most every second).
        """
        ready = grpc.channel_ready_future(self._channel)
        try:
            ready.result(timeout=timeout)
        except grpc.FutureTimeoutError:
            ready.cancel()  # stops watching the channel's connectivity
            return False
        return True

    @staticmethod
    def metadata(namespace: str | None, lease: str | None = None) -> tuple[tuple[str, str], ...]:
        """The gRPC metadata that selects a namespace and a lease."""
        md: list[tuple[str, str]] = []
        if namespace is not None:
            md.append((NAMESPACE_HEADER, namespace))
        if lease is not None:
            md.append((LEASE_HEADER, lease))
        return tuple(md)

    def error(self, what: str, e: grpc.RpcError) -> ContainerdError:
        """A `ContainerdError` describing a failed call (`what` names the call)."""
        code = e.code() if isinstance(e, grpc.Call) else None
        details = e.details() if isinstance(e, grpc.Call) else str(e)
        if code == grpc.StatusCode.UNAVAILABLE:
            if not os.path.exists(self.address):
                text = f"containerd socket {self.address!r} does not exist"
            else:
                text = f"containerd at {self.address!r} is not answering: {details}"
        elif code == grpc.StatusCode.DEADLINE_EXCEEDED:
            text = f"containerd at {self.address!r} did not answer {what} in time"
        else:
            name = code.name.lower().replace("_", " ") if code is not None else "error"
            text = f"containerd refused {what}: {name}: {details}"
        error = ContainerdError(text)
        error.__cause__ = e
        return error

    def call(
        self,
        method: Callable[..., T],
        request: Any,
        *,
        what: str,
        namespace: str | None = None,
        lease: str | None = None,
        timeout: float | None = None,
    ) -> T:
        """Make one unary call with the namespace/lease headers and a deadline.

        Raises:
            ContainerdError: the call failed (see `code_of` for the status code).
        """
        try:
            return method(
                request,
                metadata=self.metadata(namespace, lease),
                timeout=self.timeout if timeout is None else timeout,
            )
        except grpc.RpcError as e:
            raise self.error(what, e) from e

    def version(self) -> str:
        """containerd's version string, e.g. "1.6.20~ds1".

        Raises:
            ContainerdError: containerd is not there or not answering.
        """
        reply = self.call(self._version.Version, empty_pb2.Empty(), what="version")
        return str(reply.version)

    def wait_ready(self, timeout: float) -> None:
        """Wait until containerd answers Version, for at most `timeout` seconds.

        One call of the agent's one Version probe
        (`actors.containerd.api.version.version_call`), whose channel retries the
        connection every 100 ms: no polling loop here.

        Raises:
            ContainerdError: it did not answer in time; the message says why.
        """
        try:
            version_call(self.address, timeout)
        except (grpc.RpcError, ValueError) as e:
            if not os.path.exists(self.address):
                cause = f"containerd socket {self.address!r} does not exist"
            elif isinstance(e, grpc.RpcError):
                cause = str(self.error("version", e))
            else:
                cause = str(e)
            raise ContainerdError(
                f"containerd at {self.address!r} did not answer within {timeout:g}s: {cause}"
            ) from e
