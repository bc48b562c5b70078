"""containerd's own event stream, as image events: `ImageEvents`.

containerd publishes every change of its metadata on its Events service
(`containerd.services.events.v1.Events/Subscribe`), each event in an envelope
that names the namespace it happened in and its topic. `ImageEvents` is a
helper thread subscribed to the image topics (`/images/create`,
`/images/update`, `/images/delete`) of every namespace; it hands each event to
`on_event` as an `ImageEvent` the moment containerd sends it: nothing polls.
Whoever deleted the image (`ctr images rm`, `crictl rmi`, another client's
GC), containerd publishes the same event.

Rules:
    * The subscription rides the client's own channel (one connection with the
      client's other calls), and is made before the caller lists anything, so
      that a change in between is not missed.
    * When the stream breaks (containerd restarted, the connection dropped),
      events published meanwhile are lost: the thread waits until the channel is
      connected again, subscribes anew and calls `on_subscribed(True)`, so that
      the caller compares what it keeps with containerd's store once. The first
      subscription calls `on_subscribed(False)`.
    * `stop` cancels the call and joins the thread. Callbacks run on the thread
      and must only hand the event over (e.g. a pykka `tell`).
    * Decoding is by the topic: the three image events all carry the image's
      name as field 1 (`containerd.events.ImageCreate`, `ImageUpdate`,
      `ImageDelete`, `api/events/image.proto`), on containerd 1.6 and 2.x.
"""

from __future__ import annotations

import enum
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import grpc

from actors.containerd.api.client import ContainerdClient
from messages.containerd.events import image_pb2
from messages.containerd.services.events.v1 import events_pb2

__all__ = ["ImageEvent", "ImageEventKind", "ImageEvents", "image_event"]

#: Seconds between two attempts to connect or subscribe again, at first and at most.
_RETRY_FIRST, _RETRY_MAX = 0.1, 1.0


class ImageEventKind(enum.Enum):
    """What happened to an image; the value is containerd's topic."""

    CREATE = "/images/create"
    UPDATE = "/images/update"
    DELETE = "/images/delete"


#: The message each topic carries.
_PAYLOAD: dict[ImageEventKind, Any] = {
    ImageEventKind.CREATE: image_pb2.ImageCreate,
    ImageEventKind.UPDATE: image_pb2.ImageUpdate,
    ImageEventKind.DELETE: image_pb2.ImageDelete,
}


@dataclass(frozen=True, slots=True)
class ImageEvent:
    """One image event of containerd."""

    #: The containerd namespace it happened in, e.g. `k8s.io`.
    namespace: str
    #: Created, updated or deleted.
    kind: ImageEventKind
    #: The image's name, e.g. `registry.k8s.io/pause:3.6`.
    name: str


def image_event(envelope: events_pb2.Envelope) -> ImageEvent | None:
    """The image event an envelope carries; None for another topic or a malformed payload."""
    try:
        kind = ImageEventKind(envelope.topic)
    except ValueError:
        return None
    try:
        payload = _PAYLOAD[kind].FromString(envelope.event.value)
    except Exception:  # noqa: BLE001 - protobuf's DecodeError: not an image event after all
        return None
    if not payload.name:
        return None
    return ImageEvent(envelope.namespace, kind, str(payload.name))


class ImageEvents:
    """The helper thread subscribed to containerd's image events.

    Args:
        client: the containerd to listen to (its channel carries the subscription).
        on_event: told every image event, on the thread.
        on_subscribed: told `False` once subscribed, `True` after each subscription
            that follows a break, on the thread.
    """

    def __init__(
        self,
        client: ContainerdClient,
        on_event: Callable[[ImageEvent], None],
        on_subscribed: Callable[[bool], None],
    ) -> None:
        self._client = client
        self._on_event = on_event
        self._on_subscribed = on_subscribed
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._call: Any = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Subscribe now (the request is sent before this returns) and keep listening."""
        call = self._subscribe()
        self._thread = threading.Thread(
            target=self._run, args=(call,), name="nc-image-events", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Cancel the subscription and wait for the thread."""
        self._stopping.set()
        with self._lock:
            call = self._call
        if call is not None:
            call.cancel()
        if self._thread is not None and self._thread.is_alive():
            self._thread.join()

    def _subscribe(self) -> Any:
        request = events_pb2.SubscribeRequest(
            filters=[f'topic=="{kind.value}"' for kind in ImageEventKind]
        )
        call = self._client.events.Subscribe(request, wait_for_ready=True)
        with self._lock:
            self._call = call
        if self._stopping.is_set():
            call.cancel()
        return call

    def _run(self, call: Any) -> None:
        again = False
        retry = _RETRY_FIRST
        while not self._stopping.is_set():
            self._on_subscribed(again)
            try:
                for envelope in call:
                    retry = _RETRY_FIRST
                    event = image_event(envelope)
                    if event is not None:
                        self._on_event(event)
            except grpc.RpcError:
                pass  # the stream broke (or was cancelled by `stop`)
            again = True
            if not self._reconnect(retry):
                return
            retry = min(_RETRY_MAX, retry * 2)
            try:
                call = self._subscribe()
            except ValueError:  # the channel was closed under us
                return

    def _reconnect(self, retry: float) -> bool:
        """Wait out `retry` and until the channel is connected; False once stopping."""
        if self._stopping.wait(retry):
            return False
        while not self._client.wait_connected(_RETRY_MAX):
            if self._stopping.is_set():
                return False
        return not self._stopping.is_set()
