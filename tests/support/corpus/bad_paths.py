"""Cases whose members point where they must not: absolute paths, `..`, links, devices."""

from __future__ import annotations

import tarfile
from collections.abc import Callable
from pathlib import Path

from tests.support import images as ig
from tests.support.corpus.case import MISSING, NOT_REGULAR_ENTRY, UNSAFE, Case, all_of
from tests.support.corpus.good_archive import base, blob_path, docker_base, swap, writes_tar

__all__ = ["path_cases"]


def path_cases() -> list[Case]:
    b = base()
    l0 = blob_path(b.layer0)
    hexes = b.layer0.hex
    v2 = base(2)
    docker = docker_base("corpus-docker-link:1", 104)
    first_layer = next(e.name for e in docker if e.name.endswith("/layer.tar"))
    docker_link = swap(
        docker, first_layer, ig.TarMember(first_layer, type=tarfile.SYMTYPE, linkname="/etc/passwd")
    )

    def plus(*extra: ig.TarMember) -> Callable[[Path], None]:
        return writes_tar([*b.entries, *extra])

    def instead_of_l0(entry: ig.TarMember) -> Callable[[Path], None]:
        return writes_tar(swap(b.entries, l0, entry))

    return [
        Case(
            "absolute-path.tar",
            "an extra entry /etc/evil",
            all_of("/etc/evil", UNSAFE),
            plus(ig.TarMember("/etc/evil", b"x")),
        ),
        Case(
            "absolute-blob.tar",
            "a layer stored as /blobs/sha256/<hex>",
            all_of("/blobs/sha256/", UNSAFE),
            instead_of_l0(ig.TarMember("/" + l0, b.layer0)),
        ),
        Case(
            "dotdot-traversal.tar",
            "an extra entry ../../evil",
            all_of(r"\.\./evil", UNSAFE),
            plus(ig.TarMember("../../evil", b"x")),
        ),
        Case(
            "dotdot-in-blobs.tar",
            "an extra entry blobs/sha256/../../../evil",
            all_of(r"\.\./evil", UNSAFE),
            plus(ig.TarMember("blobs/sha256/../../../evil", b"x")),
        ),
        Case(
            "symlink-out.tar",
            "a layer's entry is a symlink to /etc/passwd",
            all_of("link", rf"{hexes}|/etc/passwd"),
            instead_of_l0(ig.TarMember(l0, type=tarfile.SYMTYPE, linkname="/etc/passwd")),
        ),
        Case(
            "symlink-dotdot.tar",
            "an extra symlink escape -> ../../../etc/shadow",
            all_of("link", r"escape|\.\./etc/shadow"),
            plus(ig.TarMember("escape", type=tarfile.SYMTYPE, linkname="../../../etc/shadow")),
        ),
        Case(
            "hardlink-out.tar",
            "a layer's entry is a hard link to ../../etc/passwd",
            all_of("link", rf"{hexes}|\.\./etc/passwd"),
            instead_of_l0(ig.TarMember(l0, type=tarfile.LNKTYPE, linkname="../../etc/passwd")),
        ),
        Case(
            "hardlink-abs.tar",
            "an extra hard link hardlink-to-shadow -> /etc/shadow",
            all_of("link", r"hardlink-to-shadow|/etc/shadow"),
            plus(ig.TarMember("hardlink-to-shadow", type=tarfile.LNKTYPE, linkname="/etc/shadow")),
        ),
        Case(
            "docker-symlink-layer.tar",
            "a docker archive whose layer.tar -> /etc/passwd",
            all_of("link", r"layer\.tar|/etc/passwd"),
            writes_tar(docker_link),
        ),
        Case(
            "device-file.tar",
            "an extra character device entry dev/null",
            all_of("dev/null", r"device|special|not a regular|unsupported|type"),
            plus(ig.TarMember("dev/null", type=tarfile.CHRTYPE)),
        ),
        Case(
            "fifo-in-blobs.tar",
            "a layer's entry is a FIFO",
            all_of(hexes, NOT_REGULAR_ENTRY),
            instead_of_l0(ig.TarMember(l0, type=tarfile.FIFOTYPE)),
        ),
        Case(
            "blob-is-directory.tar",
            "a layer's entry is a directory",
            all_of(v2.layer0.hex, rf"{NOT_REGULAR_ENTRY}|{MISSING}"),
            writes_tar(
                swap(v2.entries, blob_path(v2.layer0), ig.TarMember.directory(blob_path(v2.layer0)))
            ),
        ),
        Case(
            "duplicate-blob.tar",
            "a layer's entry twice, same content",
            all_of(hexes, r"duplicate|more than once|twice|repeated"),
            writes_tar(swap(b.entries, l0, ig.TarMember(l0, b.layer0), ig.TarMember(l0, b.layer0))),
        ),
    ]
