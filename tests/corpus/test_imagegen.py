"""The image writer's own tests: its output is what real tools (ctr, skopeo) accept."""

from __future__ import annotations

import gzip
import json
import subprocess
import tarfile
import zlib
from pathlib import Path

import pytest
import zstandard

from tests.support import images as ig
from tests.support.containerd_daemon import ContainerdDaemon

pytestmark = pytest.mark.timeout(120)


def _ctr_images(containerd: ContainerdDaemon, namespace: str) -> dict[str, str]:
    """name → target digest, from `ctr images ls`."""
    rows = containerd.ctr("images", "ls", namespace=namespace).splitlines()[1:]
    return {row.split()[0]: row.split()[2] for row in rows}


def _ctr_check(containerd: ContainerdDaemon, namespace: str) -> dict[str, str]:
    """name → status column (e.g. `complete (3/3)`), from `ctr images check`."""
    rows = containerd.ctr("images", "check", namespace=namespace).splitlines()[1:]
    return {row.split()[0]: " ".join(row.split()[3:5]) for row in rows}


def _skopeo_inspect(ref: str) -> dict[str, object]:
    out = subprocess.run(
        ["skopeo", "inspect", ref], capture_output=True, text=True, timeout=60, check=True
    )
    doc: dict[str, object] = json.loads(out.stdout)
    return doc


def test_the_same_specs_and_seeds_write_byte_identical_archives(tmp_path: Path) -> None:
    def write(name: str, seed: int) -> bytes:
        img = ig.small_image("docker.io/library/same:1", seed=seed, layers=2, compression="gzip")
        ig.write_oci_archive(tmp_path / name, [img, ig.multi_platform_image("x.io/m:1")])
        return (tmp_path / name).read_bytes()

    assert write("a.tar", 7) == write("b.tar", 7)
    assert write("c.tar", 8) != write("a.tar", 7)


def test_ctr_imports_every_kind_of_oci_archive_and_checks_it_complete(
    tmp_path: Path, containerd: ContainerdDaemon
) -> None:
    host = str(ig.host_platform())
    other = "linux/s390x" if host != "linux/s390x" else "linux/amd64"
    images: list[ig.ImageSpec | ig.IndexSpec] = [
        ig.small_image("docker.io/library/plain:1", seed=1),
        ig.small_image("docker.io/library/layered:1", seed=2, layers=4),
        ig.small_image("docker.io/library/gzipped:1", seed=3, compression="gzip"),
        ig.multi_platform_image("docker.io/library/multi:1", [host, other], include=[host]),
    ]
    names = ig.write_oci_archive(tmp_path / "all.tar", images).images
    containerd.ctr(
        "images",
        "import",
        *containerd.local,
        "--no-unpack",
        str(tmp_path / "all.tar"),
        namespace="ig1",
    )

    assert _ctr_images(containerd, "ig1") == names
    check = _ctr_check(containerd, "ig1")
    assert check == {
        "docker.io/library/plain:1": "complete (2/2)",
        "docker.io/library/layered:1": "complete (5/5)",
        "docker.io/library/gzipped:1": "complete (2/2)",
        "docker.io/library/multi:1": "complete (2/2)",  # the host manifest's config + layer
    }


def test_a_multi_platform_export_omits_only_the_other_platforms_blobs(tmp_path: Path) -> None:
    spec = ig.multi_platform_image(
        "x.io/m:1", ["linux/amd64", "linux/arm64/v8"], include=["linux/arm64/v8"]
    )
    ig.write_oci_archive(tmp_path / "m.tar", [spec])
    with tarfile.open(tmp_path / "m.tar") as tar:
        present = {n.rsplit("/", 1)[1] for n in tar.getnames() if n.startswith("blobs/sha256/")}
    arm, amd = (ig.build_image(i) for i in reversed(spec.images))
    assert {b.hex for b in arm.blobs} <= present
    assert not {b.hex for b in amd.blobs} & present


def test_ctr_imports_a_docker_archive_under_every_tag(
    tmp_path: Path, containerd: ContainerdDaemon
) -> None:
    layers = ig.small_image(None, seed=4, layers=2).layers
    tags = ig.write_docker_archive(
        tmp_path / "d.tar", [ig.DockerImageSpec(("alpine:latest", "quay.io/team/tool:2"), layers)]
    )
    containerd.ctr(
        "images",
        "import",
        *containerd.local,
        "--no-unpack",
        str(tmp_path / "d.tar"),
        namespace="ig2",
    )

    assert list(tags) == ["alpine:latest", "quay.io/team/tool:2"]
    assert sorted(_ctr_images(containerd, "ig2")) == [
        "docker.io/library/alpine:latest",
        "quay.io/team/tool:2",
    ]
    assert set(_ctr_check(containerd, "ig2").values()) == {"complete (3/3)"}


