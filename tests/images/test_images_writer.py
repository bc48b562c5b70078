"""The OCI image writer (`actors.images`): deterministic layers, documents, layouts and tarballs
that the project's own reader, skopeo and umoci read."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

from actors.images import (
    FileEntry,
    ImageSpec,
    IndexSpec,
    Platform,
    RuntimeConfig,
    TarMember,
    layer_from_tar,
    make_layer,
    oci_layout,
    tar_chunks,
    write_oci_archive,
    write_oci_layout,
    write_tar,
)
from actors.images.image import OCI_CONFIG, OCI_INDEX, OCI_MANIFEST
from actors.images.layer import OCI_LAYER, OCI_LAYER_GZIP
from actors.preseed.archive.archive import open_archive
from actors.preseed.archive.oci import read_oci_layout

NAME = "localhost/test/hello:1"


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def entries() -> list[FileEntry]:
    return [
        FileEntry(path="/etc/hello.txt", data=b"hello\n"),
        FileEntry(path="/bin/tool", data=b"\x7fELF" * 300, mode=0o755),
        FileEntry(path="/bin/sh", kind="symlink", target="tool"),
    ]


def hello() -> ImageSpec:
    layer = make_layer(entries())
    config = RuntimeConfig(entrypoint=("/bin/tool",), cmd=("--x",), env=("A=1",), user="1:2")
    return ImageSpec(name=NAME, layers=(layer,), platform=Platform("linux", "amd64"), config=config)


def test_a_layer_holds_its_entries_in_path_order_with_parents_owned_by_root_at_time_zero() -> None:
    layer = make_layer(entries())
    assert layer.blob.media_type == OCI_LAYER
    data = layer.blob.read()
    assert layer.blob.digest == layer.diff_id == sha(data) and layer.blob.size == len(data)
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        members = [(m.name, m.type, oct(m.mode), m.mtime, m.uid, m.gid, m.uname, m.gname)
                   for m in tar.getmembers()]  # fmt: skip
        assert tar.extractfile("etc/hello.txt").read() == b"hello\n"  # type: ignore[union-attr]
    assert members == [
        ("bin", tarfile.DIRTYPE, "0o755", 0, 0, 0, "", ""),
        ("bin/sh", tarfile.SYMTYPE, "0o644", 0, 0, 0, "", ""),
        ("bin/tool", tarfile.REGTYPE, "0o755", 0, 0, 0, "", ""),
        ("etc", tarfile.DIRTYPE, "0o755", 0, 0, 0, "", ""),
        ("etc/hello.txt", tarfile.REGTYPE, "0o644", 0, 0, 0, "", ""),
    ]


def test_the_same_entries_in_any_order_give_the_same_layer_bytes() -> None:
    assert make_layer(entries()).blob.read() == make_layer(reversed(entries())).blob.read()


def test_a_file_on_disk_is_streamed_into_the_layer_and_a_spooled_layer_is_named_by_digest(
    tmp_path: Path,
) -> None:
    source = tmp_path / "big.bin"
    source.write_bytes(bytes(range(256)) * 5000)
    in_memory = make_layer([FileEntry(path="/big.bin", source=source)])
    spooled = make_layer([FileEntry(path="/big.bin", source=source)], spool_dir=tmp_path / "s")
    assert spooled.blob.data is None and spooled.blob.path == tmp_path / "s" / spooled.blob.hex
    assert spooled.blob.read() == in_memory.blob.read()
    assert sorted(p.name for p in (tmp_path / "s").iterdir()) == [spooled.blob.hex]


def test_a_gzip_layer_keeps_the_uncompressed_digest_as_its_diff_id() -> None:
    plain = make_layer(entries())
    packed = make_layer(entries(), compression="gzip")
    assert packed.blob.media_type == OCI_LAYER_GZIP
    assert gzip.decompress(packed.blob.read()) == plain.blob.read()
    assert packed.diff_id == plain.diff_id and packed.blob.digest != plain.blob.digest
    assert packed.blob.read() == make_layer(entries(), compression="gzip").blob.read()


def test_a_layer_from_a_given_tar_stream_is_the_layer_of_the_same_entries() -> None:
    tar = make_layer(entries()).blob.read()
    pieces = (tar[i : i + 1000] for i in range(0, len(tar), 1000))
    given = layer_from_tar(pieces, compression="gzip", level=1)
    assert given == make_layer(entries(), compression="gzip", level=1)
    assert given.blob.read() != make_layer(entries(), compression="gzip", level=9).blob.read()


def test_tar_members_are_written_as_given_with_fixed_owner_and_time(tmp_path: Path) -> None:
    members = [
        TarMember("/abs/../odd", b"odd"),
        TarMember.directory("d"),
        TarMember("d/link", type=tarfile.LNKTYPE, linkname="/abs/../odd"),
        TarMember("d/dev", type=tarfile.CHRTYPE, mode=0o600),
    ]
    write_tar(tmp_path / "m.tar", members)
    data = (tmp_path / "m.tar").read_bytes()
    assert data == b"".join(tar_chunks(members))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.tar"]
    with tarfile.open(tmp_path / "m.tar") as tar:
        got = [(m.name, m.type, m.linkname, oct(m.mode), m.mtime, m.uid, m.uname)
               for m in tar.getmembers()]  # fmt: skip
        odd = tar.extractfile("/abs/../odd")
        assert odd is not None and odd.read() == b"odd"
    assert got == [
        ("/abs/../odd", tarfile.REGTYPE, "", "0o644", 0, 0, ""),
        ("d", tarfile.DIRTYPE, "", "0o755", 0, 0, ""),
        ("d/link", tarfile.LNKTYPE, "/abs/../odd", "0o644", 0, 0, ""),
        ("d/dev", tarfile.CHRTYPE, "", "0o600", 0, 0, ""),
    ]


def test_config_and_manifest_hold_no_time_and_sorted_keys() -> None:
    layout = oci_layout([hello()])
    blobs = {b.media_type: b for b in layout.blobs}
    config = blobs[OCI_CONFIG].read()
    assert json.loads(config) == {
        "architecture": "amd64",
        "os": "linux",
        "config": {"Entrypoint": ["/bin/tool"], "Cmd": ["--x"], "Env": ["A=1"], "User": "1:2"},
        "rootfs": {"type": "layers", "diff_ids": [make_layer(entries()).diff_id]},
    }
    assert config == json.dumps(json.loads(config), sort_keys=True, separators=(",", ":")).encode()
    manifest = json.loads(blobs[OCI_MANIFEST].read())
    assert manifest["config"] == {
        "mediaType": OCI_CONFIG,
        "digest": sha(config),
        "size": len(config),
    }
    assert json.loads(layout.index) == {
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [
            {
                "mediaType": OCI_MANIFEST,
                "digest": blobs[OCI_MANIFEST].digest,
                "size": blobs[OCI_MANIFEST].size,
                "annotations": {
                    "io.containerd.image.name": NAME,
                    "org.opencontainers.image.ref.name": NAME,
                },
            }
        ],
    }
    assert layout.images == {NAME: blobs[OCI_MANIFEST].digest}


def test_an_archive_is_the_same_bytes_every_time_with_members_in_a_fixed_order(
    tmp_path: Path,
) -> None:
    first = write_oci_archive(tmp_path / "a.tar", [hello()])
    write_oci_archive(tmp_path / "b.tar", [hello()])
    stream = io.BytesIO()
    write_oci_archive(stream, [hello()])
    data = (tmp_path / "a.tar").read_bytes()
    assert data == (tmp_path / "b.tar").read_bytes() == stream.getvalue()
    assert (tmp_path / "a.tar").stat().st_mode & 0o777 == 0o644
    with tarfile.open(tmp_path / "a.tar") as tar:
        names = tar.getnames()
        assert {(m.mtime, m.uid, m.gid, m.uname, m.gname) for m in tar} == {(0, 0, 0, "", "")}
    assert names == [
        "oci-layout",
        "index.json",
        "blobs",
        "blobs/sha256",
        *(f"blobs/sha256/{b.hex}" for b in sorted(first.blobs, key=lambda b: b.digest)),
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.tar", "b.tar"]  # no temporary left


def test_the_projects_own_reader_finds_every_blob_of_an_archive_by_its_digest(
    tmp_path: Path,
) -> None:
    layout = write_oci_archive(tmp_path / "a.tar", [hello()])
    with open_archive(tmp_path / "a.tar") as archive:
        read = read_oci_layout(archive)
        assert read.index_digest == sha(layout.index)
        for blob in layout.blobs:
            entry = archive.index.lookup(f"blobs/sha256/{blob.hex}")
            assert entry is not None and sha(archive.read_member(entry)) == blob.digest


def test_a_multi_platform_index_writes_only_the_included_platforms(tmp_path: Path) -> None:
    amd = ImageSpec(name=None, layers=(make_layer(entries()),), platform=Platform("linux", "amd64"))
    arm_layer = make_layer([FileEntry(path="/arm", data=b"arm")])
    arm = ImageSpec(name=None, layers=(arm_layer,), platform=Platform("linux", "arm", "v7"))
    spec = IndexSpec(name=NAME, images=(amd, arm), include=(Platform("linux", "amd64"),))
    layout = oci_layout([spec])
    top = json.loads(layout.index)["manifests"][0]
    assert top["mediaType"] == OCI_INDEX and layout.images == {NAME: top["digest"]}
    index = json.loads(next(b for b in layout.blobs if b.digest == top["digest"]).read())
    platforms = [m["platform"] for m in index["manifests"]]
    assert platforms == [
        {"architecture": "amd64", "os": "linux"},
        {"architecture": "arm", "os": "linux", "variant": "v7"},
    ]
    assert arm_layer.blob.digest not in {b.digest for b in layout.blobs}


@pytest.mark.skipif(shutil.which("skopeo") is None, reason="skopeo is not installed")
def test_skopeo_reads_a_layout_directory_and_an_archive_by_name(tmp_path: Path) -> None:
    write_oci_layout(tmp_path / "dir", [hello()])
    write_oci_archive(tmp_path / "a.tar", [hello()])
    for ref in (f"oci:{tmp_path / 'dir'}:{NAME}", f"oci-archive:{tmp_path / 'a.tar'}:{NAME}"):
        r = subprocess.run(
            ["skopeo", "inspect", "--config", ref], capture_output=True, text=True, timeout=60
        )
        assert r.returncode == 0, r.stderr
        assert json.loads(r.stdout)["config"]["Entrypoint"] == ["/bin/tool"]
