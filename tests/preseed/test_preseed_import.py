"""import_archive against the real containerd, with ctr as the reference client."""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

import pytest

from actors.preseed import (
    ContainerdClient,
    ContainerdError,
    ImportOptions,
    PreseedError,
    import_archive,
)
from tests.support.containerd_daemon import ContainerdDaemon
from tests.support.ctr import blobs, check, gc, images, ingests, labelled_blobs, leases
from tests.support.images.blob_store import (
    BlobStore,
    layer_tar,
    named,
    write_docker_save,
    write_store_archive,
)
from tests.support.images.tools import ctr_export
from tests.support.preseed_archives import HELLO, MULTI, Archives

pytestmark = pytest.mark.timeout(120)


def _ours(daemon: ContainerdDaemon, path: Path, namespace: str, **options: object):
    with ContainerdClient(daemon.address) as client:
        return import_archive(client, path, namespace=namespace, options=ImportOptions(**options))


def _ctr(daemon: ContainerdDaemon, path: Path, namespace: str, *flags: str) -> None:
    # The reference is Go's client.Import, which the importer mirrors: ctr 2.x's default
    # goes through the Transfer API instead, which labels every manifest of an index.
    daemon.ctr(
        "images", "import", *daemon.local, "--no-unpack", *flags, str(path), namespace=namespace
    )


@pytest.mark.parametrize("kind", ["oci", "docker", "docker_raw"])
def test_an_archive_imports_the_images_blobs_and_gc_labels_ctr_imports(
    kind: str, archives: Archives, containerd: ContainerdDaemon
) -> None:
    path = getattr(archives, kind)
    _ctr(containerd, path, f"ref-{kind}")
    result = _ours(containerd, path, f"ours-{kind}")
    gc(containerd, f"ref-{kind}")
    gc(containerd, f"ours-{kind}")

    expected = {
        "oci": {HELLO},
        "docker": {HELLO, "docker.io/library/hello:2"},
        "docker_raw": {"docker.io/library/alpine:latest", "example.com/team/app:2"},
    }[kind]
    assert images(containerd, f"ours-{kind}") == images(containerd, f"ref-{kind}")
    assert set(images(containerd, f"ours-{kind}")) == expected
    assert {i.name: i.target_digest for i in result.images} == images(containerd, f"ours-{kind}")
    assert labelled_blobs(containerd, f"ours-{kind}") == labelled_blobs(containerd, f"ref-{kind}")
    assert leases(containerd, f"ours-{kind}") == [] and ingests(containerd, f"ours-{kind}") == []


def test_imported_images_are_complete_and_survive_the_lease_gc_and_a_restart(
    archives: Archives, fresh_containerd: ContainerdDaemon
) -> None:
    result = _ours(fresh_containerd, archives.docker, "ns")
    before = blobs(fresh_containerd, "ns")
    gc(fresh_containerd, "ns")
    fresh_containerd.restart()

    assert leases(fresh_containerd, "ns") == []
    assert blobs(fresh_containerd, "ns") == before
    assert len(before) == result.blobs_written == 4  # manifest, config, 2 layers
    assert check(fresh_containerd, "ns") == {
        HELLO: "complete (3/3)",
        "docker.io/library/hello:2": "complete (3/3)",
    }


def test_a_reimport_sends_no_blob_and_keeps_the_images(
    archives: Archives, fresh_containerd: ContainerdDaemon
) -> None:
    first = _ours(fresh_containerd, archives.oci, "ns")
    again = _ours(fresh_containerd, archives.oci, "ns")

    assert (first.bytes_sent > 0, first.blobs_written, first.blobs_skipped) == (True, 4, 0)
    assert (again.bytes_sent, again.blobs_written, again.blobs_skipped) == (0, 0, 4)
    assert again.images == first.images
    assert images(fresh_containerd, "ns") == {HELLO: first.images[0].target_digest}


