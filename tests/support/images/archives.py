"""Archives: tar members, OCI image-layout tarballs, `docker save` tarballs, compression.

The low-level pieces (`TarEntry`, `write_tar`, `oci_archive_entries`,
`docker_archive_entries`) are public so that the bad-input corpus can take a good
archive apart and break one thing in it.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import shutil
import tarfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Literal

import zstandard

from tests.support.images.blobs import (
    ANNOTATION_IMAGE_NAME,
    ANNOTATION_REF_NAME,
    CHUNK,
    OCI_INDEX,
    OCI_LAYER,
    Blob,
    Platform,
    json_bytes,
)
from tests.support.images.image_specs import ImageSpec, MultiPlatformSpec, build_image

__all__ = [
    "Annotate",
    "DockerImageSpec",
    "TarEntry",
    "compress",
    "docker_archive_entries",
    "oci_archive_entries",
    "write_docker_archive",
    "write_oci_archive",
    "write_tar",
]

Annotate = Literal["both", "containerd", "oci", "none"]


@dataclass(frozen=True, slots=True)
class TarEntry:
    """One member of an archive.

    Attributes:
        name: its path inside the archive, written as is (no normalisation).
        data: its content (bytes or a `Blob`) for a regular file.
        type: a `tarfile` type flag (REGTYPE, DIRTYPE, SYMTYPE, LNKTYPE, CHRTYPE, ...).
        linkname: the target of a symlink or hard link.
        mode: permission bits.
    """

    name: str
    data: bytes | Blob | None = None
    type: bytes = tarfile.REGTYPE
    linkname: str = ""
    mode: int = 0o644

    @classmethod
    def directory(cls, name: str) -> TarEntry:
        return cls(name.rstrip("/") + "/", type=tarfile.DIRTYPE, mode=0o755)

    def tarinfo(self) -> tarfile.TarInfo:
        info = tarfile.TarInfo(self.name)
        info.type, info.linkname, info.mode, info.mtime = self.type, self.linkname, self.mode, 0
        info.size = self.data.size if isinstance(self.data, Blob) else len(self.data or b"")
        return info


def write_tar(out: Path | BinaryIO, entries: Iterable[TarEntry]) -> None:
    """Write `entries`, in order, as a (PAX-format) tar archive to a path or stream."""
    path, stream = (out, None) if isinstance(out, Path) else (None, out)
    with tarfile.TarFile(
        name=path, mode="w", fileobj=stream, format=tarfile.PAX_FORMAT, copybufsize=CHUNK
    ) as tar:
        for entry in entries:
            info = entry.tarinfo()
            if entry.data is None or not info.isreg():
                tar.addfile(info)
            elif isinstance(entry.data, Blob):
                with entry.data.open() as src:
                    tar.addfile(info, src)
            else:
                tar.addfile(info, io.BytesIO(entry.data))


def _oci_descriptor(
    blob: Blob, name: str | None, ref_name: str | None, annotate: Annotate, extra: Mapping[str, str]
) -> dict[str, object]:
    notes = dict(extra)
    if name is not None and annotate in ("both", "containerd"):
        notes[ANNOTATION_IMAGE_NAME] = name
    if (ref_name or name) is not None and annotate in ("both", "oci"):
        notes[ANNOTATION_REF_NAME] = ref_name or name  # type: ignore[assignment]
    return blob.descriptor(annotations=notes) if notes else blob.descriptor()


def oci_archive_entries(
    images: Sequence[ImageSpec | MultiPlatformSpec],
    *,
    annotate: Annotate = "both",
    layout_version: str = "1.0.0",
) -> tuple[list[TarEntry], dict[str, str]]:
    """The entries of an OCI image-layout archive of `images`, and its name → digest map.

    Order: `oci-layout`, `index.json`, `blobs/`, `blobs/sha256/`, then each blob once.
    The map gives, per image, the digest its `index.json` descriptor points at (the
    manifest, or the index of a multi-platform image), keyed by name; an unnamed image is
    keyed by that digest itself.
    """
    descriptors: list[dict[str, object]] = []
    blobs: dict[str, Blob] = {}
    names: dict[str, str] = {}
    for spec in images:
        if isinstance(spec, ImageSpec):
            built = build_image(spec)
            for blob in built.blobs:
                blobs.setdefault(blob.digest, blob)
            top, name = built.manifest, spec.name
            descriptors.append(
                _oci_descriptor(top, name, spec.ref_name, annotate, spec.annotations)
            )
        else:
            children = []
            for img in spec.images:
                built = build_image(img)
                children.append(built.manifest.descriptor(platform=img.platform.to_json()))
                if spec.include is None or img.platform in spec.include:
                    for blob in built.blobs:
                        blobs.setdefault(blob.digest, blob)
            top = Blob.of(
                OCI_INDEX,
                json_bytes({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": children}),
            )
            blobs.setdefault(top.digest, top)
            name = spec.name
            descriptors.append(_oci_descriptor(top, name, None, annotate, {}))
        names[name if name is not None else top.digest] = top.digest
    index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": descriptors}
    entries = [
        TarEntry("oci-layout", json_bytes({"imageLayoutVersion": layout_version})),
        TarEntry("index.json", json_bytes(index)),
        TarEntry.directory("blobs"),
        TarEntry.directory("blobs/sha256"),
        *(TarEntry(f"blobs/sha256/{b.hex}", b) for b in blobs.values()),
    ]
    return entries, names


def write_oci_archive(
    path: Path,
    images: Sequence[ImageSpec | MultiPlatformSpec],
    *,
    annotate: Annotate = "both",
    layout_version: str = "1.0.0",
) -> dict[str, str]:
    """Write an OCI image-layout tarball of `images`; return name → manifest/index digest.

    Args:
        images: single-platform `ImageSpec`s and/or `MultiPlatformSpec`s.
        annotate: the name annotations on each `index.json` descriptor: "both"
            (`io.containerd.image.name` and `org.opencontainers.image.ref.name`),
            "containerd", "oci" or "none".
        layout_version: the `imageLayoutVersion` in `oci-layout`.
    """
    entries, names = oci_archive_entries(images, annotate=annotate, layout_version=layout_version)
    write_tar(path, entries)
    return names


@dataclass(frozen=True, slots=True)
class DockerImageSpec:
    """One image of a `docker save` archive.

    Attributes:
        tags: its RepoTags, as docker writes them (`alpine:latest`, `quay.io/x/y:1`).
        layers: uncompressed layer blobs (`make_layer`/`random_layer` with "none").
        platform: written into the config.
    """

    tags: tuple[str, ...]
    layers: tuple[Blob, ...]
    platform: Platform = field(default_factory=Platform.host)


def docker_archive_entries(
    images: Sequence[DockerImageSpec],
) -> tuple[list[TarEntry], dict[str, str]]:
    """The entries of a `docker save` archive and its tag → config digest map."""
    entries: list[TarEntry] = []
    manifest: list[dict[str, object]] = []
    repositories: dict[str, dict[str, str]] = {}
    tags: dict[str, str] = {}
    written: set[str] = set()
    for spec in images:
        if any(layer.media_type != OCI_LAYER for layer in spec.layers):
            raise ValueError("docker archive layers must be uncompressed tars")
        config = build_image(
            ImageSpec(None, spec.layers, spec.platform, docker_media_types=True)
        ).config
        layer_paths, parent = [], ""
        for layer in spec.layers:
            layer_id = hashlib.sha256(f"{parent}\n{layer.diff_id}".encode()).hexdigest()
            layer_paths.append(f"{layer_id}/layer.tar")
            if layer_id not in written:
                written.add(layer_id)
                entries += [
                    TarEntry.directory(layer_id),
                    TarEntry(f"{layer_id}/VERSION", b"1.0"),
                    TarEntry(f"{layer_id}/layer.tar", layer),
                ]
            parent = layer_id
        if config.hex not in written:
            written.add(config.hex)
            entries.append(TarEntry(f"{config.hex}.json", config))
        manifest.append(
            {"Config": f"{config.hex}.json", "RepoTags": list(spec.tags), "Layers": layer_paths}
        )
        for tag in spec.tags:
            repo, _, version = tag.rpartition(":")
            repositories.setdefault(repo, {})[version] = parent
            tags[tag] = config.digest
    entries.append(TarEntry("manifest.json", json_bytes(manifest)))
    entries.append(TarEntry("repositories", json_bytes(repositories)))
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
