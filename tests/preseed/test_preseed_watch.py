"""The long-running preseed: PreseedActor over a real containerd, its watch, queue and pins."""

from __future__ import annotations

import concurrent.futures
import logging
import os
import shutil
import socket
import stat
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from actors.containerd.api.client import ContainerdClient
from actors.preseed.importer.options import ImportOptions
from actors.preseed.service.actor import InitialPass, PreseedActor, PreseedSettings, StopRequested
from actors.preseed.service.pins import PINNED_LABEL, PRESEEDED_LABEL
from actors.preseed.service.preseeder import Preseeder
from tests.support.containerd_daemon import ContainerdDaemon
from tests.support.ctr import gc, images
from tests.support.images.blob_store import BlobStore, layer_tar, named, write_store_archive
from tests.support.preseed_archives import HELLO, Archives

pytestmark = [pytest.mark.timeout(180), pytest.mark.containerd]

_WAIT = 90.0


class _Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[tuple[str, str]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append((record.levelname, record.getMessage()))


class _Running:
    """A PreseedActor on `root`, with its log lines collected."""

    def __init__(
        self,
        daemon: ContainerdDaemon,
        root: Path,
        record: Path,
        *,
        parallel: int = 2,
        watch: bool = True,
        pin: bool = True,
        sandbox_image: str | None = None,
        stall: float = 30.0,
    ) -> None:
        self.handler = _Lines()
        self.log = logging.getLogger(f"test.preseed.watch.{id(self)}")
        self.log.propagate = False
        self.log.addHandler(self.handler)
        self.log.setLevel(logging.INFO)
        self.client = ContainerdClient(daemon.address)
        preseeder = Preseeder(
            self.client,
            options=ImportOptions(),
            record_path=record,
            log=self.log,
            pin=pin,
            sandbox_image=sandbox_image,
        )
        self.initial: concurrent.futures.Future[InitialPass] = concurrent.futures.Future()
        self.done: concurrent.futures.Future[str | None] = concurrent.futures.Future()
        self.ref = PreseedActor.start(
            preseeder=preseeder,
            settings=PreseedSettings(
                directory=str(root), watch=watch, parallel=parallel, stall=stall
            ),
            log=self.log,
            on_initial=self.initial.set_result,
            on_result=lambda result: None,
            done=self.done,
        )
        assert self.initial.result(timeout=_WAIT).failures == ()

    def messages(self, level: str | None = None) -> list[str]:
        return [text for lvl, text in list(self.handler.lines) if level in (None, lvl)]

    def wait_for(self, test: Callable[[], bool], what: str) -> None:
        deadline = time.monotonic() + _WAIT
        while not test():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}; log: {self.messages()}")
            time.sleep(0.05)

    def imported(self, file: str) -> list[str]:
        return [m for m in self.messages() if m.startswith(f"imported preseed bundle {file!r}")]

    def stop(self) -> None:
        self.ref.tell(StopRequested())
        assert self.done.result(timeout=_WAIT) is None
        self.client.close()


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "preseed" / "k8s.io").mkdir(parents=True)
    return tmp_path / "preseed"


@pytest.fixture
def running(fresh_containerd: ContainerdDaemon, root: Path, tmp_path: Path) -> Iterator[_Running]:
    r = _Running(fresh_containerd, root, tmp_path / "record.json")
    yield r
    if not r.done.done():
        r.stop()


def _labels(daemon: ContainerdDaemon, name: str) -> dict[str, str]:
    """The image's labels, without the `io.cri-containerd.image=managed` CRI adds to all."""
    out = daemon.ctr("images", "ls", f"name=={name}", namespace="k8s.io")
    rows = [line.split() for line in out.splitlines()[1:] if line.strip()]
    assert len(rows) == 1, out
    text = rows[0][-1]
    found = dict(item.split("=", 1) for item in text.split(",")) if text != "-" else {}
    assert found.pop("io.cri-containerd.image", "managed") == "managed"
    return found


def test_a_tarball_copied_slowly_is_imported_once_after_the_copy_ends(
    archives: Archives, running: _Running, root: Path, fresh_containerd: ContainerdDaemon
) -> None:
    data = archives.oci.read_bytes()
    target = root / "k8s.io" / "slow.tar"
    pieces = 8
    step = len(data) // pieces + 1
    for i in range(pieces):
        with open(target, "ab") as f:
            f.write(data[i * step : (i + 1) * step])
        time.sleep(2.0 / pieces)

    running.wait_for(lambda: running.imported("k8s.io/slow.tar") != [], "the import")
    time.sleep(1.0)  # a second import would follow within the quiet period

    assert len(running.imported("k8s.io/slow.tar")) == 1
    assert running.messages("ERROR") == []
    assert images(fresh_containerd, "k8s.io") == {HELLO: images(fresh_containerd, "k8s.io")[HELLO]}