def test_namespaces_are_isolated_and_share_content_without_resending_it(
    archives: Archives, fresh_containerd: ContainerdDaemon
) -> None:
    _ours(fresh_containerd, archives.oci, "one")
    assert images(fresh_containerd, "two") == {}

    second = _ours(fresh_containerd, archives.oci, "two")
    fresh_containerd.ctr("images", "rm", "--sync", HELLO, namespace="one")

    assert (second.bytes_sent, second.blobs_skipped) == (0, 4)
    assert images(fresh_containerd, "one") == {}
    assert check(fresh_containerd, "two") == {HELLO: "complete (3/3)"}


@pytest.mark.parametrize("kind", ["gzip", "zstd"])
def test_a_compressed_archive_imports_the_same_images_as_the_plain_one(
    kind: str, archives: Archives, containerd: ContainerdDaemon
) -> None:
    plain = _ours(containerd, archives.oci, f"plain-{kind}")
    packed = _ours(containerd, getattr(archives, kind), f"packed-{kind}")

    assert packed.images == plain.images
    assert check(containerd, f"packed-{kind}") == {HELLO: "complete (3/3)"}


def test_a_multi_platform_image_imports_the_host_platform_by_default_like_ctr(
    archives: Archives, containerd: ContainerdDaemon
) -> None:
    _ctr(containerd, archives.multi, "multi-ref")
    result = _ours(containerd, archives.multi, "multi-host")
    gc(containerd, "multi-ref")
    gc(containerd, "multi-host")

    assert (
        images(containerd, "multi-host")
        == images(containerd, "multi-ref")
        == {MULTI: result.images[0].target_digest}
    )
    assert labelled_blobs(containerd, "multi-host") == labelled_blobs(containerd, "multi-ref")
    assert len(blobs(containerd, "multi-host")) == 4  # index, amd64 manifest, config, layer


def test_all_platforms_imports_every_platform_like_ctr(
    archives: Archives, containerd: ContainerdDaemon
) -> None:
    _ctr(containerd, archives.multi, "multi-all-ref", "--all-platforms")
    _ours(containerd, archives.multi, "multi-all", all_platforms=True)
    gc(containerd, "multi-all-ref")
    gc(containerd, "multi-all")

    assert labelled_blobs(containerd, "multi-all") == labelled_blobs(containerd, "multi-all-ref")
    assert len(blobs(containerd, "multi-all")) == 10


def test_a_ctr_export_lacking_other_platforms_needs_skip_missing_for_all_platforms(
    archives: Archives, fresh_containerd: ContainerdDaemon, tmp_path: Path
) -> None:
    _ctr(fresh_containerd, archives.multi, "src")
    exported = ctr_export(fresh_containerd, "src", tmp_path / "export.tar", MULTI)
    fresh_containerd.ctr("images", "rm", "--sync", MULTI, namespace="src")

    with pytest.raises(PreseedError) as info:
        _ours(fresh_containerd, exported, "dst", all_platforms=True)
    result = _ours(fresh_containerd, exported, "dst", all_platforms=True, skip_missing=True)

    assert str(info.value).startswith("failed to import preseed image 'dst/export.tar': manifest ")
    assert str(info.value).endswith(" is missing from the archive")
    assert [i.name for i in result.images] == [MULTI]
    assert len(result.warnings) == 2  # the arm64 and arm/v7 manifests
    assert check(fresh_containerd, "dst") == {MULTI: "complete (2/2)"}
    assert leases(fresh_containerd, "dst") == [] and ingests(fresh_containerd, "dst") == []


def test_labels_are_set_on_created_and_updated_images(
    archives: Archives, fresh_containerd: ContainerdDaemon
) -> None:
    _ours(fresh_containerd, archives.oci, "ns")
    _ours(fresh_containerd, archives.oci, "ns", labels={"io.cri-containerd.pinned": "pinned"})
    _ours(fresh_containerd, archives.docker, "ns", labels={"team": "a"})

    rows = fresh_containerd.ctr("images", "ls", namespace="ns").splitlines()[1:]
    labels = {row.split()[0]: row.split()[-1] for row in rows}
    assert labels == {
        HELLO: "io.cri-containerd.pinned=pinned,team=a",
        "docker.io/library/hello:2": "team=a",
    }


