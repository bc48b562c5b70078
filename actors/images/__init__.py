"""OCI images the project writes itself: layers from files, config, manifest, index, layouts.

A floor that imports nothing of the project (standard library only), so any area
may stand on it:

- `media`: the media types and name annotations, one spelling for every writer and reader;
- `blobs`: `Blob` (content-addressed bytes, in memory or in a file) and canonical JSON;
- `tars`: `TarMember` and `write_tar`, the one tar-member writer (fixed times and owners);
- `layer`: `make_layer` from `FileEntry`s (files, directories, symlinks), or
  `layer_from_tar` from a tar stream, plain or gzip, deterministic;
- `image`: `ImageSpec` / `IndexSpec` → config, manifest and index blobs (`build_image`,
  `build_index`), with `Platform` and `RuntimeConfig`;
- `layout`: `write_oci_archive` (a tarball) and `write_oci_layout` (a directory), any
  number of images and multi-platform indexes in one `index.json`;
- `platforms`: `Platform` and containerd's matching rules (also what the preseed reads by);
- `pause`: the sandbox ("pause") image the node builds from catatonit.

The test kit (`tests.support.images`) and the benchmarks write their images with
these same pieces; only what is test-only on purpose (seeded random content, the
`docker save` format, hand-assembled and tool-made archives) lives there.

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
from actors.images.layer import Compression, FileEntry, Layer, layer_from_tar, make_layer
from actors.images.layout import (
    Annotate,
    OciLayout,
    oci_layout,
    write_oci_archive,
    write_oci_layout,
)
from actors.images.media import (
    ANNOTATION_IMAGE_NAME,
    ANNOTATION_REF_NAME,
    DOCKER_CONFIG,
    DOCKER_MANIFEST,
    OCI_CONFIG,
    OCI_INDEX,
    OCI_LAYER,
    OCI_LAYER_GZIP,
    OCI_MANIFEST,
)
from actors.images.platforms import Platform, host_platform
from actors.images.tars import TarMember, tar_chunks, write_tar

__all__ = [
    "ANNOTATION_IMAGE_NAME",
    "ANNOTATION_REF_NAME",
    "DOCKER_CONFIG",
    "DOCKER_MANIFEST",
    "OCI_CONFIG",
    "OCI_INDEX",
    "OCI_LAYER",
    "OCI_LAYER_GZIP",
    "OCI_MANIFEST",
    "Annotate",
    "Blob",
    "BuiltImage",
    "BuiltIndex",
    "Compression",
    "FileEntry",
    "ImageSpec",
    "IndexSpec",
    "Layer",
    "OciLayout",
    "Platform",
    "RuntimeConfig",
    "TarMember",
    "build_image",
    "build_index",
    "host_platform",
    "json_bytes",
    "layer_from_tar",
    "make_layer",
    "oci_layout",
    "tar_chunks",
    "write_oci_archive",
    "write_oci_layout",
    "write_tar",
]
