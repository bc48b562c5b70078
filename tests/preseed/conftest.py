"""Fixtures of the preseed tests: archives built once per session, ctr helpers."""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
from preseed.fixtures import (
    BlobStore,
    compress,
    layer_tar,
    named,
    skopeo_archive,
    umoci_layout,
    write_docker_archive,
    write_oci_archive,
)

from actors.preseed.archive.names import is_config_digest_name

HELLO = "docker.io/library/hello:1"
MULTI = "docker.io/library/multi:1"


@dataclass(frozen=True)
class Archives:
    """Paths of the archives every test module may use (never modified by tests)."""

    oci: Path  # skopeo oci-archive of a 2-layer umoci image, named HELLO
    docker: Path  # skopeo docker-archive of the same, tags hello:1 and hello:2
    docker_raw: Path  # our docker writer, tags "alpine:latest" and "example.com/team/app:2"
    gzip: Path  # oci, gzip-compressed
    zstd: Path  # oci, zstd-compressed
    multi: Path  # index for linux/amd64, linux/arm64, linux/arm/v7, named MULTI
    unnamed: Path  # one manifest without any name annotation
    umoci_tar: Path  # umoci's layout tarred with ./ prefixes (ref name "latest")
    work: Path


@pytest.fixture(scope="session")
def archives(tmp_path_factory: pytest.TempPathFactory) -> Archives:
    work = tmp_path_factory.mktemp("archives")
    layout = umoci_layout(
        work / "umoci", {"etc/hello": b"hello\n", "bin/tool": b"\x7fELF" * 100}, layers=2
    )
    oci = skopeo_archive(layout, work / "hello-oci.tar", "oci-archive", HELLO)
    docker = skopeo_archive(
        layout, work / "hello-docker.tar", "docker-archive", "hello:1", extra_tags=["hello:2"]
    )
    umoci_tar = work / "umoci.tar"
    subprocess.run(["tar", "-C", str(layout), "-cf", str(umoci_tar), "."], check=True)

    layers = [layer_tar(work / f"raw{i}.tar", {f"f{i}": os.urandom(2000 + i)}) for i in range(2)]
    docker_raw = write_docker_archive(
        work / "raw-docker.tar",
        [
            (["alpine:latest", "example.com/team/app:2"], layers, "amd64"),
        ],
    )

    store = BlobStore(work / "multi-blobs")
    manifests = []
    for arch, variant in (("amd64", ""), ("arm64", ""), ("arm", "v7")):
        layer = layer_tar(work / f"multi-{arch}.tar", {"arch": arch.encode() + os.urandom(64)})
        manifests.append(store.image([layer], arch=arch, variant=variant, with_platform=True))
    top = store.index(manifests)
    multi = write_oci_archive(work / "multi.tar", store, [named(top, MULTI, "1")])

    store2 = BlobStore(work / "unnamed-blobs")
    plain = store2.image([layer_tar(work / "unnamed.tar", {"x": os.urandom(100)})])
    unnamed = write_oci_archive(work / "unnamed.tar.oci", store2, [plain])

    return Archives(
        oci=oci,
        docker=docker,
        docker_raw=docker_raw,
        gzip=compress(oci, "gzip"),
        zstd=compress(oci, "zstd"),
        multi=multi,
        unnamed=unnamed,
        umoci_tar=umoci_tar,
        work=work,
    )


def images(daemon: object, namespace: str) -> dict[str, str]:
    """`ctr images ls` as {name: target digest}.

    In k8s.io, containerd's CRI plugin adds, in the background, a `sha256:<config>` image
    beside each image: those are left out.
    """
    out = daemon.ctr("images", "ls", namespace=namespace)  # type: ignore[attr-defined]
    rows = [line.split() for line in out.splitlines()[1:] if line.strip()]
    return {row[0]: row[2] for row in rows if not is_config_digest_name(row[0])}


def blobs(daemon: object, namespace: str) -> set[str]:
    """`ctr content ls -q` as a set of digests."""
    return set(daemon.ctr("content", "ls", "-q", namespace=namespace).split())  # type: ignore[attr-defined]


def labelled_blobs(daemon: object, namespace: str) -> dict[str, str]:
    """`ctr content ls` as {digest: labels} (labels sorted, "-" for none)."""
    out = daemon.ctr("content", "ls", namespace=namespace)  # type: ignore[attr-defined]
    rows = [line.split("\t") for line in out.splitlines()[1:] if line.strip()]
    return {row[0]: ",".join(sorted(row[-1].split(","))) for row in rows}


def check(daemon: object, namespace: str) -> dict[str, str]:
    """`ctr images check` as {name: status}, e.g. {"docker.io/library/hello:1": "complete (3/3)"}."""
    out = daemon.ctr("images", "check", namespace=namespace)  # type: ignore[attr-defined]
    found = {}
    for line in out.splitlines()[1:]:
        match = re.match(r"(\S+)\s+\S+\s+\S+\s+(\w+ \(\d+/\d+\))", line)
        if match:
            found[match.group(1)] = match.group(2)
    return found


def gc(daemon: object, namespace: str) -> None:
    """Make containerd collect garbage now: delete a fresh lease synchronously."""
    lease = daemon.ctr("leases", "create", namespace=namespace).split()[0]  # type: ignore[attr-defined]
    daemon.ctr("leases", "delete", "--sync", lease, namespace=namespace)  # type: ignore[attr-defined]


def leases(daemon: object, namespace: str) -> list[str]:
    """Lease ids in a namespace."""
    out = daemon.ctr("leases", "ls", "-q", namespace=namespace)  # type: ignore[attr-defined]
    return out.split()


def ingests(daemon: object, namespace: str) -> list[str]:
    """Active ingests (`ctr content active`) in a namespace."""
    out = daemon.ctr("content", "active", namespace=namespace)  # type: ignore[attr-defined]
    return [line.split()[0] for line in out.splitlines()[1:] if line.strip()]
