"""preseed_dir: the `<dir>/<namespace>/<file>` walk, failure isolation and the import record."""

from __future__ import annotations

import logging
import os
import shutil
import socket
from pathlib import Path

import pytest

from actors.preseed import ContainerdClient, ImportOptions, preseed_dir
from tests.support.containerd_daemon import ContainerdDaemon
from tests.support.ctr import images, ingests, leases
from tests.support.images.blob_store import BlobStore, layer_tar, named, write_store_archive
from tests.support.preseed_archives import HELLO, Archives

pytestmark = pytest.mark.timeout(120)


def _walk(daemon: ContainerdDaemon, root: Path, **kwargs: object):
    with ContainerdClient(daemon.address) as client:
        return preseed_dir(client, root, **kwargs)  # type: ignore[arg-type]


def test_every_namespace_directory_is_imported_and_odd_entries_are_warned_about_as_in_go(
    archives: Archives, fresh_containerd: ContainerdDaemon, tmp_path: Path
) -> None:
    root = tmp_path / "preseed"
    (root / "k8s.io" / "nested").mkdir(parents=True)
    (root / "default").mkdir()
    (root / "Bad ns").mkdir()
    shutil.copy(archives.oci, root / "k8s.io" / "hello.tar")
    shutil.copy(archives.docker_raw, root / "default" / "raw.tar")
    shutil.copy(archives.oci, root / "Bad ns" / "x.tar")
    shutil.copy(archives.oci, root / "top.tar")
    (root / "default" / "junk.tar").write_bytes(b"definitely not a tar archive" * 40)
    os.mkfifo(root / "default" / "fifo.tar")
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(root / "k8s.io" / "sock.tar"))

    report = _walk(fresh_containerd, root)
    sock.close()

    assert report.warnings == (
        "directory 'nested' found in preseed namespaced folder, ignoring",
        "non-directory 'top.tar' found in preseed folder, ignoring",
    )
    assert dict(report.failures) == {
        "Bad ns/x.tar": "failed to import preseed image 'Bad ns/x.tar': namespace 'Bad ns' is "
        "invalid: it must be letters and digits, separated by single '.', '_' "
        "or '-'",
        "default/fifo.tar": "failed to import preseed image 'default/fifo.tar': not a regular "
        "file (a fifo)",
        "default/junk.tar": "failed to import preseed image 'default/junk.tar': not a tar archive",
        "k8s.io/sock.tar": "failed to import preseed image 'k8s.io/sock.tar': not a regular file "
        "(a socket)",
    }
    assert [(r.namespace, [i.name for i in r.images]) for r in report.results] == [
        ("default", ["docker.io/library/alpine:latest", "example.com/team/app:2"]),
        ("k8s.io", [HELLO]),
    ]
    assert set(images(fresh_containerd, "k8s.io")) == {HELLO}
    assert set(images(fresh_containerd, "default")) == {
        "docker.io/library/alpine:latest",
        "example.com/team/app:2",
    }
    assert set(fresh_containerd.ctr("namespaces", "ls", "-q").split()) == {"default", "k8s.io"}


def test_the_record_skips_unchanged_files_and_reimports_changed_or_vanished_images(
    archives: Archives, fresh_containerd: ContainerdDaemon, tmp_path: Path
) -> None:
    root = tmp_path / "preseed"
    (root / "k8s.io").mkdir(parents=True)
    shutil.copy(archives.oci, root / "k8s.io" / "a.tar")
    shutil.copy(archives.docker_raw, root / "k8s.io" / "b.tar")
    record = tmp_path / "state" / "preseed.json"

    first = _walk(fresh_containerd, root, record_path=record)
    second = _walk(fresh_containerd, root, record_path=record)
    shutil.copy(archives.docker, root / "k8s.io" / "a.tar")  # changed file
    fresh_containerd.ctr("images", "rm", "--sync", "example.com/team/app:2", namespace="k8s.io")
    third = _walk(fresh_containerd, root, record_path=record)
    fourth = _walk(
        fresh_containerd,
        root,
        record_path=record,
        options=ImportOptions(labels={"io.cri-containerd.pinned": "pinned"}),
    )

    assert [r.unchanged for r in first.results] == [False, False]
    assert [(r.unchanged, r.bytes_sent) for r in second.results] == [(True, 0), (True, 0)]
    assert [r.unchanged for r in third.results] == [False, False]
    assert [i.name for i in third.results[0].images] == [HELLO, "docker.io/library/hello:2"]
    assert [r.unchanged for r in fourth.results] == [False, False]  # options changed
    assert set(images(fresh_containerd, "k8s.io")) == {
        HELLO,
        "docker.io/library/hello:2",
        "docker.io/library/alpine:latest",
        "example.com/team/app:2",
    }


