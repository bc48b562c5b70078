"""Pure parts of the importer: names, platforms, labels, Go JSON, the tar index, opening files."""

from __future__ import annotations

import gzip
import io
import os
import socket
import tarfile
from pathlib import Path

import pytest
import zstandard

from actors.images.platforms import Matcher, Platform, normalize, parse_platform
from actors.preseed.archive.archive import open_archive
from actors.preseed.archive.descriptors import Descriptor, check_digest, gc_labels
from actors.preseed.archive.gojson import go_json
from actors.preseed.archive.names import normalize_docker_ref, oci_ref_name, validate_namespace
from actors.preseed.archive.tarindex import index_tar
from actors.preseed.errors import ArchiveError, IncompleteArchive, PreseedError


@pytest.mark.parametrize(
    ("ref", "normalized"),
    [
        ("alpine", "docker.io/library/alpine:latest"),
        ("alpine:3.19", "docker.io/library/alpine:3.19"),
        ("team/app:1", "docker.io/team/app:1"),
        ("index.docker.io/library/busybox", "docker.io/library/busybox:latest"),
        ("example.com/a/b:2", "example.com/a/b:2"),
        ("localhost:5000/x", "localhost:5000/x:latest"),
        ("localhost/x:1", "localhost/x:1"),
        ("alpine:1@sha256:" + "a" * 64, "docker.io/library/alpine@sha256:" + "a" * 64),
    ],
)
def test_docker_refs_normalize_as_containerds_importer_does(ref: str, normalized: str) -> None:
    assert normalize_docker_ref(ref) == normalized


@pytest.mark.parametrize(
    ("ref", "message"),
    [
        ("Alpine", "invalid image reference 'Alpine': repository name must be lowercase"),
        (
            "a" * 64,
            (f"invalid image reference {'a' * 64!r}: cannot be a 64-character hexadecimal string"),
        ),
        ("alpine:", "invalid image reference 'alpine:'"),
    ],
)
def test_invalid_docker_refs_are_refused_naming_the_ref(ref: str, message: str) -> None:
    with pytest.raises(ArchiveError) as info:
        normalize_docker_ref(ref)
    assert str(info.value) == message


def test_the_oci_ref_name_is_the_tag_or_the_digest_of_a_normalized_name() -> None:
    assert oci_ref_name("docker.io/library/alpine:latest") == "latest"
    assert oci_ref_name("localhost:5000/x:1") == "1"
    assert oci_ref_name("docker.io/library/a@sha256:" + "b" * 64) == "@sha256:" + "b" * 64


@pytest.mark.parametrize("name", ["k8s.io", "default", "a-b_c.d", "A1", "x" * 76])
def test_namespaces_containerd_accepts_are_accepted(name: str) -> None:
    validate_namespace(name)


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("", "namespace must not be empty"),
        ("x" * 77, f"namespace {'x' * 77!r} is longer than 76 characters"),
        (
            "Bad ns",
            (
                "namespace 'Bad ns' is invalid: it must be letters and digits, separated by "
                "single '.', '_' or '-'"
            ),
        ),
        (
            "-x",
            (
                "namespace '-x' is invalid: it must be letters and digits, separated by single "
                "'.', '_' or '-'"
            ),
        ),
        (
            "a..b",
            (
                "namespace 'a..b' is invalid: it must be letters and digits, separated by single "
                "'.', '_' or '-'"
            ),
        ),
    ],
)
def test_namespaces_containerd_refuses_are_refused(name: str, message: str) -> None:
    with pytest.raises(ValueError) as info:
        validate_namespace(name)
    assert str(info.value) == message


def test_platforms_normalize_go_spellings() -> None:
    assert normalize(Platform("linux", "x86_64")) == Platform("linux", "amd64")
    assert normalize(Platform("Linux", "aarch64", "v8")) == Platform("linux", "arm64")
    assert normalize(Platform("linux", "arm")) == Platform("linux", "arm", "v7")
    assert normalize(Platform("", "armhf")) == Platform("linux", "arm", "v7")
    assert parse_platform("linux/arm/v6") == Platform("linux", "arm", "v6")


def test_a_platform_matcher_accepts_what_the_platform_can_run_as_containerds_only() -> None:
    amd64 = Matcher(Platform("linux", "amd64"))
    arm64 = Matcher(Platform("linux", "arm64"))
    accepted = [
        str(p)
        for p in (
            Platform("linux", "amd64"),
            Platform("linux", "386"),
            Platform("linux", "arm64"),
            Platform("linux", "arm", "v7"),
            Platform("windows", "amd64"),
        )
        if amd64.match(p)
    ]
    assert accepted == ["linux/amd64", "linux/386"]
    assert arm64.match(Platform("linux", "arm", "v5")) and not arm64.match(
        Platform("linux", "amd64")
    )
    assert Matcher(None).match(Platform("plan9", "mips"))