def test_a_truncated_copy_that_is_then_completed_is_imported_and_not_failed(
    archives: Archives, running: _Running, root: Path
) -> None:
    data = archives.oci.read_bytes()
    target = root / "k8s.io" / "cut.tar"
    target.write_bytes(data[: len(data) // 2])
    running.wait_for(
        lambda: any(
            m.startswith("waiting for preseed file 'k8s.io/cut.tar'") for m in running.messages()
        ),
        "the wait line",
    )
    with open(target, "ab") as f:
        f.write(data[len(data) // 2 :])

    running.wait_for(lambda: running.imported("k8s.io/cut.tar") != [], "the import")
    assert running.messages("ERROR") == []


def test_a_hundred_tarballs_dropped_at_once_are_all_imported(
    running: _Running, root: Path, tmp_path: Path, fresh_containerd: ContainerdDaemon
) -> None:
    staging = tmp_path / "staging"
    staging.mkdir()
    store = BlobStore(tmp_path / "blobs")
    layer = layer_tar(tmp_path / "l.tar", {"f": b"shared layer"})
    manifest = store.image([layer])
    for i in range(100):
        write_store_archive(staging / f"img{i:03}.tar", store, [named(manifest, f"x.io/img:{i}")])
    for i in range(100):
        os.rename(staging / f"img{i:03}.tar", root / "k8s.io" / f"img{i:03}.tar")

    running.wait_for(
        lambda: all(running.imported(f"k8s.io/img{i:03}.tar") for i in range(100)), "100 imports"
    )
    assert running.messages("ERROR") == []
    names = set(images(fresh_containerd, "k8s.io"))
    assert {f"x.io/img:{i}" for i in range(100)} <= names


def test_removing_a_tarball_clears_its_pins_but_keeps_its_images(
    archives: Archives, running: _Running, root: Path, fresh_containerd: ContainerdDaemon
) -> None:
    shutil.copy(archives.oci, root / "k8s.io" / "hello.tar")
    running.wait_for(lambda: running.imported("k8s.io/hello.tar") != [], "the import")
    assert _labels(fresh_containerd, HELLO) == {
        PINNED_LABEL: "pinned",
        PRESEEDED_LABEL: "k8s.io/hello.tar",
    }

    os.unlink(root / "k8s.io" / "hello.tar")
    running.wait_for(
        lambda: (
            f"unpinned image {HELLO!r} in namespace 'k8s.io': its tarball is gone"
            in running.messages()
        ),
        "the unpin",
    )
    assert _labels(fresh_containerd, HELLO) == {}
    assert HELLO in images(fresh_containerd, "k8s.io")


def test_a_restart_neither_reimports_nor_unpins(
    archives: Archives, fresh_containerd: ContainerdDaemon, root: Path, tmp_path: Path
) -> None:
    shutil.copy(archives.oci, root / "k8s.io" / "hello.tar")
    first = _Running(fresh_containerd, root, tmp_path / "record.json")
    first.stop()
    assert len(first.imported("k8s.io/hello.tar")) == 1

    second = _Running(fresh_containerd, root, tmp_path / "record.json")
    second.stop()

    assert second.imported("k8s.io/hello.tar") == [
        f"imported preseed bundle 'k8s.io/hello.tar' into namespace 'k8s.io': {HELLO} "
        "(unchanged, not imported again)"
    ]
    assert not any(m.startswith("unpinned") for m in second.messages())
    assert _labels(fresh_containerd, HELLO)[PINNED_LABEL] == "pinned"


def test_pins_survive_gc_and_only_images_we_labelled_are_unpinned(
    archives: Archives, running: _Running, root: Path, fresh_containerd: ContainerdDaemon
) -> None:
    fresh_containerd.ctr(
        "images", "import", "--no-unpack", str(archives.docker_raw), namespace="k8s.io"
    )
    other = "docker.io/library/alpine:latest"
    fresh_containerd.ctr("images", "label", other, f"{PINNED_LABEL}=pinned", namespace="k8s.io")
    shutil.copy(archives.oci, root / "k8s.io" / "hello.tar")
    running.wait_for(lambda: running.imported("k8s.io/hello.tar") != [], "the import")

    gc(fresh_containerd, "k8s.io")
    assert _labels(fresh_containerd, HELLO)[PINNED_LABEL] == "pinned"

    os.unlink(root / "k8s.io" / "hello.tar")
    running.wait_for(lambda: _labels(fresh_containerd, HELLO) == {}, "the unpin")
    assert _labels(fresh_containerd, other) == {PINNED_LABEL: "pinned"}


def test_without_the_watch_the_actor_stops_after_the_initial_pass_and_pins_the_sandbox_image(
    archives: Archives, fresh_containerd: ContainerdDaemon, root: Path, tmp_path: Path
) -> None:
    shutil.copy(archives.oci, root / "k8s.io" / "hello.tar")
    shutil.copy(archives.docker_raw, root / "k8s.io" / "raw.tar")
    r = _Running(
        fresh_containerd,
        root,
        tmp_path / "record.json",
        watch=False,
        pin=False,
        sandbox_image=HELLO,
    )
    assert r.done.result(timeout=_WAIT) is None
    r.client.close()

    assert r.messages()[-1].startswith("initial preseed finished in ")
    assert r.messages()[-1].endswith(
        ": 2 imported, 0 unchanged, 0 failed, 0 waiting to be complete; not watching"
    )
    assert _labels(fresh_containerd, HELLO) == {
        PINNED_LABEL: "pinned",
        PRESEEDED_LABEL: "k8s.io/hello.tar",
    }
    assert _labels(fresh_containerd, "docker.io/library/alpine:latest") == {}


#: The bound within which whatever appears in the preseed directory gets its verdict:
#: the quiet period, an import or a refusal, and this machine's load.
_VERDICT_S = 20.0


def _verdicts(running: _Running, names: list[str]) -> dict[str, list[str]]:
    """Every line naming one of `names` (a display form, with its namespace)."""
    return {
        name: [m for m in running.messages() if f"'{name}'" in m and "importing" not in m]
        for name in names
    }


def test_everything_that_appears_at_runtime_gets_one_verdict_within_a_bound(
    archives: Archives, fresh_containerd: ContainerdDaemon, root: Path, tmp_path: Path
) -> None:
    """Issue 20 item 9: links were never imported, special files never got a line."""
    running = _Running(fresh_containerd, root, tmp_path / "record.json", stall=2.0)
    try:
        ns = root / "k8s.io"
        outside = tmp_path / "outside"
        outside.mkdir()
        shutil.copy(archives.oci, outside / "hello.tar")
        shutil.copy(archives.docker_raw, outside / "raw.tar")
        started = time.monotonic()
        (ns / "symlink.tar").symlink_to(outside / "hello.tar")
        os.link(outside / "raw.tar", ns / "hardlink.tar")
        os.mkfifo(ns / "fifo.tar")
        os.mknod(ns / "device.tar", 0o600 | stat.S_IFCHR, os.makedev(1, 3))
        (ns / "dangling.tar").symlink_to(tmp_path / "nothing-here.tar")
        (ns / "to-dir.tar").symlink_to(outside)
        (ns / "loop.tar").symlink_to(ns / "loop.tar")
        (ns / "to-dev-zero.tar").symlink_to("/dev/zero")
        with socket.socket(socket.AF_UNIX) as sock:
            sock.bind(str(ns / "socket.tar"))
            (ns / "subdir").mkdir()
            (root / "stray.tar").write_bytes(b"x")
            data = archives.docker.read_bytes()
            writer = open(ns / "open.tar", "wb")
            writer.write(data[:1000])
            writer.flush()
            want = {
                "k8s.io/symlink.tar": "imported preseed bundle 'k8s.io/symlink.tar' ",
                "k8s.io/hardlink.tar": "imported preseed bundle 'k8s.io/hardlink.tar' ",
                "k8s.io/fifo.tar": "failed to import preseed image 'k8s.io/fifo.tar': "
                "not a regular file (a fifo)",
                "k8s.io/device.tar": "failed to import preseed image 'k8s.io/device.tar': "
                "not a regular file (a character device)",
                "k8s.io/socket.tar": "failed to import preseed image 'k8s.io/socket.tar': "
                "not a regular file (a socket)",
                "k8s.io/dangling.tar": "failed to import preseed image 'k8s.io/dangling.tar': "
                "cannot open: No such file or directory",
                "k8s.io/to-dir.tar": "failed to import preseed image 'k8s.io/to-dir.tar': "
                "not a regular file (a directory)",
                "k8s.io/loop.tar": "failed to import preseed image 'k8s.io/loop.tar': "
                "cannot open: Too many levels of symbolic links",
                "k8s.io/to-dev-zero.tar": "failed to import preseed image "
                "'k8s.io/to-dev-zero.tar': not a regular file (a character device)",
                "subdir": "directory 'subdir' found in preseed namespaced folder, ignoring",
                "stray.tar": "non-directory 'stray.tar' found in preseed folder, ignoring",
                "k8s.io/open.tar": "preseed file 'k8s.io/open.tar' has been open for writing "
                "for 2s without a change; it is imported once its writer closes it",
            }

            def all_in() -> bool:
                found = _verdicts(running, list(want))
                return all(any(m.startswith(w) for m in found[n]) for n, w in want.items())

            deadline = started + _VERDICT_S
            while not all_in() and time.monotonic() < deadline:
                time.sleep(0.05)
            took = time.monotonic() - started
            writer.write(data[1000:])
            writer.close()
        found = _verdicts(running, list(want))
        assert all_in(), {
            n: found[n] for n, w in want.items() if not any(m.startswith(w) for m in found[n])
        }
        assert took < _VERDICT_S
        for name, line in want.items():
            assert [m for m in found[name] if not m.startswith(line)] == [], (name, found[name])
            assert len(found[name]) == 1, (name, found[name])
        running.wait_for(lambda: running.imported("k8s.io/open.tar") != [], "its import")
    finally:
        running.stop()