def test_a_fresh_containerd_gets_everything_again_despite_the_record(
    archives: Archives,
    fresh_containerd: ContainerdDaemon,
    containerd: ContainerdDaemon,
    tmp_path: Path,
) -> None:
    root = tmp_path / "preseed"
    (root / "pre-b").mkdir(parents=True)
    shutil.copy(archives.oci, root / "pre-b" / "a.tar")
    record = tmp_path / "record.json"

    _walk(fresh_containerd, root, record_path=record)
    again = _walk(containerd, root, record_path=record)  # another store: "after a reboot"

    assert [r.unchanged for r in again.results] == [False]
    assert set(images(containerd, "pre-b")) == {HELLO}


def test_a_bad_file_is_isolated_and_its_record_entry_dropped(
    archives: Archives, fresh_containerd: ContainerdDaemon, tmp_path: Path
) -> None:
    root = tmp_path / "preseed"
    (root / "k8s.io").mkdir(parents=True)
    store = BlobStore(tmp_path)
    manifest = store.image([layer_tar(tmp_path / "l.tar", {"x": b"y"})])
    missing_layer = next(d for d, c in store.blobs.items() if isinstance(c, Path))
    write_store_archive(
        root / "k8s.io" / "bad.tar",
        store,
        [named(manifest, "docker.io/x/bad:1")],
        omit=[missing_layer],
    )
    shutil.copy(archives.oci, root / "k8s.io" / "good.tar")
    record = tmp_path / "record.json"

    report = _walk(fresh_containerd, root, record_path=record)
    again = _walk(fresh_containerd, root, record_path=record)

    assert report.failures == (
        (
            "k8s.io/bad.tar",
            (
                f"failed to import preseed image 'k8s.io/bad.tar': blob "
                f"{missing_layer} is missing from the archive"
            ),
        ),
    )
    assert [r.unchanged for r in again.results] == [True]
    assert again.failures == report.failures
    assert set(images(fresh_containerd, "k8s.io")) == {HELLO}
    assert leases(fresh_containerd, "k8s.io") == [] and ingests(fresh_containerd, "k8s.io") == []


def test_every_file_logs_one_line_naming_its_images_and_namespace(
    archives: Archives,
    fresh_containerd: ContainerdDaemon,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    root = tmp_path / "preseed"
    (root / "k8s.io").mkdir(parents=True)
    shutil.copy(archives.docker, root / "k8s.io" / "hello.tar")
    log = logging.getLogger("test.preseed")

    with caplog.at_level(logging.INFO, logger="test.preseed"):
        report = _walk(fresh_containerd, root, log=log)

    lines = [r.getMessage() for r in caplog.records]
    assert report.ok
    assert len(lines) == 1
    assert lines[0].startswith(
        "imported preseed bundle 'k8s.io/hello.tar' into namespace 'k8s.io': "
        "docker.io/library/hello:1, docker.io/library/hello:2 ("
    )


def test_progress_is_logged_every_interval_with_bytes_total_and_rate(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from actors.preseed.service.preseeder import _Progress

    now = [100.0]
    progress = _Progress(
        logging.getLogger("test.progress"), "k8s.io/big.tar", 5.0, clock=lambda: now[0]
    )
    with caplog.at_level(logging.INFO, logger="test.progress"):
        for t, done in (
            (101, 10_000_000),
            (105, 150_000_000),
            (106, 160_000_000),
            (110, 300_000_000),
            (111, 400_000_000),
        ):
            now[0] = t
            progress(done, 400_000_000)

    assert [r.getMessage() for r in caplog.records] == [
        "importing 'k8s.io/big.tar': 150/400 MB (37%), 30 MB/s",
        "importing 'k8s.io/big.tar': 300/400 MB (75%), 30 MB/s",
    ]