def test_an_unnamed_manifest_is_imported_under_its_digest_with_a_warning(
    archives: Archives, fresh_containerd: ContainerdDaemon
) -> None:
    result = _ours(fresh_containerd, archives.unnamed, "ns")
    gc(fresh_containerd, "ns")

    (image,) = result.images
    assert image.name == f"import@{image.target_digest}"
    assert result.warnings == (
        f"manifest {image.target_digest} has no image name; imported as {image.name!r}",
    )
    assert check(fresh_containerd, "ns") == {image.name: "complete (2/2)"}


def test_a_umoci_layout_imports_under_its_ref_name_as_the_go_client_names_it(
    archives: Archives, fresh_containerd: ContainerdDaemon
) -> None:
    result = _ours(fresh_containerd, archives.umoci_tar, "ns")

    assert [i.name for i in result.images] == ["latest"]
    assert check(fresh_containerd, "ns") == {"latest": "complete (3/3)"}


def test_a_bad_archive_changes_no_image_and_leaves_no_lease_or_ingest(
    archives: Archives, fresh_containerd: ContainerdDaemon, tmp_path: Path
) -> None:
    good = _ours(fresh_containerd, archives.oci, "ns")
    store = BlobStore(tmp_path)
    big = layer_tar(tmp_path / "big.tar", {"data": os.urandom(3 << 20)})
    manifest = store.image([big])
    other = store.image([layer_tar(tmp_path / "small.tar", {"x": b"y"})])
    layer_digest = next(d for d, c in store.blobs.items() if c == big)
    broken = tmp_path / "broken-big.tar"
    shutil.copy(big, broken)
    with open(broken, "r+b") as f:
        f.seek(2 << 20)
        f.write(b"corrupt")
    store.blobs[layer_digest] = broken
    bad = write_store_archive(
        tmp_path / "bad.tar",
        store,
        [named(other, "docker.io/library/other:1"), named(manifest, HELLO)],
    )

    with pytest.raises(PreseedError) as info:
        _ours(fresh_containerd, bad, "ns")

    assert str(info.value) == (
        f"failed to import preseed image 'ns/bad.tar': blob {layer_digest} does not match "
        "its digest"
    )
    assert images(fresh_containerd, "ns") == {HELLO: good.images[0].target_digest}
    assert leases(fresh_containerd, "ns") == [] and ingests(fresh_containerd, "ns") == []


def test_an_existing_image_is_updated_to_the_archives_target(
    archives: Archives, fresh_containerd: ContainerdDaemon
) -> None:
    _ours(fresh_containerd, archives.docker, "ns")
    result = _ours(fresh_containerd, archives.oci, "ns")

    assert images(fresh_containerd, "ns") == {
        HELLO: result.images[0].target_digest,
        "docker.io/library/hello:2": images(fresh_containerd, "ns")["docker.io/library/hello:2"],
    }
    assert result.images[0].media_type == "application/vnd.oci.image.manifest.v1+json"


def test_a_missing_socket_is_a_clear_containerd_error(archives: Archives, tmp_path: Path) -> None:
    with ContainerdClient(str(tmp_path / "nothing.sock"), timeout=2) as client:
        with pytest.raises(PreseedError) as info:
            import_archive(client, archives.oci, namespace="ns")
        with pytest.raises(ContainerdError) as ready:
            client.wait_ready(0.3)

    assert str(info.value) == (
        f"failed to import preseed image 'ns/hello-oci.tar': containerd "
        f"socket {str(tmp_path / 'nothing.sock')!r} does not exist"
    )
    assert str(ready.value) == (
        f"containerd at {str(tmp_path / 'nothing.sock')!r} did not answer "
        f"within 0.3s: containerd socket "
        f"{str(tmp_path / 'nothing.sock')!r} does not exist"
    )


