"""What an archive holds, whatever its format: an index and a way to find blobs.

Both readers (`oci.read_oci_layout`, `docker.read_docker_archive`) return a
`Layout`: the top-level index document (read from `index.json`, or synthesised
for a `docker save` archive the way containerd's importer does) and a lookup
from a descriptor to a `BlobSource`, the bytes of that blob in the archive.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from actors.preseed.archive.descriptors import Descriptor

__all__ = ["BlobSource", "Layout"]


@dataclass(frozen=True, slots=True)
class BlobSource:
    """Where a blob's bytes are."""

    #: Byte offset of the blob in the tar, or -1 when `data` holds it.
    offset: int
    #: Size in bytes.
    size: int
    #: The blob itself, for small documents already read (or synthesised).
    data: bytes | None = None
    #: True when the bytes are known to match the digest (we computed it from them), so the writer
    #: need not hash them again.
    verified: bool = False


@dataclass(frozen=True)
class Layout:
    """An archive's images, format-independent."""

    #: "oci" or "docker".
    kind: str
    #: The top-level index document (parsed JSON).
    index: Any
    #: Digest of the index document's bytes.
    index_digest: str
    #: Finds the bytes of a blob by descriptor; None if not in the archive.
    lookup: Callable[[Descriptor], BlobSource | None]
