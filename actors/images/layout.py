"""OCI image layouts, as a directory or a tarball: `oci-layout`, `index.json`, `blobs/sha256/`.

`oci_layout` lays out images (single-platform `ImageSpec`s and multi-platform
`IndexSpec`s) per the OCI image-layout spec: each image is one descriptor of
`index.json`, named by the annotations containerd's importer and the OCI tools
read (`io.containerd.image.name` and `org.opencontainers.image.ref.name`, both the
full reference); every blob is stored once. `write_oci_archive` writes it as a
tarball (what `ctr images import` and the preseed take), `write_oci_layout` as a
directory (what `skopeo` and `umoci` take as `oci:DIR`).

A tarball is deterministic: members in a fixed order (`oci-layout`, `index.json`,
`blobs/`, `blobs/sha256/`, then the blobs in digest order), headers with mtime 0,
uid and gid 0, no owner names, mode 0644 (directories 0755). Writing to a path
is atomic: a temporary file in the same directory, renamed into place.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Literal

from actors.images.blobs import CHUNK, Blob, json_bytes
from actors.images.image import ImageSpec, IndexSpec, build_image, build_index
from actors.images.media import ANNOTATION_IMAGE_NAME, ANNOTATION_REF_NAME, OCI_INDEX
from actors.images.tars import TarMember, write_tar

__all__ = [
    "ANNOTATION_IMAGE_NAME",
    "ANNOTATION_REF_NAME",
    "LAYOUT_VERSION",
    "Annotate",
    "OciLayout",
    "oci_layout",
    "write_oci_archive",
    "write_oci_layout",
]

#: The `imageLayoutVersion` of `oci-layout`.
LAYOUT_VERSION = "1.0.0"

#: Which name annotations each descriptor of `index.json` carries.
Annotate = Literal["both", "containerd", "oci", "none"]


@dataclass(frozen=True, slots=True)
class OciLayout:
    """What a layout holds: its two small files and its blobs."""

    #: The bytes of `oci-layout`.
    layout_file: bytes
    #: The bytes of `index.json`.
    index: bytes
    #: Every blob once, in digest order.
    blobs: tuple[Blob, ...]
    #: Per image, the digest its descriptor in `index.json` points at (its manifest, or
    #: its index), keyed by name; an unnamed image by that digest.
    images: Mapping[str, str]

    def entries(self) -> list[TarMember]:
        """The tarball's members, in order."""
        return [
            TarMember("oci-layout", self.layout_file),
            TarMember("index.json", self.index),
            TarMember.directory("blobs"),
            TarMember.directory("blobs/sha256"),
            *(TarMember(f"blobs/sha256/{blob.hex}", blob) for blob in self.blobs),
        ]


def _descriptor(top: Blob, name: str | None, annotate: Annotate) -> dict[str, object]:
    notes: dict[str, str] = {}
    if name is not None and annotate in ("both", "containerd"):
        notes[ANNOTATION_IMAGE_NAME] = name
    if name is not None and annotate in ("both", "oci"):
        notes[ANNOTATION_REF_NAME] = name
    return top.descriptor(annotations=notes) if notes else top.descriptor()


def oci_layout(
    images: Sequence[ImageSpec | IndexSpec], *, annotate: Annotate = "both"
) -> OciLayout:
    """The layout of `images`, in their order in `index.json`."""
    descriptors: list[dict[str, object]] = []
    blobs: dict[str, Blob] = {}
    names: dict[str, str] = {}
    for spec in images:
        if isinstance(spec, ImageSpec):
            image = build_image(spec)
            top, written = image.manifest, image.blobs
        else:
            index_of = build_index(spec)
            top, written = index_of.index, index_of.blobs
        for blob in written:
            blobs.setdefault(blob.digest, blob)
        descriptors.append(_descriptor(top, spec.name, annotate))
        names[spec.name if spec.name is not None else top.digest] = top.digest
    index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": descriptors}
    return OciLayout(
        layout_file=json_bytes({"imageLayoutVersion": LAYOUT_VERSION}),
        index=json_bytes(index),
        blobs=tuple(blobs[d] for d in sorted(blobs)),
        images=names,
    )


def write_oci_archive(
    out: Path | BinaryIO,
    images: Sequence[ImageSpec | IndexSpec],
    *,
    annotate: Annotate = "both",
) -> OciLayout:
    """Writes an OCI image-layout tarball of `images` to a path (atomically) or a stream.

    Returns:
        The layout written; its `images` maps each name to its digest.

    Raises:
        OSError: the file could not be written (the path is then left as it was).
    """
    layout = oci_layout(images, annotate=annotate)
    write_tar(out, layout.entries())
    return layout


def write_oci_layout(
    directory: Path,
    images: Sequence[ImageSpec | IndexSpec],
    *,
    annotate: Annotate = "both",
) -> OciLayout:
    """Writes an OCI image layout of `images` into `directory` (made if missing).

    Blobs already there are kept; `index.json` is replaced.
    """
    layout = oci_layout(images, annotate=annotate)
    blobs = directory / "blobs" / "sha256"
    blobs.mkdir(parents=True, exist_ok=True)
    (directory / "oci-layout").write_bytes(layout.layout_file)
    for blob in layout.blobs:
        target = blobs / blob.hex
        if target.exists() and target.stat().st_size == blob.size:
            continue
        with blob.open() as src, open(target, "wb") as dst:
            shutil.copyfileobj(src, dst, CHUNK)
    (directory / "index.json").write_bytes(layout.index)
    return layout
