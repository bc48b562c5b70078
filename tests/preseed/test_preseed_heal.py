"""Preseeded images heal: the PreseedActor over a real containerd hears of deletions in
containerd's event stream and imports the image again; the sandbox image probe reports
what containerd says."""

from __future__ import annotations

import concurrent.futures
import dataclasses
import logging
import os
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from actors.containerd.api.client import ContainerdClient
from actors.containerd.runtimes.sandbox_image import SandboxImageState
from actors.preseed.importer.options import ImportOptions
from actors.preseed.service.actor import InitialPass, PreseedActor, PreseedSettings, StopRequested
from actors.preseed.service.pins import PINNED_LABEL, PRESEEDED_LABEL
from actors.preseed.service.preseeder import Preseeder
from actors.preseed.service.sandbox import SandboxImageProbe
from tests.support.containerd_daemon import ContainerdDaemon
from tests.support.ctr import check, gc, images
from tests.support.preseed_archives import HELLO, Archives

pytestmark = [pytest.mark.timeout(120), pytest.mark.containerd]

_WAIT = 60.0
PINS = {PINNED_LABEL: "pinned", PRESEEDED_LABEL: "k8s.io/hello.tar"}


class _Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[tuple[str, str]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append((record.levelname, record.getMessage()))


def _logger(name: str) -> tuple[logging.Logger, _Lines]:
    handler = _Lines()
    log = logging.getLogger(f"test.preseed.heal.{name}")
    log.propagate = False
    log.handlers = [handler]
    log.setLevel(logging.INFO)
    return log, handler


def _wait_for(test: Callable[[], object], what: str, timeout: float = _WAIT) -> None:
    deadline = time.monotonic() + timeout
    while not test():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


class _Healing:
    """A watching PreseedActor on `root` with hello.tar preseeded and imported."""

    def __init__(self, daemon: ContainerdDaemon, root: Path, record: Path) -> None:
        self.log, self.handler = _logger(str(id(self)))
        self.client = ContainerdClient(daemon.address)
        preseeder = Preseeder(
            self.client, options=ImportOptions(), record_path=record, log=self.log, pin=True
        )
        initial: concurrent.futures.Future[InitialPass] = concurrent.futures.Future()
        self.done: concurrent.futures.Future[str | None] = concurrent.futures.Future()
        self.ref = PreseedActor.start(
            preseeder=preseeder,
            settings=PreseedSettings(directory=str(root), watch=True, parallel=2),
            log=self.log,
            on_initial=initial.set_result,
            on_result=lambda result: None,
            done=self.done,
        )
        assert initial.result(timeout=_WAIT).failures == ()

    def messages(self, level: str | None = None) -> list[str]:
        return [text for lvl, text in list(self.handler.lines) if level in (None, lvl)]

    def stop(self) -> None:
        self.ref.tell(StopRequested())
        assert self.done.result(timeout=_WAIT) is None
        self.client.close()


@pytest.fixture
def root(tmp_path: Path, archives: Archives) -> Path:
    (tmp_path / "preseed" / "k8s.io").mkdir(parents=True)
    shutil.copy(archives.oci, tmp_path / "preseed" / "k8s.io" / "hello.tar")
    return tmp_path / "preseed"


@pytest.fixture
def healing(fresh_containerd: ContainerdDaemon, root: Path, tmp_path: Path) -> Iterator[_Healing]:
    h = _Healing(fresh_containerd, root, tmp_path / "record.json")
    yield h
    if not h.done.done():
        h.stop()


def _labels(daemon: ContainerdDaemon, name: str) -> dict[str, str] | None:
    out = daemon.ctr("images", "ls", f"name=={name}", namespace="k8s.io")
    rows = [line.split() for line in out.splitlines()[1:] if line.strip()]
    if not rows:
        return None
    text = rows[0][-1]
    found = dict(item.split("=", 1) for item in text.split(",")) if text != "-" else {}
    found.pop("io.cri-containerd.image", None)
    return found


def _imports(healing: _Healing) -> list[str]:
    """The lines of imports that sent something (the initial one, and heals)."""
    return [
        m
        for m in healing.messages()
        if m.startswith("imported preseed bundle 'k8s.io/hello.tar'") and "unchanged" not in m
    ]


WARNING = (
    f"image {HELLO!r} in namespace 'k8s.io' was deleted outside the agent; "
    "importing it again from its tarball 'k8s.io/hello.tar'"
)


def test_an_image_deleted_and_collected_is_imported_again_complete_with_its_pins(
    healing: _Healing, fresh_containerd: ContainerdDaemon
) -> None:
    assert _labels(fresh_containerd, HELLO) == PINS
    fresh_containerd.ctr("images", "rm", HELLO, namespace="k8s.io")
    gc(fresh_containerd, "k8s.io")  # its content too, as another client's GC would

    _wait_for(lambda: _labels(fresh_containerd, HELLO) is not None, "the image back")
    assert _labels(fresh_containerd, HELLO) == PINS
    assert check(fresh_containerd, "k8s.io")[HELLO].startswith("complete")
    _wait_for(lambda: len(_imports(healing)) == 2, "the second import's line")
    assert healing.messages("WARNING") == [WARNING]
    assert healing.messages("ERROR") == []


def test_images_of_other_namespaces_and_names_are_left_alone(
    healing: _Healing, fresh_containerd: ContainerdDaemon, archives: Archives
) -> None:
    fresh_containerd.ctr("images", "import", *fresh_containerd.local, str(archives.oci))
    fresh_containerd.ctr("images", "rm", HELLO)  # namespace default: not ours
    fresh_containerd.ctr("images", "tag", HELLO, "docker.io/library/other:1", namespace="k8s.io")
    fresh_containerd.ctr("images", "rm", "docker.io/library/other:1", namespace="k8s.io")
    time.sleep(1.0)  # twice what a heal takes here: nothing may have been queued

    assert images(fresh_containerd, "default") == {}
    assert healing.messages("WARNING") == []
    assert len(_imports(healing)) == 1


def test_after_containerd_restarts_the_record_is_compared_with_the_store_once(
    healing: _Healing, fresh_containerd: ContainerdDaemon
) -> None:
    fresh_containerd.restart()
    # Deleted while the subscription may still be away: its comparison finds it.
    fresh_containerd.ctr("images", "rm", HELLO, namespace="k8s.io")

    _wait_for(lambda: _labels(fresh_containerd, HELLO) == PINS, "the image back with its pins")
    _wait_for(
        lambda: (
            (
                "subscribed to containerd's image events again; comparing the import record "
                "with containerd's images"
            )
            in healing.messages()
        ),
        "the comparison",
    )
    _wait_for(lambda: WARNING in healing.messages("WARNING"), "the warning")


def test_a_deleted_image_whose_tarball_is_gone_is_not_imported_again(
    healing: _Healing, fresh_containerd: ContainerdDaemon, root: Path
) -> None:
    os.unlink(root / "k8s.io" / "hello.tar")
    _wait_for(lambda: _labels(fresh_containerd, HELLO) == {}, "the unpin")

    fresh_containerd.ctr("images", "rm", HELLO, namespace="k8s.io")
    time.sleep(1.0)  # twice what a heal takes here

    assert _labels(fresh_containerd, HELLO) is None
    assert healing.messages("WARNING") == []


# ---------------------------------------------------------------- the sandbox image probe


def test_the_probe_reports_what_containerd_says_and_only_changes(
    fresh_containerd: ContainerdDaemon, archives: Archives
) -> None:
    log, handler = _logger("probe")
    reported: list[SandboxImageState] = []
    changed = threading.Event()

    def report(state: SandboxImageState) -> None:
        reported.append(state)
        changed.set()

    with ContainerdClient(fresh_containerd.address) as client:
        probe = SandboxImageProbe(
            client, HELLO, tarball_dir="/p/k8s.io", watched=True, report=report, log=log
        )
        probe.start()
        try:
            assert changed.wait(_WAIT)
            changed.clear()
            for _ in range(5):
                probe.request()  # the same answer: nothing reported
            fresh_containerd.ctr(
                "images", "import", *fresh_containerd.local, str(archives.oci), namespace="k8s.io"
            )
            probe.request()
            assert changed.wait(_WAIT)
        finally:
            probe.stop()

    state = SandboxImageState(image=HELLO, present=False, tarball_dir="/p/k8s.io", watched=True)
    assert reported == [state, dataclasses.replace(state, present=True)]
    assert [lvl for lvl, _ in handler.lines] == ["WARNING", "INFO"]
    assert handler.lines[0][1] == state.warning
