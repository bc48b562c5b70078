"""Image tarballs for tests, benchmarks and the soak, written with the product's own writer.

There is one OCI image writer, `actors.images` (layers, config, manifest, index,
layout, tarball; deterministic to the byte). This kit stands on it and adds only
what is test-only on purpose:

    layers: seeded, incompressible content (`random_bytes`, `random_layer`).
    image_specs: the specs tests ask for most (`small_image`, `many_layer_image`,
        `multi_platform_image`), returned as the product's `ImageSpec` / `IndexSpec`.
    archives: `docker save` tarballs (the agent reads them, never writes them),
        whole-archive `compress` (gzip, zstd), and `oci_archive_entries`, the members
        the product writes, so that the bad-input corpus can take a good archive
        apart and break one thing in it.
    tools: images made by the real tools (umoci, skopeo, `ctr images export`), which
        test the preseed against other writers on purpose.
    blob_store: hand-assembled archives from a `BlobStore` (the preseed tests' writer
        of what no well-behaved writer makes).

The product's vocabulary (`Blob`, `json_bytes`, `Platform`, the media types and
annotations, `TarMember`, `write_tar`, `ImageSpec`, `IndexSpec`, `build_image`,
`write_oci_archive`) is re-exported here for the tests that use the kit as one
namespace; nothing here defines its own.

Typical use::

    img = small_image("docker.io/library/hello:1", seed=3, layers=2)
    digests = write_oci_archive(tmp / "hello.tar", [img]).images  # {name: manifest digest}
    gz = compress(tmp / "hello.tar", "gzip")                         # hello.tar.gz beside it
"""

from __future__ import annotations

from actors.images import (
    ANNOTATION_IMAGE_NAME,
    ANNOTATION_REF_NAME,
    DOCKER_CONFIG,
    DOCKER_MANIFEST,
    OCI_CONFIG,
    OCI_INDEX,
    OCI_LAYER,
    OCI_LAYER_GZIP,
    OCI_MANIFEST,
    Annotate,
    Blob,
    BuiltImage,
    Compression,
    FileEntry,
    ImageSpec,
    IndexSpec,
    Layer,
    Platform,
    TarMember,
    build_image,
    host_platform,
    json_bytes,
    make_layer,
    write_oci_archive,
    write_tar,
)
from tests.support.images.archives import (
    DockerImageSpec,
    compress,
    docker_archive_entries,
    oci_archive_entries,
    write_docker_archive,
)
from tests.support.images.image_specs import (
    RUNTIME_CONFIG,
    as_platform,
    many_layer_image,
    multi_platform_image,
    small_image,
)
from tests.support.images.layers import iter_random_bytes, random_bytes, random_layer

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
    "RUNTIME_CONFIG",
    "Annotate",
    "Blob",
    "BuiltImage",
    "Compression",
    "DockerImageSpec",
    "FileEntry",
    "ImageSpec",
    "IndexSpec",
    "Layer",
    "Platform",
    "TarMember",
    "as_platform",
    "build_image",
    "compress",
    "docker_archive_entries",
    "host_platform",
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
