"""Blobs: content-addressed bytes (in memory or spooled to a file), platforms, random data.

The vocabulary of `tests.support.images`: the media types and annotations its archives
use, `json_bytes` (the canonical bytes of every JSON document written), `Platform`,
`Blob`, and deterministic incompressible data (`iter_random_bytes`, `random_bytes`).
"""

from __future__ import annotations

import hashlib
import io
import json
import platform as _platform
import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

__all__ = [
    "ANNOTATION_IMAGE_NAME",
    "ANNOTATION_REF_NAME",
    "CHUNK",
    "DOCKER_CONFIG",
    "DOCKER_MANIFEST",
    "OCI_CONFIG",
    "OCI_INDEX",
    "OCI_LAYER",
    "OCI_LAYER_GZIP",
    "OCI_MANIFEST",
    "Blob",
    "Platform",
    "iter_random_bytes",
    "json_bytes",
    "random_bytes",
]

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
ANNOTATION_REF_NAME = "org.opencontainers.image.ref.name"
ANNOTATION_IMAGE_NAME = "io.containerd.image.name"

#: The unit of streaming copies and of random data (1 MiB).
CHUNK = 1 << 20
#: `platform.machine()` names → Go's GOARCH (containerd's platform names).
_GOARCH = {
    "x86_64": "amd64",
    "amd64": "amd64",
    "aarch64": "arm64",
    "arm64": "arm64",
    "armv7l": "arm",
    "ppc64le": "ppc64le",
    "s390x": "s390x",
    "riscv64": "riscv64",
}


def json_bytes(doc: object) -> bytes:
    """The canonical bytes of a JSON document: sorted keys, no spaces, UTF-8."""
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


def _sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass(frozen=True, slots=True)
class Platform:
    """An OCI platform; `str()` gives `os/arch[/variant]`."""

    os: str = "linux"
    architecture: str = "amd64"
    variant: str | None = None

    @classmethod
    def parse(cls, text: str) -> Platform:
        """`"linux/arm64/v8"` → Platform("linux", "arm64", "v8")."""
        parts = text.split("/")
        if len(parts) not in (2, 3) or not all(parts):
            raise ValueError(f"platform {text!r} is not os/arch[/variant]")
        return cls(parts[0], parts[1], parts[2] if len(parts) == 3 else None)

    @classmethod
    def host(cls) -> Platform:
        """The platform containerd's default matcher picks on this machine."""
        machine = _platform.machine().lower()
        arch = _GOARCH.get(machine, machine)
        return cls("linux", arch, "v8" if arch == "arm64" else None)

    def to_json(self) -> dict[str, str]:
        doc = {"os": self.os, "architecture": self.architecture, "variant": self.variant}
        return {k: v for k, v in doc.items() if v}

    def __str__(self) -> str:
        return "/".join(p for p in (self.os, self.architecture, self.variant) if p)


@dataclass(frozen=True, slots=True)
class Blob:
    """One content-addressed blob, in memory or spooled to a file.

    Attributes:
        media_type: the media type its descriptor carries.
        digest: `sha256:<hex>` of its bytes.
        size: its length in bytes.
        data: the bytes, when held in memory.
        path: the file holding the bytes, when spooled.
        diff_id: for a layer, the digest of its uncompressed tar (the config's diff_id).
    """

    media_type: str
    digest: str
    size: int
    data: bytes | None = None
    path: Path | None = None
    diff_id: str | None = None

    @classmethod
    def of(cls, media_type: str, data: bytes, diff_id: str | None = None) -> Blob:
        """An in-memory blob of `data`."""
        return cls(media_type, _sha256(data), len(data), data=data, diff_id=diff_id)

    def descriptor(self, **extra: object) -> dict[str, object]:
        """Its OCI descriptor, plus any `extra` fields (annotations, platform)."""
        return {"mediaType": self.media_type, "digest": self.digest, "size": self.size, **extra}

    def read(self) -> bytes:
        """All its bytes (reads the spool file if there is one)."""
        with self.open() as f:
            return f.read()

    def open(self) -> BinaryIO:
        """A binary stream of its bytes."""
        if self.data is not None:
            return io.BytesIO(self.data)
        assert self.path is not None
        return open(self.path, "rb")

    @property
    def hex(self) -> str:
        """The hex part of the digest, i.e. its file name under `blobs/sha256/`."""
        return self.digest.split(":", 1)[1]


def iter_random_bytes(n: int, seed: int) -> Iterator[bytes]:
    """`n` bytes of incompressible data, deterministic for `seed`, in chunks of up to 1 MiB.

    Runs at about 1 GB/s: each chunk is a window of a seeded 4 MiB pool passed through its
    own random byte permutation, so no compressor (gzip, zstd with long-distance matching)
    finds repeats, yet only the pool costs a real random generator call.
    """
    rng = random.Random(seed)
    pool = rng.randbytes(4 * CHUNK)
    left = n
    while left > 0:
        size = min(left, CHUNK)
        start = rng.randrange(len(pool) - size + 1)
        table = bytes(rng.sample(range(256), 256))
        yield pool[start : start + size].translate(table)
        left -= size


def random_bytes(n: int, seed: int) -> bytes:
    """`n` incompressible bytes, deterministic for `seed` (see `iter_random_bytes`)."""
    return b"".join(iter_random_bytes(n, seed))