def test_gc_labels_are_the_ones_containerds_client_sets() -> None:
    kids = [
        Descriptor("application/vnd.oci.image.config.v1+json", "sha256:" + "c" * 64, 1),
        Descriptor("application/vnd.oci.image.layer.v1.tar+gzip", "sha256:" + "1" * 64, 1),
        Descriptor("application/vnd.docker.image.rootfs.diff.tar", "sha256:" + "2" * 64, 1),
        Descriptor("application/vnd.oci.image.manifest.v1+json", "sha256:" + "3" * 64, 1),
        Descriptor("application/vnd.oci.image.index.v1+json", "sha256:" + "4" * 64, 1),
        Descriptor("application/x-unknown", "sha256:" + "5" * 64, 1),
    ]
    assert gc_labels(kids) == {
        "containerd.io/gc.ref.content.config": "sha256:" + "c" * 64,
        "containerd.io/gc.ref.content.l.0": "sha256:" + "1" * 64,
        "containerd.io/gc.ref.content.l.1": "sha256:" + "2" * 64,
        "containerd.io/gc.ref.content.m.0": "sha256:" + "3" * 64,
        "containerd.io/gc.ref.content.0": "sha256:" + "4" * 64,
        "containerd.io/gc.ref.content.1": "sha256:" + "5" * 64,
    }


@pytest.mark.parametrize(
    ("digest", "message"),
    [
        ("md5:" + "a" * 32, f"digest {'md5:' + 'a' * 32!r} uses an unsupported algorithm 'md5'"),
        ("sha256:" + "A" * 64, f"digest {'sha256:' + 'A' * 64!r} is malformed"),
        ("sha256:abc", "digest 'sha256:abc' is malformed"),
        (5, "digest 5 is malformed"),
    ],
)
def test_bad_digests_are_refused(digest: object, message: str) -> None:
    with pytest.raises(ArchiveError) as info:
        check_digest(digest)
    assert str(info.value) == message


def test_go_json_is_compact_ordered_and_escapes_like_go() -> None:
    doc = {"b": [1, None, True], "a": 'x<y>&\u2028\x01\n"\\é'}
    assert (
        go_json(doc)
        == '{"b":[1,null,true],"a":"x\\u003cy\\u003e\\u0026\\u2028\\u0001\\n\\"\\\\é"}'.encode()
    )


