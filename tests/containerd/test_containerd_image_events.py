"""containerd's image events through `ImageEvents`, on a real containerd: every kind, every
namespace, and a fresh subscription after containerd restarted."""

from __future__ import annotations

import queue
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from actors.containerd.api.client import ContainerdClient
from actors.containerd.api.events import ImageEvent, ImageEventKind, ImageEvents, image_event
from messages.containerd.events import image_pb2
from messages.containerd.services.events.v1 import events_pb2
from tests.support.containerd_daemon import ContainerdDaemon
from tests.support.images import small_image, write_oci_archive

pytestmark = [pytest.mark.containerd, pytest.mark.timeout(120)]

LIVE = "docker.io/library/events-live:1"
NAME = "docker.io/library/events:1"
CREATE, UPDATE, DELETE = ImageEventKind.CREATE, ImageEventKind.UPDATE, ImageEventKind.DELETE


class _Heard:
    """What the subscription told, in order."""

    def __init__(self) -> None:
        self.items: queue.Queue[ImageEvent | bool] = queue.Queue()

    def next(self, timeout: float = 20.0) -> ImageEvent | bool:
        return self.items.get(timeout=timeout)

    def until(self, wanted: ImageEvent | bool, timeout: float = 20.0) -> list[ImageEvent | bool]:
        """Everything heard up to and including `wanted`."""
        seen = []
        deadline = time.monotonic() + timeout
        while not seen or seen[-1] != wanted:
            seen.append(self.items.get(timeout=max(0.01, deadline - time.monotonic())))
        return seen


@pytest.fixture
def heard(fresh_containerd: ContainerdDaemon) -> Iterator[_Heard]:
    h = _Heard()
    client = ContainerdClient(fresh_containerd.address)
    events = ImageEvents(client, h.items.put, h.items.put)
    events.start()
    try:
        yield h
    finally:
        events.stop()
        client.close()


def _archive(tmp_path: Path) -> Path:
    write_oci_archive(tmp_path / "e.tar", [small_image(NAME, seed=5)])
    return tmp_path / "e.tar"


def test_an_image_imported_and_deleted_is_heard_with_its_namespace_as_it_happens(
    heard: _Heard, fresh_containerd: ContainerdDaemon, tmp_path: Path
) -> None:
    assert heard.next() is False  # subscribed
    fresh_containerd.ctr("images", "import", *fresh_containerd.local, str(_archive(tmp_path)))
    assert heard.until(ImageEvent("default", CREATE, NAME))[-1] == ImageEvent(
        "default", CREATE, NAME
    )

    fresh_containerd.ctr("images", "rm", NAME, namespace="k8s.io", check=False)  # not there
    fresh_containerd.ctr("images", "rm", NAME)
    deleted = time.monotonic()
    seen = heard.until(ImageEvent("default", DELETE, NAME))
    assert time.monotonic() - deleted < 1.0
    assert all(e.namespace == "default" for e in seen if isinstance(e, ImageEvent))


def test_after_containerd_restarts_the_subscription_comes_back_and_says_so(
    heard: _Heard, fresh_containerd: ContainerdDaemon, tmp_path: Path
) -> None:
    assert heard.next() is False
    # The subscription is live (an event came through it) before containerd goes away: a
    # restart during the first Subscribe would just connect it to the new containerd.
    live = tmp_path / "live"
    live.mkdir()
    write_oci_archive(live / "e.tar", [small_image(LIVE, seed=6)])
    fresh_containerd.ctr(
        "images", "import", *fresh_containerd.local, str(live / "e.tar"), namespace="k8s.io"
    )
    heard.until(ImageEvent("k8s.io", CREATE, LIVE))
    fresh_containerd.restart()
    assert heard.until(True, timeout=30)[-1] is True  # subscribed again, after a break

    fresh_containerd.ctr(
        "images", "import", *fresh_containerd.local, str(_archive(tmp_path)), namespace="k8s.io"
    )
    assert ImageEvent("k8s.io", CREATE, NAME) in heard.until(ImageEvent("k8s.io", CREATE, NAME))


def _envelope(topic: str, payload: bytes, namespace: str = "k8s.io") -> events_pb2.Envelope:
    envelope = events_pb2.Envelope(namespace=namespace, topic=topic)
    envelope.event.type_url = "containerd.events.ImageDelete"
    envelope.event.value = payload
    return envelope


def test_envelopes_of_other_topics_or_without_a_name_are_not_image_events() -> None:
    delete = image_pb2.ImageDelete(name=NAME).SerializeToString()
    assert image_event(_envelope("/images/delete", delete)) == ImageEvent("k8s.io", DELETE, NAME)
    assert image_event(_envelope("/containers/delete", delete)) is None
    assert image_event(_envelope("/images/delete", b"")) is None
    assert image_event(_envelope("/images/delete", b"\xff\xff")) is None
    update = image_pb2.ImageUpdate(name=NAME, labels={"a": "b"}).SerializeToString()
    assert image_event(_envelope("/images/update", update)) == ImageEvent("k8s.io", UPDATE, NAME)