def test_skopeo_reads_the_oci_archive_with_its_manifest_and_layers(tmp_path: Path) -> None:
    img = ig.small_image("docker.io/library/sk:1", seed=5, layers=2, compression="gzip")
    names = ig.write_oci_archive(tmp_path / "sk.tar", [img]).images
    doc = _skopeo_inspect(f"oci-archive:{tmp_path / 'sk.tar'}")
    assert doc["Digest"] == names["docker.io/library/sk:1"]
    assert doc["Layers"] == [layer.blob.digest for layer in img.layers]
    assert (doc["Os"], doc["Architecture"]) == (img.platform.os, img.platform.architecture)


def test_skopeo_reads_the_docker_archive_with_its_layers(tmp_path: Path) -> None:
    layers = ig.small_image(None, seed=6, layers=3).layers
    ig.write_docker_archive(tmp_path / "d.tar", [ig.DockerImageSpec(("sk:2",), layers)])
    doc = _skopeo_inspect(f"docker-archive:{tmp_path / 'd.tar'}")
    assert doc["Layers"] == [layer.diff_id for layer in layers]


def test_a_random_layer_holds_exactly_n_incompressible_bytes(tmp_path: Path) -> None:
    size = 3 * (1 << 20) + 17
    in_memory = ig.random_layer(size, seed=9)
    spooled = ig.random_layer(size, seed=9, spool_dir=tmp_path / "spool")
    assert spooled.blob.path is not None and spooled.blob.path.stat().st_size == spooled.blob.size
    assert (spooled.blob.digest, spooled.blob.size) == (in_memory.blob.digest, in_memory.blob.size)
    with tarfile.open(fileobj=in_memory.blob.open()) as tar:
        member = tar.getmember("data/random-9.bin")
        content = tar.extractfile(member).read()  # type: ignore[union-attr]
    assert member.size == size and content == ig.random_bytes(size, 9)
    assert len(zlib.compress(content, 9)) > size
    assert len(zstandard.ZstdCompressor(level=19).compress(content)) > size


def test_a_gzip_random_layer_keeps_the_tar_digest_as_diff_id(tmp_path: Path) -> None:
    plain = ig.random_layer(100_000, seed=2)
    packed = ig.random_layer(100_000, seed=2, compression="gzip")
    assert packed.blob.media_type == ig.OCI_LAYER_GZIP
    assert packed.diff_id == plain.diff_id == plain.blob.digest
    assert gzip.decompress(packed.blob.read()) == plain.blob.read()


def test_many_layer_image_splits_the_total_size_over_its_layers(tmp_path: Path) -> None:
    img = ig.many_layer_image("x.io/many:1", total_size=40_003, count=4, seed=1, spool_dir=tmp_path)
    sizes = []
    for layer in img.layers:
        with tarfile.open(fileobj=layer.blob.open()) as tar:
            sizes.append(sum(m.size for m in tar.getmembers()))
    assert sizes == [10_001, 10_001, 10_001, 10_000]
    assert len({layer.blob.digest for layer in img.layers}) == 4


@pytest.mark.parametrize("kind,magic", [("gzip", b"\x1f\x8b"), ("zstd", b"\x28\xb5\x2f\xfd")])
def test_compress_writes_a_stream_that_decompresses_to_the_archive(
    tmp_path: Path, kind: str, magic: bytes
) -> None:
    ig.write_oci_archive(tmp_path / "a.tar", [ig.small_image("x.io/c:1", seed=3)])
    out = ig.compress(tmp_path / "a.tar", kind)  # type: ignore[arg-type]
    packed = out.read_bytes()
    restored = (
        gzip.decompress(packed)
        if kind == "gzip"
        else zstandard.ZstdDecompressor().decompressobj().decompress(packed)
    )
    assert out.name == "a.tar" + (".gz" if kind == "gzip" else ".zst")
    assert packed[: len(magic)] == magic
    assert restored == (tmp_path / "a.tar").read_bytes()