def _tar(entries: list[tuple[tarfile.TarInfo, bytes]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in entries:
            info.size = len(data) if info.isreg() else 0
            tar.addfile(info, io.BytesIO(data) if info.isreg() else None)
    return buf.getvalue()


def _entry(name: str, kind: bytes = tarfile.REGTYPE, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = link
    return info


def _index(tmp_path: Path, data: bytes) -> object:
    path = tmp_path / "t.tar"
    path.write_bytes(data)
    fd = os.open(path, os.O_RDONLY)
    try:
        return index_tar(fd, len(data))
    finally:
        os.close(fd)


def test_the_tar_index_maps_cleaned_names_and_resolves_links_inside(tmp_path: Path) -> None:
    long_name = "blobs/" + "d" * 200
    data = _tar(
        [
            (_entry("./index.json"), b"{}"),
            (_entry("blobs", tarfile.DIRTYPE), b""),
            (_entry(long_name), b"long"),
            (_entry("a/layer.tar", tarfile.SYMTYPE, "../" + long_name), b""),
            (_entry("hard", tarfile.LNKTYPE, "index.json"), b""),
        ]
    )
    index = _index(tmp_path, data)
    assert sorted(index.files) == [long_name, "index.json"]  # type: ignore[attr-defined]
    entry = index.lookup("a/layer.tar")  # type: ignore[attr-defined]
    assert (entry.name, data[entry.offset : entry.offset + entry.size]) == (long_name, b"long")
    assert index.lookup("hard").name == "index.json"  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        ([(_entry("../evil"), b"x")], "entry '../evil' escapes the archive"),
        ([(_entry("a/../../evil"), b"x")], "entry 'a/../../evil' escapes the archive"),
        ([(_entry("/etc/passwd"), b"x")], "entry '/etc/passwd' has an absolute path"),
        (
            [(_entry("l", tarfile.SYMTYPE, "../../etc/passwd"), b"")],
            "symlink 'l' points out of the archive ('../../etc/passwd')",
        ),
        (
            [(_entry("l", tarfile.SYMTYPE, "/etc/passwd"), b"")],
            "symlink 'l' points out of the archive ('/etc/passwd')",
        ),
        (
            [(_entry("h", tarfile.LNKTYPE, "../x"), b"")],
            "hard link 'h' points out of the archive ('../x')",
        ),
        (
            [(_entry("h", tarfile.LNKTYPE, "nothing"), b"")],
            "hard link 'h' points to 'nothing', which is not an earlier file",
        ),
        ([(_entry("null", tarfile.CHRTYPE), b"")], "entry 'null' is a character device"),
        ([(_entry("disk", tarfile.BLKTYPE), b"")], "entry 'disk' is a block device"),
        ([(_entry("pipe", tarfile.FIFOTYPE), b"")], "entry 'pipe' is a fifo"),
        (
            [(_entry("index.json"), b"1"), (_entry("./index.json"), b"2")],
            "member 'index.json' appears twice with different content: "
            "sha256:6b86b273ff34fce19d6b804eff5a3f5747ada4eaa22f1d49c01e52ddb7875b4b "
            "(1 bytes at offset 512) and "
            "sha256:d4735e3a265e16eee03f59718b9b5d03019c07d8b6c51f90da3a666eec13ab35 "
            "(1 bytes at offset 1536)",
        ),
    ],
)
def test_unsafe_or_odd_tar_entries_are_refused_naming_the_entry(
    tmp_path: Path, entries: list[tuple[tarfile.TarInfo, bytes]], message: str
) -> None:
    with pytest.raises(ArchiveError) as info:
        _index(tmp_path, _tar(entries))
    assert str(info.value) == message


def test_a_file_that_is_not_a_tar_or_is_truncated_is_refused(tmp_path: Path) -> None:
    data = _tar([(_entry("big"), b"x" * 5000)])
    with pytest.raises(ArchiveError) as info:
        _index(tmp_path, b"this is not a tar archive".ljust(1024, b"!"))
    assert str(info.value) == "not a tar archive"
    with pytest.raises(IncompleteArchive) as info:
        _index(tmp_path, data[:2048])
    assert str(info.value) == "archive is truncated at offset 2048"
    with pytest.raises(IncompleteArchive) as info:
        _index(tmp_path, data[: 512 + 5120])
    assert str(info.value) == (
        "archive is truncated at offset 5632: it ends without its end-of-archive blocks"
    )


def test_a_member_repeated_with_the_same_bytes_is_refused_too_naming_both(tmp_path: Path) -> None:
    with pytest.raises(ArchiveError) as info:
        _index(tmp_path, _tar([(_entry("a"), b"same"), (_entry("./a"), b"same")]))
    digest = "sha256:0967115f2813a3541eaef77de9d9d5773f1c0c04314b0bbfe4ff3b3b1c55b5d5"
    assert str(info.value) == (
        f"member 'a' appears twice: {digest} (4 bytes at offset 512) and "
        f"{digest} (4 bytes at offset 1536)"
    )


def test_fifos_sockets_directories_and_empty_files_are_refused_without_hanging(
    tmp_path: Path,
) -> None:
    os.mkfifo(tmp_path / "fifo")
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(tmp_path / "sock"))
    (tmp_path / "empty").write_bytes(b"")
    (tmp_path / "dir").mkdir()
    found = {}
    for name in ("fifo", "sock", "empty", "dir", "absent"):
        with pytest.raises(ArchiveError) as info:
            open_archive(tmp_path / name)
        found[name] = str(info.value)
    sock.close()
    assert found == {
        "fifo": "not a regular file (a fifo)",
        "sock": "not a regular file (a socket)",
        "empty": "file is empty",
        "dir": "not a regular file (a directory)",
        "absent": "cannot open: No such file or directory",
    }


def test_compressed_archives_open_and_corrupt_ones_are_refused(tmp_path: Path) -> None:
    data = _tar([(_entry("index.json"), b"{}" * 1000)])
    gz = gzip.compress(data)
    zst = zstandard.ZstdCompressor().compress(data)
    cases = {
        "ok.gz": gz,
        "ok.zst": zst,
        "trunc.gz": gz[:-20],
        "trunc.zst": zst[:-5],
        "junk.gz": gz + b"junk",
        "bad.zst": zst[:4] + b"\xff" * 20,
    }
    found = {}
    for name, content in cases.items():
        (tmp_path / name).write_bytes(content)
        try:
            with open_archive(tmp_path / name, temp_dir=str(tmp_path)) as archive:
                found[name] = (archive.compression, sorted(archive.index.files))
        except PreseedError as e:
            found[name] = str(e)
    assert found == {
        "ok.gz": ("gzip", ["index.json"]),
        "ok.zst": ("zstd", ["index.json"]),
        "trunc.gz": "corrupt gzip stream: unexpected end of data",
        "trunc.zst": "corrupt zstd stream: unexpected end of data",
        "junk.gz": "corrupt gzip stream: trailing garbage after the data",
        "bad.zst": found["bad.zst"]
        if str(found["bad.zst"]).startswith("corrupt zstd stream: ")
        else "corrupt zstd stream: …",
    }
    assert sorted(os.listdir(tmp_path)) == sorted(cases)  # no temporary file left behind


@pytest.mark.parametrize(("offset", "size"), [(0, 0), (0, 5), (1 << 20, 1 << 20), (3 << 33, 7)])
def test_hand_serialized_write_requests_equal_protobufs(offset: int, size: int) -> None:
    from actors.preseed.importer.writer import write_request
    from messages.containerd.services.content.v1 import content_pb2

    data = bytes(range(256)) * (size // 256) + bytes(size % 256)
    message = content_pb2.WriteContentRequest(action=content_pb2.WRITE, offset=offset, data=data)
    assert write_request(offset, data) == message.SerializeToString()
