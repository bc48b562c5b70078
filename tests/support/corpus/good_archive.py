"""The good archive the broken ones derive from, and the tools that take it apart.

Most archives of the corpus are one good OCI archive of two images with exactly one
thing broken: `BYSTANDER`, which is never broken (so an importer that creates images one
by one is caught), and `VICTIM`, whose blobs are the ones broken. `base(variant)` is
that archive as tar entries; `swap`, `with_index` and `with_manifest` change one thing
in it; the `writes_*` functions return the maker a `Case` runs.
"""

from __future__ import annotations

import functools
import gzip
import io
import json
import tarfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import zstandard

from tests.support import images as ig
from tests.support.corpus.case import BYSTANDER, VICTIM

__all__ = [
    "Base",
    "base",
    "blob_path",
    "docker_base",
    "docker_manifest",
    "good_victim_archive",
    "gzip_bytes",
    "layer0_desc",
    "member_of",
    "set_header_field",
    "swap",
    "tar_bytes",
    "victim_descriptor",
    "with_index",
    "with_manifest",
    "writes_bytes",
    "writes_good",
    "writes_tar",
    "zstd_bytes",
]


@dataclass(frozen=True, slots=True)
class Base:
    """The good archive of `BYSTANDER` and `VICTIM` that the broken ones derive from."""

    victim: ig.BuiltImage
    bystander: ig.BuiltImage
    entries: tuple[ig.TarMember, ...]
    #: The victim's plain layer.
    layer0: ig.Blob
    #: The victim's gzip layer.
    layer1: ig.Blob


@functools.cache
def base(variant: int = 0) -> Base:
    """The good archive; a `variant` > 0 has victim blobs of its own (see `missing`)."""
    bystander = ig.small_image(BYSTANDER, seed=102)
    layers = (
        ig.small_image(None, seed=101 + 10 * variant).layers[0],
        ig.small_image(None, seed=103 + 10 * variant, compression="gzip").layers[0],
    )
    victim = ig.ImageSpec(
        name=VICTIM, layers=layers, platform=ig.host_platform(), config=ig.RUNTIME_CONFIG
    )
    entries, _ = ig.oci_archive_entries([bystander, victim])
    return Base(
        ig.build_image(victim),
        ig.build_image(bystander),
        tuple(entries),
        *(layer.blob for layer in layers),
    )


def good_victim_archive(path: Path) -> str:
    """Write the good archive of `VICTIM` that tests import first; return its digest."""
    return ig.write_oci_archive(path, [ig.small_image(VICTIM, seed=100)]).images[VICTIM]


def blob_path(blob: ig.Blob) -> str:
    return f"blobs/sha256/{blob.hex}"


def swap(entries: Sequence[ig.TarMember], name: str, *new: ig.TarMember) -> list[ig.TarMember]:
    """`entries` with the entry `name` replaced by `new` (nothing: removed)."""
    assert any(e.name == name for e in entries), name
    return [kept for e in entries for kept in (new if e.name == name else (e,))]


def victim_descriptor(manifest: ig.Blob) -> dict[str, object]:
    return manifest.descriptor(
        annotations={ig.ANNOTATION_IMAGE_NAME: VICTIM, ig.ANNOTATION_REF_NAME: VICTIM}
    )


def with_index(
    entries: Sequence[ig.TarMember], victim_desc: dict[str, object]
) -> list[ig.TarMember]:
    b = base()
    index = {
        "schemaVersion": 2,
        "mediaType": ig.OCI_INDEX,
        "manifests": [
            b.bystander.manifest.descriptor(
                annotations={ig.ANNOTATION_IMAGE_NAME: BYSTANDER, ig.ANNOTATION_REF_NAME: BYSTANDER}
            ),
            victim_desc,
        ],
    }
    return swap(entries, "index.json", ig.TarMember("index.json", ig.json_bytes(index)))


def with_manifest(
    mutate: Callable[[dict[str, object]], None],
    *,
    raw: bytes | None = None,
) -> tuple[list[ig.TarMember], ig.Blob]:
    """The base entries with the victim's manifest rewritten by `mutate` (or set to `raw`)."""
    b = base()
    doc = json.loads(b.victim.manifest.read())
    mutate(doc)
    manifest = ig.Blob.of(ig.OCI_MANIFEST, raw if raw is not None else ig.json_bytes(doc))
    entries = swap(
        b.entries, blob_path(b.victim.manifest), ig.TarMember(blob_path(manifest), manifest)
    )
    return with_index(entries, victim_descriptor(manifest)), manifest


def layer0_desc(doc: dict[str, object]) -> dict[str, object]:
    return doc["layers"][0]  # type: ignore[index,no-any-return]


def writes_tar(entries: Sequence[ig.TarMember]) -> Callable[[Path], None]:
    return lambda path: ig.write_tar(path, entries)


def writes_bytes(data: bytes) -> Callable[[Path], object]:
    return lambda path: path.write_bytes(data)


def tar_bytes(entries: Sequence[ig.TarMember]) -> bytes:
    out = io.BytesIO()
    ig.write_tar(out, entries)
    return out.getvalue()


def member_of(data: bytes, name: str) -> tarfile.TarInfo:
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return tar.getmember(name)


def set_header_field(data: bytes, offset: int, field_at: int, value: bytes) -> bytes:
    """Overwrite a header field and recompute the header checksum (bytes 148..155)."""
    block = bytearray(data[offset : offset + 512])
    block[field_at : field_at + len(value)] = value
    block[148:156] = b" " * 8
    block[148:156] = b"%06o\0 " % sum(block)
    return data[:offset] + bytes(block) + data[offset + 512 :]


def gzip_bytes(data: bytes) -> bytes:
    return gzip.compress(data, compresslevel=6, mtime=0)


def zstd_bytes(data: bytes) -> bytes:
    return zstandard.ZstdCompressor(level=3, write_content_size=False).compress(data)


def writes_good(name: str, *, in_dir: bool = False) -> Callable[[Path], None]:
    """Writes a good archive of `name` at the path, or as `good.tar` in a new directory there."""

    def make(path: Path) -> None:
        if in_dir:
            path.mkdir()
            path = path / "good.tar"
        ig.write_oci_archive(path, [ig.small_image(name, seed=len(name))])

    return make


def docker_base(tag: str, seed: int) -> list[ig.TarMember]:
    spec = ig.DockerImageSpec((tag,), ig.small_image(None, seed=seed, layers=2).layers)
    return ig.docker_archive_entries([spec])[0]


def docker_manifest(entries: Sequence[ig.TarMember]) -> list[dict[str, object]]:
    return json.loads(next(e.data for e in entries if e.name == "manifest.json"))  # type: ignore
