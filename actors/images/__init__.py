"""OCI images the project writes itself: layers from files, config, manifest, index, layouts.

A floor that imports nothing of the project (standard library only), so any area
may stand on it:

- `blobs`: `Blob` (content-addressed bytes, in memory or in a file) and canonical JSON;
- `layer`: `make_layer` from `FileEntry`s (files, directories, symlinks), deterministic;
- `image`: `ImageSpec` / `IndexSpec` → config, manifest and index blobs (`build_image`,
  `build_index`), with `Platform` and `RuntimeConfig`;
- `layout`: `write_oci_archive` (a tarball) and `write_oci_layout` (a directory);
- `pause`: the sandbox ("pause") image the node builds from catatonit.

Typical use::

    layer = make_layer([FileEntry(path="/hello", data=b"hi\\n")])
    image = ImageSpec(name="localhost/hello:1", layers=(layer,))
    write_oci_archive(Path("hello.tar"), [image]).images  # {"localhost/hello:1": "sha256:…"}
"""

from __future__ import annotations

from actors.images.blobs import Blob, json_bytes
from actors.images.image import (
    BuiltImage,
    BuiltIndex,
    ImageSpec,
    IndexSpec,
    RuntimeConfig,
    build_image,
    build_index,
)
from actors.images.layer import FileEntry, Layer, make_layer
from actors.images.layout import OciLayout, oci_layout, write_oci_archive, write_oci_layout
from actors.images.platforms import Platform, host_platform

__all__ = [
    "Blob",
    "BuiltImage",
    "BuiltIndex",
    "FileEntry",
    "ImageSpec",
    "IndexSpec",
    "Layer",
    "OciLayout",
    "Platform",
    "host_platform",
    "RuntimeConfig",
    "build_image",
    "build_index",
    "json_bytes",
    "make_layer",
    "oci_layout",
    "write_oci_archive",
    "write_oci_layout",
]
