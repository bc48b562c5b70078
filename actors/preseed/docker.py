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

Layer digests are not in the file names, so every config and layer is hashed
once here (in parallel threads); the writer then need not hash them again.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from actors.preseed.archive import Archive, parse_json
from actors.preseed.descriptors import (
    DOCKER_CONFIG, DOCKER_LAYER, DOCKER_LAYER_GZIP, DOCKER_MANIFEST, Descriptor, digest_bytes,
)
from actors.preseed.errors import ArchiveError
from actors.preseed.gojson import go_json
from actors.preseed.layout import BlobSource, Layout
from actors.preseed.names import normalize_docker_ref, oci_ref_name
from actors.preseed.platforms import Platform, normalize
from actors.preseed.tarindex import TarEntry

__all__ = ["MANIFEST_FILE", "FindCompressed", "read_docker_archive"]

MANIFEST_FILE = "manifest.json"
ANNOTATION_IMAGE_NAME = "io.containerd.image.name"
ANNOTATION_REF_NAME = "org.opencontainers.image.ref.name"
_HASH_CHUNK = 1 << 20

FindCompressed = Callable[[Sequence[str]], Mapping[str, Descriptor]]
"""Maps uncompressed layer digests to compressed blobs containerd already holds."""


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


def _hash(archive: Archive, entry: TarEntry) -> str:
    hasher = hashlib.sha256()
    offset, end = entry.offset, entry.offset + entry.size
    while offset < end:
        data = archive.pread(offset, min(_HASH_CHUNK, end - offset))
        hasher.update(data)
        offset += len(data)
    return "sha256:" + hasher.hexdigest()


def _config_platform(archive: Archive, entry: TarEntry) -> Platform:
    config = parse_json(archive.read_member(entry), f"image config {entry.name!r}")
    if not isinstance(config, dict):
        raise ArchiveError(f"image config {entry.name!r} is not a json object")
    os_name, arch = config.get("os", ""), config.get("architecture", "")
    if not isinstance(os_name, str) or not isinstance(arch, str):
        raise ArchiveError(f"image config {entry.name!r} has a non-string os or architecture")
    return normalize(Platform(os_name, arch))


def _layer_media_type(head: bytes) -> str:
    if head.startswith(b"\x1f\x8b\x08") or head.startswith(b"\x28\xb5\x2f\xfd"):
        return DOCKER_LAYER_GZIP
    if len(head) >= 4 and 0x184D2A50 <= int.from_bytes(head[:4], "little") <= 0x184D2A5F:
        return DOCKER_LAYER_GZIP
    return DOCKER_LAYER


def read_docker_archive(archive: Archive, find_compressed: FindCompressed | None = None) -> Layout:
    """Read `manifest.json`, hash the files it names, and synthesise manifests and index.

    Args:
        archive: The open archive.
        find_compressed: Looks up compressed blobs containerd holds for uncompressed
            layer digests (containerd's `containerd.io/uncompressed` label); None skips it.

    Raises:
        ArchiveError: a bad `manifest.json`, a missing config or layer, a bad config,
            or an invalid RepoTag.
    """
    entry = archive.index.lookup(MANIFEST_FILE)
    if entry is None:
        raise ArchiveError(
            "not an oci image layout or docker archive (no 'oci-layout' or 'manifest.json')"
        )
    items = _parse_manifest(archive.read_json(entry))
    resolved = [
        (_find(archive, config, "image config"), tags,
         [_find(archive, layer, "layer") for layer in layers])
        for config, tags, layers in items
    ]
    unique = {e.offset: e for cfg, _, layers in resolved for e in (cfg, *layers)}
    with ThreadPoolExecutor(max_workers=2) as pool:
        digests = dict(zip(unique, pool.map(lambda e: _hash(archive, e), unique.values())))
    layer_digests = sorted({digests[e.offset] for _, _, layers in resolved for e in layers})
    compressed = dict(find_compressed(layer_digests)) if find_compressed and layer_digests else {}

    blobs: dict[str, BlobSource] = {}
    entries: list[dict[str, Any]] = []
    for config_entry, tags, layer_entries in resolved:
        config = Descriptor(DOCKER_CONFIG, digests[config_entry.offset], config_entry.size)
        blobs[config.digest] = BlobSource(config_entry.offset, config_entry.size, verified=True)
        layers = []
        for layer in layer_entries:
            digest = digests[layer.offset]
            if digest in compressed:
                layers.append(compressed[digest])
                continue
            head = archive.pread(layer.offset, min(10, layer.size))
            layers.append(Descriptor(_layer_media_type(head), digest, layer.size))
            blobs[digest] = BlobSource(layer.offset, layer.size, verified=True)
        manifest = go_json({
            "schemaVersion": 2,
            "mediaType": DOCKER_MANIFEST,
            "config": config.to_json(),
            "layers": [layer.to_json() for layer in layers],
        })
        platform = _config_platform(archive, config_entry)
        desc = Descriptor(DOCKER_MANIFEST, digest_bytes(manifest), len(manifest), platform=platform)
        blobs[desc.digest] = BlobSource(-1, len(manifest), data=manifest, verified=True)
        if not tags:
            entries.append(desc.to_json())
        for tag in tags:
            name = normalize_docker_ref(tag)
            annotations = {ANNOTATION_IMAGE_NAME: name, ANNOTATION_REF_NAME: oci_ref_name(name)}
            entries.append(Descriptor(
                desc.media_type, desc.digest, desc.size, annotations, platform
            ).to_json())
    index = go_json({"schemaVersion": 2, "manifests": entries})
    return Layout(
        kind="docker",
        index=parse_json(index, "synthesised index"),
        index_digest=digest_bytes(index),
        lookup=lambda d: blobs.get(d.digest),
    )
