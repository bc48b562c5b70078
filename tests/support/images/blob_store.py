"""Hand-assembled archives: blobs put together one by one, for what the tools cannot make.

The preseed tests and `bench/preseed` build multi-platform indexes, unnamed manifests,
half-broken archives and 300 MB random layers from a `BlobStore` (blobs by digest,
big ones as files) and layer tars (`layer_tar`): `write_store_archive` writes an OCI
layout tarball of a store, `write_docker_save` a `docker save` tarball of layer tars.
Unlike `tests.support.images.archives`, the JSON here is written as `json.dumps` does
and the bytes are not meant to be reproducible. `compress_like_tools` compresses as
the gzip and zstd tools do (the file's name in the gzip header, a zstd checksum).
Everything is written into a directory the caller owns.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import shutil
import tarfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import zstandard

from actors.images.media import (
    ANNOTATION_IMAGE_NAME,
    ANNOTATION_REF_NAME,
    OCI_CONFIG,
    OCI_INDEX,
    OCI_LAYER,
    OCI_MANIFEST,
)

#: Bytes per read when copying or hashing files (8 MiB).
_CHUNK = 8 << 20

__all__ = [
    "BlobStore",
    "compress_like_tools",
    "layer_tar",
    "named",
    "random_file",
    "write_docker_save",
    "write_store_archive",
]


def compress_like_tools(path: Path, kind: str) -> Path:
    """A gzip (level 1) or zstd (level 1, checksummed) copy of a file, beside it (`.gz` / `.zst`)."""
    out = path.with_name(path.name + (".gz" if kind == "gzip" else ".zst"))
    with open(path, "rb") as src, open(out, "wb") as dst:
        if kind == "gzip":
            with gzip.GzipFile(fileobj=dst, mode="wb", mtime=0, compresslevel=1) as z:
                shutil.copyfileobj(src, z, _CHUNK)
        else:
            zstandard.ZstdCompressor(level=1, write_checksum=True).copy_stream(src, dst)
    return out


def random_file(path: Path, size: int) -> Path:
    """A file of `size` random (incompressible) bytes."""
    with open(path, "wb") as f:
        left = size
        while left:
            n = min(left, _CHUNK)
            f.write(os.urandom(n))
            left -= n
    return path


def layer_tar(path: Path, files: Mapping[str, bytes | Path]) -> Path:
    """An uncompressed layer tar holding the given files (bytes or a file to copy)."""
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
        for name, content in sorted(files.items()):
            info = tarfile.TarInfo(name)
            info.mtime = 0
            if isinstance(content, Path):
                info.size = content.stat().st_size
                with open(content, "rb") as f:
                    tar.addfile(info, f)
            else:
                info.size = len(content)
                tar.addfile(info, io.BytesIO(content))
    return path


@dataclass
class BlobStore:
    """Blobs by digest: small ones in memory, big ones as files in `root`."""

    root: Path
    blobs: dict[str, bytes | Path] = field(default_factory=dict)

    def add(self, content: bytes | Path, media_type: str, **extra: object) -> dict[str, object]:
        """Store a blob; return its descriptor (with `extra` fields, e.g. platform)."""
        if isinstance(content, Path):
            h = hashlib.sha256()
            with open(content, "rb") as f:
                while chunk := f.read(_CHUNK):
                    h.update(chunk)
            size = content.stat().st_size
        else:
            h = hashlib.sha256(content)
            size = len(content)
        digest = "sha256:" + h.hexdigest()
        self.blobs[digest] = content
        return {"mediaType": media_type, "digest": digest, "size": size, **extra}

    def add_json(self, doc: object, media_type: str, **extra: object) -> dict[str, object]:
        return self.add(json.dumps(doc, separators=(",", ":")).encode(), media_type, **extra)

    def image(
        self,
        layers: Sequence[bytes | Path],
        *,
        os_name: str = "linux",
        arch: str = "amd64",
        variant: str = "",
        with_platform: bool = False,
        layer_type: str = OCI_LAYER,
    ) -> dict[str, object]:
        """An OCI manifest over these layers; returns the manifest's descriptor."""
        descs = [self.add(layer, layer_type) for layer in layers]
        config: dict[str, object] = {
            "architecture": arch,
            "os": os_name,
            "rootfs": {"type": "layers", "diff_ids": [d["digest"] for d in descs]},
            "config": {"Cmd": ["/bin/true"]},
        }
        if variant:
            config["variant"] = variant
        cfg = self.add_json(config, OCI_CONFIG)
        extra: dict[str, object] = {}
        if with_platform:
            platform = {"architecture": arch, "os": os_name}
            if variant:
                platform["variant"] = variant
            extra["platform"] = platform
        return self.add_json(
            {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": cfg, "layers": descs},
            OCI_MANIFEST,
            **extra,
        )

    def index(self, manifests: Sequence[dict[str, object]]) -> dict[str, object]:
        """An OCI index over these descriptors; returns its descriptor."""
        return self.add_json(
            {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": list(manifests)}, OCI_INDEX
        )


def named(
    desc: Mapping[str, object], name: str | None, ref: str | None = None
) -> dict[str, object]:
    """A copy of a descriptor with image name annotations (containerd's and/or OCI's)."""
    out = dict(desc)
    annotations = {}
    if name is not None:
        annotations[ANNOTATION_IMAGE_NAME] = name
    if ref is not None:
        annotations[ANNOTATION_REF_NAME] = ref
    if annotations:
        out["annotations"] = annotations
    return out


def _add(tar: tarfile.TarFile, name: str, content: bytes | Path) -> None:
    info = tarfile.TarInfo(name)
    info.mtime = 0
    info.mode = 0o644
    if isinstance(content, Path):
        info.size = content.stat().st_size
        with open(content, "rb") as f:
            tar.addfile(info, f)
    else:
        info.size = len(content)
        tar.addfile(info, io.BytesIO(content))


def write_store_archive(
    out: Path,
    store: BlobStore,
    manifests: Iterable[Mapping[str, object]],
    *,
    omit: Iterable[str] = (),
    extra: Mapping[str, bytes] | None = None,
) -> Path:
    """An OCI layout tarball: `index.json` over `manifests`, every blob of `store`
    except the digests in `omit`, plus `extra` raw members."""
    skip = set(omit)
    index = {"schemaVersion": 2, "manifests": list(manifests)}
    with tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as tar:
        _add(tar, "oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
        _add(tar, "index.json", json.dumps(index, separators=(",", ":")).encode())
        for digest, content in store.blobs.items():
            if digest not in skip:
                _add(tar, "blobs/" + digest.replace(":", "/"), content)
        for name, content in (extra or {}).items():
            _add(tar, name, content)
    return out


def write_docker_save(
    out: Path, images: Sequence[tuple[Sequence[str], Sequence[bytes | Path], str]]
) -> Path:
    """A `docker save` style tarball: per image (RepoTags, layer tars, arch)."""
    entries = []
    members: dict[str, bytes | Path] = {}
    for tags, layers, arch in images:
        paths = []
        diff_ids = []
        for layer in layers:
            data = layer.read_bytes() if isinstance(layer, Path) else layer
            digest = hashlib.sha256(data).hexdigest()
            diff_ids.append("sha256:" + digest)
            members[f"{digest}/layer.tar"] = layer
            members[f"{digest}/VERSION"] = b"1.0"
            paths.append(f"{digest}/layer.tar")
        config = json.dumps(
            {
                "architecture": arch,
                "os": "linux",
                "rootfs": {"type": "layers", "diff_ids": diff_ids},
            }
        ).encode()
        config_name = hashlib.sha256(config).hexdigest() + ".json"
        members[config_name] = config
        entries.append({"Config": config_name, "RepoTags": list(tags), "Layers": paths})
    with tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as tar:
        for name, content in members.items():
            _add(tar, name, content)
        _add(tar, "manifest.json", json.dumps(entries).encode())
    return out