def test_progress_reports_bytes_done_of_the_total_and_ends_complete(
    archives: Archives, fresh_containerd: ContainerdDaemon
) -> None:
    calls: list[tuple[int, int]] = []
    with ContainerdClient(fresh_containerd.address) as client:
        import_archive(
            client,
            archives.docker,
            namespace="ns",
            progress=lambda done, total: calls.append((done, total)),
        )

    total = calls[-1][1]
    assert calls[-1] == (total, total) and total > 0
    assert all(t == total and 0 <= d <= total for d, t in calls)
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)


def test_an_import_reclaims_the_lease_and_ingests_of_an_import_that_died(
    archives: Archives, fresh_containerd: ContainerdDaemon
) -> None:
    from actors.preseed.importer.leases import OWNER_LABEL
    from actors.preseed.importer.writer import write_request
    from messages.containerd.services.content.v1 import content_pb2
    from messages.containerd.services.leases.v1 import leases_pb2

    dead = "node-containerd-preseed-0123456789abcdef"
    mine = "someone-elses-lease"
    with ContainerdClient(fresh_containerd.address) as client:
        md = client.metadata("ns")
        client.leases.Create(
            leases_pb2.CreateRequest(id=dead, labels={OWNER_LABEL: "another-boot:1:1"}), metadata=md
        )
        client.leases.Create(leases_pb2.CreateRequest(id=mine), metadata=md)
        stat = content_pb2.WriteContentRequest(
            action=content_pb2.STAT, ref=f"{dead}-x", total=10
        ).SerializeToString()
        replies = client.write_stream(
            iter([stat, write_request(0, b"half")]), metadata=client.metadata("ns", dead)
        )
        assert [r.offset for r in replies] == [0, 4, 4]
        assert ingests(fresh_containerd, "ns") == [f"{dead}-x"]

        result = import_archive(client, archives.oci, namespace="ns")

    assert [i.name for i in result.images] == [HELLO]
    assert leases(fresh_containerd, "ns") == [mine]
    assert ingests(fresh_containerd, "ns") == []


def test_a_docker_layer_containerd_has_compressed_is_referenced_compressed_like_ctr(
    fresh_containerd: ContainerdDaemon, tmp_path: Path
) -> None:
    import gzip as gz

    layer = layer_tar(tmp_path / "layer.tar", {"file": os.urandom(5000)})
    packed = tmp_path / "layer.tar.gz"
    packed.write_bytes(gz.compress(layer.read_bytes(), mtime=0))
    store = BlobStore(tmp_path)
    pulled = store.image([packed], layer_type="application/vnd.oci.image.layer.v1.tar+gzip")
    oci = write_store_archive(tmp_path / "pulled.tar", store, [named(pulled, "example.com/p:1")])
    docker = write_docker_save(tmp_path / "saved.tar", [(["saved:1"], [layer], "amd64")])
    raw = "sha256:" + hashlib.sha256(layer.read_bytes()).hexdigest()
    gzipped = "sha256:" + hashlib.sha256(packed.read_bytes()).hexdigest()
    for namespace in ("ref", "ours"):
        _ctr(fresh_containerd, oci, namespace)
        fresh_containerd.ctr(
            "content", "label", gzipped, f"containerd.io/uncompressed={raw}", namespace=namespace
        )

    _ctr(fresh_containerd, docker, "ref")
    result = _ours(fresh_containerd, docker, "ours")
    gc(fresh_containerd, "ref")
    gc(fresh_containerd, "ours")

    assert images(fresh_containerd, "ours") == images(fresh_containerd, "ref")
    assert raw not in blobs(fresh_containerd, "ours")
    assert result.blobs_skipped >= 1  # the gzipped layer, already there
