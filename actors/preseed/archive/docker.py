"""Reading a `docker save` archive (`manifest.json`, configs, layer tars).

The archive has no manifests of the registry kind, so, exactly as containerd's
`archive.ImportIndex` does, we synthesise them: for every entry of
`manifest.json`, a Docker schema 2 manifest (config media type
`application/vnd.docker.container.image.v1+json`, layers `…rootfs.diff.tar` or
`….tar.gzip` by their first bytes, or the compressed blob containerd already has
for that layer, found by its `containerd.io/uncompressed` label), its platform
from the config's `os` and `architecture`, and one index entry per RepoTag named
with the normalized reference (`alpine:latest` → `docker.io/library/alpine:latest`).
The documents are encoded byte-for-byte as Go's `json.Marshal` would, so the
digests are the ones containerd's own importer gives.

Reading is split in three so that the importer can overlap hashing with writing:
`read_docker_manifest` checks everything that does not need a digest (the
manifest list, the files it names, the configs and their platforms, the tags —
one tag on two different images is refused, naming both configs);
`Archive.sha256` computes a layer's or config's digest (layer digests are not in
the file names); `synthesise` builds the manifests and the index from the
digests. `read_docker_archive` does the three in a row.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from actors.images.media import (
    ANNOTATION_IMAGE_NAME,
    ANNOTATION_REF_NAME,
    DOCKER_CONFIG,
    DOCKER_LAYER,
    DOCKER_LAYER_GZIP,
    DOCKER_MANIFEST,
)
from actors.images.platforms import Platform, normalize
from actors.preseed.archive.archive import Archive, parse_json
from actors.preseed.archive.descriptors import Descriptor, digest_bytes
from actors.preseed.archive.gojson import go_json
from actors.preseed.archive.layout import BlobSource, Layout
from actors.preseed.archive.names import normalize_docker_ref, oci_ref_name
from actors.preseed.archive.tarindex import TarEntry
from actors.preseed.errors import ArchiveError

__all__ = [
    "MANIFEST_FILE",
    "DockerArchive",
    "DockerImage",
    "FindCompressed",
    "read_docker_archive",
    "read_docker_manifest",
    "synthesise",
]

MANIFEST_FILE = "manifest.json"

#: Maps uncompressed layer digests to compressed blobs containerd already holds.
FindCompressed = Callable[[Sequence[str]], Mapping[str, Descriptor]]


def _strings(value: object, what: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ArchiveError(f"{what} must be a list of strings")
    return list(value)


def _parse_manifest(doc: object) -> list[tuple[str, list[str], list[str]]]:
    if not isinstance(doc, list):
        raise ArchiveError(f"{MANIFEST_FILE!r} is not a json list")
    items = []
    for i, item in enumerate(doc):
        if not isinstance(item, dict):
            raise ArchiveError(f"entry {i} of {MANIFEST_FILE!r} is not a json object")
        config = item.get("Config")
        if not isinstance(config, str):
            raise ArchiveError(f"entry {i} of {MANIFEST_FILE!r} has no config path")
        tags = _strings(item.get("RepoTags"), f"RepoTags of entry {i} of {MANIFEST_FILE!r}")
        layers = _strings(item.get("Layers"), f"Layers of entry {i} of {MANIFEST_FILE!r}")
        items.append((config, tags, layers))
    if not items:
        raise ArchiveError(f"{MANIFEST_FILE!r} lists no images")
    return items


def _find(archive: Archive, path: str, what: str) -> TarEntry:
    if path.startswith("/") or ".." in path.split("/"):
        raise ArchiveError(f"{what} {path!r} escapes the archive")
    entry = archive.index.lookup(os.path.normpath(path) if path else path)
    if entry is None:
        raise ArchiveError(f"{what} {path!r} not found")
    return entry


def _config_platform(archive: Archive, entry: TarEntry) -> Platform:
    config = parse_json(archive.read_member(entry), f"image config {entry.name!r}")
    if not isinstance(config, dict):
        raise ArchiveError(f"image config {entry.name!r} is not a json object")
    os_name, arch = config.get("os", ""), config.get("architecture", "")
    if not isinstance(os_name, str) or not isinstance(arch, str):
        raise ArchiveError(f"image config {entry.name!r} has a non-string os or architecture")
    return normalize(Platform(os_name, arch))


def _layer_media_type(head: bytes) -> str:
    if head.startswith((b"\x1f\x8b\x08", b"\x28\xb5\x2f\xfd")):
        return DOCKER_LAYER_GZIP
    if len(head) >= 4 and 0x184D2A50 <= int.from_bytes(head[:4], "little") <= 0x184D2A5F:
        return DOCKER_LAYER_GZIP
    return DOCKER_LAYER


@dataclass(frozen=True)
class DockerImage:
    """One entry of `manifest.json`, checked."""

    #: The config file.
    config: TarEntry
    #: The layer files, in order.
    layers: tuple[TarEntry, ...]
    #: The RepoTags, normalized.
    names: tuple[str, ...]
    #: The platform from the config (os and architecture, normalized).
    platform: Platform


@dataclass(frozen=True)
class DockerArchive:
    """A `docker save` archive, checked but not hashed."""

    #: The entries of `manifest.json`.
    images: tuple[DockerImage, ...]
    #: Every config and layer file to hash, once each, largest first.
    files: tuple[TarEntry, ...]


def _candidate(image: DockerImage, other: DockerImage) -> str:
    if image.config.offset != other.config.offset:
        return f"config {image.config.name!r}"
    return f"layers {[layer.name for layer in image.layers]!r}"


def _check_tags(images: Sequence[DockerImage]) -> None:
    """Refuse one RepoTag on two different images (containerd lets the last one win)."""
    owners: dict[str, DockerImage] = {}
    for image in images:
        for name in image.names:
            earlier = owners.setdefault(name, image)
            same = earlier.config.offset == image.config.offset and [
                e.offset for e in earlier.layers
            ] == [e.offset for e in image.layers]
            if not same:
                raise ArchiveError(
                    f"image name {name!r} is given twice with different targets: "
                    f"{_candidate(earlier, image)} and {_candidate(image, earlier)}"
                )


def read_docker_manifest(archive: Archive) -> DockerArchive:
    """Read and check `manifest.json`, the files it names, the configs and the tags.

    Raises:
        ArchiveError: no or a bad `manifest.json`, a missing config or layer, a bad
            config, or an invalid RepoTag.
    """
    entry = archive.index.lookup(MANIFEST_FILE)
    if entry is None:
        raise ArchiveError(
            "not an oci image layout or docker archive (no 'oci-layout' or 'manifest.json')"
        )
    images = []
    for config, tags, layers in _parse_manifest(archive.read_json(entry)):
        config_entry = _find(archive, config, "image config")
        images.append(
            DockerImage(
                config=config_entry,
                layers=tuple(_find(archive, layer, "layer") for layer in layers),
                names=tuple(normalize_docker_ref(tag) for tag in tags),
                platform=_config_platform(archive, config_entry),
            )
        )
    _check_tags(images)
    unique = {e.offset: e for image in images for e in (image.config, *image.layers)}
    files = sorted(unique.values(), key=lambda e: -e.size)
    return DockerArchive(tuple(images), tuple(files))


def synthesise(
    archive: Archive,
    docker: DockerArchive,
    digests: Mapping[int, str],
    find_compressed: FindCompressed | None = None,
) -> Layout:
    """Build the manifests and the index of a checked archive from its files' digests.

    Args:
        archive: The open archive.
        docker: What `read_docker_manifest` found.
        digests: The digest of every file of `docker.files`, by tar offset.
        find_compressed: Looks up compressed blobs containerd holds for uncompressed
            layer digests (containerd's `containerd.io/uncompressed` label); None skips it.
    """
    layer_digests = sorted({digests[e.offset] for image in docker.images for e in image.layers})
    compressed = dict(find_compressed(layer_digests)) if find_compressed and layer_digests else {}
    blobs: dict[str, BlobSource] = {}
    entries: list[dict[str, Any]] = []
    for image in docker.images:
        config = Descriptor(DOCKER_CONFIG, digests[image.config.offset], image.config.size)
        blobs[config.digest] = BlobSource(image.config.offset, image.config.size, verified=True)
        layers = []
        for layer in image.layers:
            digest = digests[layer.offset]
            if digest in compressed:
                layers.append(compressed[digest])
                continue
            head = archive.pread(layer.offset, min(10, layer.size))
            layers.append(Descriptor(_layer_media_type(head), digest, layer.size))
            blobs[digest] = BlobSource(layer.offset, layer.size, verified=True)
        manifest = go_json(
            {
                "schemaVersion": 2,
                "mediaType": DOCKER_MANIFEST,
                "config": config.to_json(),
                "layers": [layer.to_json() for layer in layers],
            }
        )
        desc = Descriptor(
            DOCKER_MANIFEST, digest_bytes(manifest), len(manifest), platform=image.platform
        )
        blobs[desc.digest] = BlobSource(-1, len(manifest), data=manifest, verified=True)
        if not image.names:
            entries.append(desc.to_json())
        for name in image.names:
            annotations = {ANNOTATION_IMAGE_NAME: name, ANNOTATION_REF_NAME: oci_ref_name(name)}
            entries.append(
                Descriptor(
                    desc.media_type, desc.digest, desc.size, annotations, image.platform
                ).to_json()
            )
    index = go_json({"schemaVersion": 2, "manifests": entries})
    return Layout(
        kind="docker",
        index=parse_json(index, "synthesised index"),
        index_digest=digest_bytes(index),
        lookup=lambda d: blobs.get(d.digest),
    )


def read_docker_archive(archive: Archive, find_compressed: FindCompressed | None = None) -> Layout:
    """Check, hash (two threads) and synthesise in a row.

    Raises:
        ArchiveError: see `read_docker_manifest`.
    """
    docker = read_docker_manifest(archive)
    with ThreadPoolExecutor(max_workers=2) as pool:
        hashed = pool.map(archive.sha256, docker.files)
        digests = {e.offset: d for e, d in zip(docker.files, hashed, strict=True)}
    return synthesise(archive, docker, digests, find_compressed)
