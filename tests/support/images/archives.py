"""Archives the product does not write: `docker save` tarballs, whole-archive compression,
and an OCI tarball as a list of members for the bad-input corpus to break.

The OCI tarball itself is the product's (`actors.images.write_oci_archive`);
`oci_archive_entries` hands out the very members it writes (`OciLayout.entries`),
so the corpus can take a good archive apart, break one thing and write the rest
with the product's own `write_tar`. The `docker save` writer stays here: the agent
reads that format (the preseed) but never writes it.
"""

from __future__ import annotations

import gzip
import hashlib
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import zstandard

from actors.images.blobs import CHUNK, json_bytes
from actors.images.image import ImageSpec, IndexSpec, build_image
from actors.images.layer import Layer
from actors.images.layout import Annotate, oci_layout
from actors.images.media import OCI_LAYER
from actors.images.platforms import Platform, host_platform
from actors.images.tars import TarMember, write_tar

__all__ = [
    "DockerImageSpec",
    "compress",
    "docker_archive_entries",
    "oci_archive_entries",
    "write_docker_archive",
]


def oci_archive_entries(
    images: Sequence[ImageSpec | IndexSpec], *, annotate: Annotate = "both"
) -> tuple[list[TarMember], dict[str, str]]:
    """The members `write_oci_archive` writes for `images`, and its name → digest map.

    Order: `oci-layout`, `index.json`, `blobs/`, `blobs/sha256/`, then each blob once, in
    digest order. The map gives, per image, the digest its `index.json` descriptor points
    at (the manifest, or the index of a multi-platform image), keyed by name; an unnamed
    image is keyed by that digest itself.
    """
    layout = oci_layout(images, annotate=annotate)
    return layout.entries(), dict(layout.images)


@dataclass(frozen=True, slots=True)
class DockerImageSpec:
    """One image of a `docker save` archive."""

    #: Its RepoTags, as docker writes them (`alpine:latest`, `quay.io/x/y:1`).
    tags: tuple[str, ...]
    #: Its uncompressed layers, base first.
    layers: tuple[Layer, ...]
    #: The platform its config names.
    platform: Platform = field(default_factory=host_platform)


def docker_archive_entries(
    images: Sequence[DockerImageSpec],
) -> tuple[list[TarMember], dict[str, str]]:
    """The entries of a `docker save` archive and its tag → config digest map.

    Raises:
        ValueError: a layer is compressed (`docker save` holds plain tars).
    """
    entries: list[TarMember] = []
    manifest: list[dict[str, object]] = []
    repositories: dict[str, dict[str, str]] = {}
    tags: dict[str, str] = {}
    written: set[str] = set()
    for spec in images:
        if any(layer.blob.media_type != OCI_LAYER for layer in spec.layers):
            raise ValueError("docker archive layers must be uncompressed tars")
        config = build_image(ImageSpec(name=None, layers=spec.layers, platform=spec.platform))
        layer_paths, parent = [], ""
        for layer in spec.layers:
            layer_id = hashlib.sha256(f"{parent}\n{layer.diff_id}".encode()).hexdigest()
            layer_paths.append(f"{layer_id}/layer.tar")
            if layer_id not in written:
                written.add(layer_id)
                entries += [
                    TarMember.directory(layer_id),
                    TarMember(f"{layer_id}/VERSION", b"1.0"),
                    TarMember(f"{layer_id}/layer.tar", layer.blob),
                ]
            parent = layer_id
        hex_ = config.config.hex
        if hex_ not in written:
            written.add(hex_)
            entries.append(TarMember(f"{hex_}.json", config.config))
        manifest.append(
            {"Config": f"{hex_}.json", "RepoTags": list(spec.tags), "Layers": layer_paths}
        )
        for tag in spec.tags:
            repo, _, version = tag.rpartition(":")
            repositories.setdefault(repo, {})[version] = parent
            tags[tag] = config.config.digest
    entries.append(TarMember("manifest.json", json_bytes(manifest)))
    entries.append(TarMember("repositories", json_bytes(repositories)))
    return entries, tags


def write_docker_archive(path: Path, images: Sequence[DockerImageSpec]) -> dict[str, str]:
    """Write a `docker save` style tarball of `images`; return tag → config digest."""
    entries, tags = docker_archive_entries(images)
    write_tar(path, entries)
    return tags


def compress(
    path: Path, kind: Literal["gzip", "zstd"], *, dest: Path | None = None, level: int | None = None
) -> Path:
    """Compress a whole archive, streaming, and return the new file; the original is kept.

    Args:
        kind: "gzip" (mtime 0, no file name) or "zstd" (one frame, content size unknown).
        dest: where to write; defaults to `path` + ".gz" / ".zst".
        level: defaults to 1 for gzip and 3 for zstd (fast: test data is mostly random).
    """
    if kind not in ("gzip", "zstd"):
        raise ValueError(f"compression {kind!r} is not 'gzip' or 'zstd'")
    dest = dest or path.with_name(path.name + (".gz" if kind == "gzip" else ".zst"))
    with open(path, "rb") as src, open(dest, "wb") as raw:
        if kind == "gzip":
            with gzip.GzipFile(
                filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=level or 1
            ) as gz:
                shutil.copyfileobj(src, gz, CHUNK)
        else:
            with zstandard.ZstdCompressor(level=level or 3).stream_writer(raw) as zst:
                shutil.copyfileobj(src, zst, CHUNK)
    return dest
