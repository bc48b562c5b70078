"""The preseed tests' archives: one image made every way the world makes it, built once.

`build_archives` writes, into a directory of the session, the same two-layer image as
skopeo's oci-archive and docker-archive (made from a umoci layout), umoci's layout
tarred as is, gzip and zstd copies, and with our own writers a docker archive, a
multi-platform index and an unnamed manifest. The `archives` fixture of
`tests/preseed/conftest.py` builds them once per session; tests never modify them.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from tests.support.images.blob_store import (
    BlobStore,
    compress_like_tools,
    layer_tar,
    named,
    write_docker_save,
    write_store_archive,
)
from tests.support.images.tools import skopeo_archive, umoci_layout

__all__ = ["HELLO", "MULTI", "Archives", "build_archives"]

#: The name of the two-layer image in `oci`, `gzip`, `zstd` and (tagged) `docker`.
HELLO = "docker.io/library/hello:1"
#: The name of the multi-platform index in `multi`.
MULTI = "docker.io/library/multi:1"


@dataclass(frozen=True)
class Archives:
    """Paths of the archives every test module may use (never modified by tests)."""

    #: skopeo's oci-archive of a 2-layer umoci image, named `HELLO`.
    oci: Path
    #: skopeo's docker-archive of the same, tags hello:1 and hello:2.
    docker: Path
    #: our docker writer, tags "alpine:latest" and "example.com/team/app:2".
    docker_raw: Path
    #: `oci`, gzip-compressed.
    gzip: Path
    #: `oci`, zstd-compressed.
    zstd: Path
    #: an index for linux/amd64, linux/arm64, linux/arm/v7, named `MULTI`.
    multi: Path
    #: one manifest without any name annotation.
    unnamed: Path
    #: umoci's layout tarred with ./ prefixes (ref name "latest").
    umoci_tar: Path
    #: the directory they lie in.
    work: Path


def build_archives(work: Path) -> Archives:
    """Writes every archive of `Archives` into `work`."""
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
    docker_raw = write_docker_save(
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
    multi = write_store_archive(work / "multi.tar", store, [named(top, MULTI, "1")])

    store2 = BlobStore(work / "unnamed-blobs")
    plain = store2.image([layer_tar(work / "unnamed.tar", {"x": os.urandom(100)})])
    unnamed = write_store_archive(work / "unnamed.tar.oci", store2, [plain])

    return Archives(
        oci=oci,
        docker=docker,
        docker_raw=docker_raw,
        gzip=compress_like_tools(oci, "gzip"),
        zstd=compress_like_tools(oci, "zstd"),
        multi=multi,
        unnamed=unnamed,
        umoci_tar=umoci_tar,
        work=work,
    )
