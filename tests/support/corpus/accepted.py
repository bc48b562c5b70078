"""Odd but valid archives, which must import, and files placed oddly in the preseed tree.

Placements other than a file in a namespace directory:
    namespace_dir: a directory at the top whose name containerd rejects as a namespace,
        holding a good tarball: a failure naming the directory; nothing imported.
    nested_dir: a directory inside a namespace directory: a warning, as in the Go original.
    top_file: a (good) tarball at the top of the preseed directory: a warning, not imported.
"""

from __future__ import annotations

import os
import socket
import tarfile
from pathlib import Path

from tests.support import images as ig
from tests.support.corpus.case import NOT_REGULAR, OK_NAMESPACE, Case, all_of
from tests.support.corpus.good_archive import (
    docker_base,
    docker_manifest,
    swap,
    writes_good,
    writes_tar,
)

__all__ = ["accepted_cases", "layout_cases"]


def accepted_cases() -> list[Case]:
    """Odd but valid archives: they must import, in `OK_NAMESPACE`."""
    bomb = "docker.io/library/corpus-bomb:1"
    bomb_entries, _ = ig.oci_archive_entries([ig.small_image(bomb, seed=106)])
    junk = [ig.TarMember(f"junk/{i:05d}", b"") for i in range(20_000)]
    dot_name = "docker.io/library/corpus-dot-slash:1"
    dotted, _ = ig.oci_archive_entries([ig.small_image(dot_name, seed=107)])
    dotted = [ig.TarMember("./" + e.name, e.data, e.type, e.linkname, e.mode) for e in dotted]
    # docker save links a layer shared by two images: <id2>/layer.tar -> ../<id1>/layer.tar
    entries = docker_base("corpus-docker-inside-link:1", 108)
    manifest = docker_manifest(entries)
    real = str(manifest[0]["Layers"][0])  # type: ignore[index]
    alias = "f" * 64
    manifest[0]["Layers"] = [f"{alias}/layer.tar", *manifest[0]["Layers"][1:]]  # type: ignore
    linked = [
        *swap(entries, "manifest.json", ig.TarMember("manifest.json", ig.json_bytes(manifest))),
        ig.TarMember.directory(alias),
        ig.TarMember(f"{alias}/layer.tar", type=tarfile.SYMTYPE, linkname="../" + real),
    ]
    return [
        Case(
            "tar-bomb.tar",
            "a good image plus 20,000 empty entries junk/NNNNN",
            None,
            writes_tar([*bomb_entries, *junk]),
            OK_NAMESPACE,
            images=(bomb,),
        ),
        Case(
            "dot-slash-names.tar",
            "a good image whose entries all start with ./",
            None,
            writes_tar(dotted),
            OK_NAMESPACE,
            images=(dot_name,),
        ),
        Case(
            "docker-symlink-inside.tar",
            "docker layer.tar symlinked to another in the archive",
            None,
            writes_tar(linked),
            OK_NAMESPACE,
            images=("docker.io/library/corpus-docker-inside-link:1",),
        ),
    ]


def layout_cases() -> list[Case]:
    return [
        Case("fifo.tar", "a real FIFO where a tarball should be", NOT_REGULAR, os.mkfifo),
        Case(
            "socket.tar", "a real unix socket where a tarball should be", NOT_REGULAR, make_socket
        ),
        Case(
            "invalid..ns",
            "a namespace directory containerd rejects, holding a good tarball",
            all_of(r"invalid\.\.ns", "namespace"),
            writes_good("docker.io/library/corpus-badns:1", in_dir=True),
            placement="namespace_dir",
        ),
        Case(
            "nested-dir",
            "a directory inside a namespace directory, holding a good tarball",
            None,
            writes_good("docker.io/library/corpus-nested:1", in_dir=True),
            placement="nested_dir",
        ),
        Case(
            "top-level.tar",
            "a good tarball at the top of the preseed directory",
            None,
            writes_good("docker.io/library/corpus-top:1"),
            placement="top_file",
        ),
    ]


def make_socket(path: Path) -> None:
    # bind through /proc/self/fd so that a long directory path stays under 108 bytes.
    fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.bind(f"/proc/self/fd/{fd}/{path.name}")
    finally:
        os.close(fd)
