"""Unpacking into the snapshotter, and ambiguous archives refused whole, against a real containerd."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from actors.preseed import ContainerdClient, ImportOptions, PreseedError, import_archive
from tests.support.containerd_daemon import ContainerdDaemon
from tests.support.ctr import blobs, check, gc, images, leases
from tests.support.images.blob_store import (
    BlobStore,
    layer_tar,
    named,
    write_docker_save,
    write_store_archive,
)
from tests.support.preseed_archives import HELLO, Archives

pytestmark = [pytest.mark.timeout(120), pytest.mark.containerd]


def _snapshots(daemon: ContainerdDaemon) -> dict[str, tuple[str, str]]:
    """`ctr snapshots ls` as {key: (parent, kind)}."""
    out = daemon.ctr("snapshots", "ls", namespace="k8s.io")
    rows = [line.split() for line in out.splitlines()[1:] if line.strip()]
    return {row[0]: (row[1] if len(row) == 3 else "", row[-1]) for row in rows}


def test_unpack_commits_the_chain_keeps_it_after_gc_and_a_reimport_skips_it(
    archives: Archives, fresh_containerd: ContainerdDaemon
) -> None:
    with ContainerdClient(fresh_containerd.address) as client:
        first = import_archive(
            client, archives.oci, namespace="k8s.io", options=ImportOptions(unpack=True)
        )
        gc(fresh_containerd, "k8s.io")
        second = import_archive(
            client, archives.oci, namespace="k8s.io", options=ImportOptions(unpack=True)
        )

    snapshots = _snapshots(fresh_containerd)
    assert (first.layers_unpacked, first.layers_present) == (2, 0)
    assert (second.layers_unpacked, second.layers_present) == (0, 2)
    assert len(snapshots) == 2
    (bottom,) = [k for k, (parent, _) in snapshots.items() if parent == ""]
    (top,) = [k for k, (parent, _) in snapshots.items() if parent == bottom]
    assert {kind for _, kind in snapshots.values()} == {"Committed"}
    assert check(fresh_containerd, "k8s.io")[HELLO] == "complete (3/3)"
    assert leases(fresh_containerd, "k8s.io") == []
    config_labels = fresh_containerd.ctr("content", "ls", namespace="k8s.io")
    assert f"containerd.io/gc.ref.snapshot.overlayfs={top}" in config_labels


def _docker_ambiguous(work: Path) -> Path:
    one = layer_tar(work / "one.tar", {"a": b"one"})
    two = layer_tar(work / "two.tar", {"a": b"two"})
    return write_docker_save(
        work / "ambiguous-docker.tar", [(["app:1"], [one], "amd64"), (["app:1"], [two], "amd64")]
    )


def _oci_ambiguous(work: Path) -> tuple[Path, str, str]:
    store = BlobStore(work / "blobs")
    first = store.image([layer_tar(work / "x.tar", {"x": b"x"})])
    second = store.image([layer_tar(work / "y.tar", {"y": b"y"})])
    out = write_store_archive(
        work / "ambiguous-oci.tar", store, [named(first, "x.io/app:1"), named(second, "x.io/app:1")]
    )
    return out, str(first["digest"]), str(second["digest"])


def _member_twice(work: Path, archive: Path) -> Path:
    out = work / "twice.tar"
    with tarfile.open(archive) as src, tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as dst:
        for member in src.getmembers():
            dst.addfile(member, src.extractfile(member) if member.isfile() else None)
        info = tarfile.TarInfo("index.json")
        info.size = 2
        dst.addfile(info, io.BytesIO(b"{}"))
    return out


def test_ambiguous_archives_are_refused_whole_naming_both_candidates(
    archives: Archives, fresh_containerd: ContainerdDaemon, tmp_path: Path
) -> None:
    oci, first, second = _oci_ambiguous(tmp_path)
    docker = _docker_ambiguous(tmp_path)
    twice = _member_twice(tmp_path, archives.oci)
    errors = {}
    with ContainerdClient(fresh_containerd.address) as client:
        for path in (oci, docker, twice):
            with pytest.raises(PreseedError) as info:
                import_archive(client, path, namespace="default")
            errors[path.name] = str(info.value)

    assert errors["ambiguous-oci.tar"] == (
        "failed to import preseed image 'default/ambiguous-oci.tar': image name 'x.io/app:1' "
        f"is given twice with different targets: {first} and {second}"
    )
    configs = [e for e in errors["ambiguous-docker.tar"].split("'") if e.endswith(".json")]
    assert errors["ambiguous-docker.tar"] == (
        "failed to import preseed image 'default/ambiguous-docker.tar': image name "
        "'docker.io/library/app:1' is given twice with different targets: "
        f"config {configs[0]!r} and config {configs[1]!r}"
    )
    assert errors["twice.tar"].startswith(
        "failed to import preseed image 'default/twice.tar': member 'index.json' appears twice "
        "with different content: sha256:"
    )
    assert errors["twice.tar"].endswith(
        "and sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a "
        f"(2 bytes at offset {twice.stat().st_size - 2048})"
    )
    assert images(fresh_containerd, "default") == {}
    assert blobs(fresh_containerd, "default") == set()
