"""Content-addressed blobs and canonical JSON: what every OCI document and layer is made of.

A `Blob` is bytes with a media type, a `sha256:` digest and a size, held in memory
or in a file (a large layer is never held twice). `json_blob` is how every JSON
document of an image is written: sorted keys, no spaces, UTF-8, so the same document
is always the same bytes and the same digest.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

__all__ = ["CHUNK", "Blob", "json_blob", "json_bytes", "sha256_digest"]

#: Bytes read or written at a time when a blob is streamed.
CHUNK = 1 << 20


def sha256_digest(data: bytes) -> str:
    """`sha256:<hex>` of `data`."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


def json_bytes(doc: object) -> bytes:
    """The canonical bytes of a JSON document: sorted keys, no spaces, UTF-8."""
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


@dataclass(frozen=True, slots=True)
class Blob:
    """One content-addressed blob, in memory (`data`) or in a file (`path`)."""

    #: The media type its descriptor carries.
    media_type: str
    #: `sha256:<hex>` of its bytes.
    digest: str
    #: Its length in bytes.
    size: int
    #: The bytes, when held in memory.
    data: bytes | None = None
    #: The file holding the bytes, when not in memory.
    path: Path | None = None

    @classmethod
    def of(cls, media_type: str, data: bytes) -> Blob:
        """An in-memory blob of `data`."""
        return cls(media_type, sha256_digest(data), len(data), data=data)

    @property
    def hex(self) -> str:
        """The hex part of the digest: its file name under `blobs/sha256/`."""
        return self.digest.split(":", 1)[1]

    def descriptor(self, **extra: object) -> dict[str, object]:
        """Its OCI descriptor, with `extra` fields (`annotations`, `platform`) when given."""
        return {"mediaType": self.media_type, "digest": self.digest, "size": self.size, **extra}

    def open(self) -> BinaryIO:
        """A binary stream of its bytes."""
        if self.data is not None:
            return io.BytesIO(self.data)
        assert self.path is not None, "a blob holds its bytes or names their file"
        return open(self.path, "rb")

    def read(self) -> bytes:
        """All its bytes."""
        with self.open() as f:
            return f.read()


def json_blob(media_type: str, doc: Mapping[str, object]) -> Blob:
    """The blob of a JSON document in its canonical bytes (`json_bytes`)."""
    return Blob.of(media_type, json_bytes(doc))
