"""The sandbox image the node builds from a static pause binary: its name, its platform,
its bytes (the same every time), and `node-containerd image build-pause`."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

from actors.images.pause import (
    PAUSE_REPOSITORY,
    binary_platform,
    pause_image_name,
    pause_tag,
    write_pause_archive,
)

REPO = Path(__file__).resolve().parents[2]
CLI = REPO / "bin" / "node-containerd"
CATATONIT = shutil.which("catatonit")
needs_catatonit = pytest.mark.skipif(CATATONIT is None, reason="catatonit: run scripts/setup")


def script(tmp_path: Path, name: str, body: str) -> Path:
    path = tmp_path / name
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(0o755)
    return path


def elf_header(machine: int, *, little: bool = True) -> bytes:
    head = bytearray(b"\x7fELF" + bytes(60))
    head[5] = 1 if little else 2
    head[18:20] = machine.to_bytes(2, "little" if little else "big")
    return bytes(head)


def test_the_tag_is_the_version_the_binary_prints(tmp_path: Path) -> None:
    old = script(tmp_path, "old", "echo 'tini version 0.1.7_catatonit'")
    new = script(tmp_path, "new", "echo 'catatonit version 0.2.1' >&2")
    assert (pause_tag(old), pause_tag(new)) == ("0.1.7", "0.2.1")
    assert pause_image_name(old) == f"{PAUSE_REPOSITORY}:0.1.7"
    assert PAUSE_REPOSITORY == "localhost/node-containerd/pause"


def test_a_binary_that_prints_no_version_is_tagged_by_its_content(tmp_path: Path) -> None:
    quiet = script(tmp_path, "quiet", "exit 3")
    digest = hashlib.sha256(quiet.read_bytes()).hexdigest()
    assert pause_tag(quiet) == f"sha256-{digest[:12]}"


def test_the_platform_comes_from_the_binarys_elf_header(tmp_path: Path) -> None:
    for machine, little, expected in (
        (62, True, "linux/amd64"),
        (183, True, "linux/arm64"),
        (40, True, "linux/arm/v7"),
        (21, True, "linux/ppc64le"),
        (22, False, "linux/s390x"),
    ):
        path = tmp_path / f"elf-{machine}"
        path.write_bytes(elf_header(machine, little=little))
        assert str(binary_platform(path)) == expected


@needs_catatonit
def test_the_image_is_one_layer_with_the_binary_as_pause_run_in_pause_mode(tmp_path: Path) -> None:
    assert CATATONIT is not None
    binary = Path(CATATONIT)
    image = write_pause_archive(binary, tmp_path / "pause.tar")
    with tarfile.open(tmp_path / "pause.tar") as tar:
        index = json.load(tar.extractfile("index.json"))  # type: ignore[arg-type]
        top = index["manifests"][0]
        assert top["digest"] == image.digest
        assert top["annotations"]["io.containerd.image.name"] == image.name
        blob = tar.extractfile(f"blobs/sha256/{image.digest.split(':')[1]}")
        manifest = json.load(blob)  # type: ignore[arg-type]
        config_blob = tar.extractfile(f"blobs/sha256/{manifest['config']['digest'][7:]}")
        config = json.load(config_blob)  # type: ignore[arg-type]
        (layer,) = manifest["layers"]
        layer_tar = tar.extractfile(f"blobs/sha256/{layer['digest'][7:]}")
        with tarfile.open(fileobj=layer_tar) as inner:  # type: ignore[arg-type]
            (member,) = inner.getmembers()
            content = inner.extractfile(member).read()  # type: ignore[union-attr]
    assert image.name == pause_image_name(binary)
    assert config == {
        "architecture": str(binary_platform(binary)).split("/")[1],
        "os": "linux",
        "config": {"Entrypoint": ["/pause", "-P"], "User": "65535:65535", "WorkingDir": "/"},
        "rootfs": {"type": "layers", "diff_ids": [layer["digest"]]},
    }
    assert layer["mediaType"] == "application/vnd.oci.image.layer.v1.tar"
    assert (member.name, oct(member.mode), member.uid, member.gid, member.mtime) == (
        "pause",
        "0o755",
        0,
        0,
        0,
    )
    assert content == binary.read_bytes()


@needs_catatonit
def test_build_pause_twice_writes_byte_identical_files_equal_to_the_agents(tmp_path: Path) -> None:
    assert CATATONIT is not None
    outputs = []
    for name in ("one.tar", "two.tar"):
        r = subprocess.run(
            [str(CLI), "image", "build-pause", "--output", name],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert r.returncode == 0, r.stderr
        outputs.append(r.stdout)
    image = write_pause_archive(Path(CATATONIT), tmp_path / "agent.tar")
    assert (tmp_path / "one.tar").read_bytes() == (tmp_path / "two.tar").read_bytes()
    assert (tmp_path / "one.tar").read_bytes() == (tmp_path / "agent.tar").read_bytes()
    assert outputs[0] == (
        f"wrote 'one.tar': {image.name} (manifest {image.digest}) from {CATATONIT!r}\n"
    )
    stdout = subprocess.run(
        [str(CLI), "image", "build-pause", "--output", "-"],
        capture_output=True,
        timeout=60,
        check=True,
    )
    assert stdout.stdout == (tmp_path / "one.tar").read_bytes()
    assert stdout.stderr.decode() == f"{image.name} {image.digest}\n"


def test_build_pause_without_a_pause_binary_fails_naming_what_to_install(tmp_path: Path) -> None:
    r = subprocess.run(
        [str(CLI), "image", "build-pause", "--binary", "no-such-pause", "--output", "x.tar"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (r.returncode, r.stdout) == (1, "")
    assert r.stderr == (
        "node-containerd: pause binary 'no-such-pause' is not on PATH; install catatonit "
        "(Debian: apt-get install catatonit) or give --binary PATH\n"
    )
    assert not (tmp_path / "x.tar").exists()
