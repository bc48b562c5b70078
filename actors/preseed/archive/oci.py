"""Reading an OCI image layout tarball (`oci-layout`, `index.json`, `blobs/`).

As containerd's importer: the layout version must be 1.0.0, `index.json` is the
top-level index, and blobs are found at `blobs/<algorithm>/<encoded>`.
"""

from __future__ import annotations

import hashlib

from actors.preseed.archive.archive import Archive, parse_json
from actors.preseed.archive.descriptors import Descriptor
from actors.preseed.archive.layout import BlobSource, Layout
from actors.preseed.errors import ArchiveError

__all__ = ["LAYOUT_FILE", "read_oci_layout"]

LAYOUT_FILE = "oci-layout"
_VERSION = "1.0.0"


def read_oci_layout(archive: Archive) -> Layout:
    """Read the layout's version and index.

    Raises:
        ArchiveError: no or bad `oci-layout`, unsupported version, or no valid `index.json`.
    """
    layout_entry = archive.index.lookup(LAYOUT_FILE)
    if layout_entry is None:
        raise ArchiveError("oci layout has no 'oci-layout' file")
    layout = archive.read_json(layout_entry)
    version = layout.get("imageLayoutVersion") if isinstance(layout, dict) else None
    if version != _VERSION:
        raise ArchiveError(f"unsupported oci layout version {version!r}")
    entry = archive.index.lookup("index.json")
    if entry is None:
        raise ArchiveError("oci layout has no 'index.json'")
    raw = archive.read_member(entry)
    index = parse_json(raw, "'index.json'")
    digest = "sha256:" + hashlib.sha256(raw).hexdigest()

    def lookup(desc: Descriptor) -> BlobSource | None:
        algorithm, encoded = desc.digest.split(":", 1)
        found = archive.index.lookup(f"blobs/{algorithm}/{encoded}")
        return None if found is None else BlobSource(found.offset, found.size)

    return Layout(kind="oci", index=index, index_digest=digest, lookup=lookup)
