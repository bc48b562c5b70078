"""Image tarballs for tests, benchmarks and the soak: the project's own writer, and the tools'.

The project's own writer writes image tarballs per the OCI image-layout spec (`oci-layout`, `index.json`,
`blobs/sha256/<hex>`) and in the `docker save` format (`manifest.json`, `<hex>.json`,
`<id>/layer.tar`), byte-for-byte deterministic given the same specs and seeds: every tar
header has mtime 0, uid/gid 0 and no user names; gzip streams carry no name and mtime 0;
JSON documents are written with sorted keys and no spaces.

Rules:
    * Blobs are either in memory (`Blob.data`) or spooled to a file (`Blob.path`) so that a
      300 MB layer never needs to be held twice; writers stream both kinds.
    * Nothing here talks to containerd (except `tools.ctr_export`): it only makes files.
    * The low-level pieces (`TarEntry`, `write_tar`, `oci_archive_entries`) are public so
      that the bad-input corpus can take a good archive apart and break one thing in it.

Modules (the names below are re-exported here, except those of `tools` and `blob_store`):
    blobs: media types, `Blob`, `Platform`, deterministic random bytes.
    layers: layer blobs (`make_layer`, `random_layer`).
    image_specs: `ImageSpec`, `MultiPlatformSpec`, `build_image` and ready-made specs.
    archives: tar members, OCI and `docker save` archives, `compress`.
    tools: images made by the real tools (umoci, skopeo, `ctr images export`).
    blob_store: hand-assembled archives from a `BlobStore` (the preseed tests' writer).

Typical use::

    img = small_image("docker.io/library/hello:1", seed=3, layers=2)
    digests = write_oci_archive(tmp / "hello.tar", [img])  # {name: manifest digest}
    gz = compress(tmp / "hello.tar", "gzip")                  # hello.tar.gz beside it
"""

from __future__ import annotations

from tests.support.images.archives import (
    Annotate,
    DockerImageSpec,
    TarEntry,
    compress,
    docker_archive_entries,
    oci_archive_entries,
    write_docker_archive,
    write_oci_archive,
    write_tar,
)
from tests.support.images.blobs import (
    ANNOTATION_IMAGE_NAME,
    ANNOTATION_REF_NAME,
    DOCKER_CONFIG,
    DOCKER_MANIFEST,
    OCI_CONFIG,
    OCI_INDEX,
    OCI_LAYER,
    OCI_LAYER_GZIP,
    OCI_MANIFEST,
    Blob,
    Platform,
    iter_random_bytes,
    json_bytes,
    random_bytes,
)
from tests.support.images.image_specs import (
    BuiltImage,
    ImageSpec,
    MultiPlatformSpec,
    build_image,
    many_layer_image,
    multi_platform_image,
    small_image,
)
from tests.support.images.layers import Compression, make_layer, random_layer

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
    "Compression",
    "DockerImageSpec",
    "ImageSpec",
    "MultiPlatformSpec",
    "Platform",
    "TarEntry",
    "build_image",
    "compress",
    "docker_archive_entries",
    "iter_random_bytes",
    "json_bytes",
    "make_layer",
    "many_layer_image",
    "multi_platform_image",
    "oci_archive_entries",
    "random_bytes",
    "random_layer",
    "small_image",
    "write_docker_archive",
    "write_oci_archive",
    "write_tar",
]
