"""The media types and annotations of OCI images: one spelling for every writer and reader.

OCI's own types are what the project writes; Docker's schema-2 types are what a
`docker save` archive and older registries carry, which the preseed reads and the
tests write. The two name annotations are the ones containerd's importer and the
OCI tools read from a descriptor of `index.json`.
"""

from __future__ import annotations

__all__ = [
    "ANNOTATION_IMAGE_NAME",
    "ANNOTATION_REF_NAME",
    "DOCKER_CONFIG",
    "DOCKER_LAYER",
    "DOCKER_LAYER_GZIP",
    "DOCKER_MANIFEST",
    "DOCKER_MANIFEST_LIST",
    "OCI_CONFIG",
    "OCI_INDEX",
    "OCI_LAYER",
    "OCI_LAYER_GZIP",
    "OCI_MANIFEST",
]

#: An image index (`index.json`, a multi-platform image).
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
#: An image manifest.
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
#: An image config.
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
#: An uncompressed layer.
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
#: A gzip-compressed layer.
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
#: Docker's schema-2 image manifest.
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
#: Docker's manifest list (its multi-platform image).
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
#: Docker's image config.
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
#: Docker's uncompressed layer.
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar"
#: Docker's gzip-compressed layer.
DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"
#: containerd's name annotation (the full reference), which its importer reads first.
ANNOTATION_IMAGE_NAME = "io.containerd.image.name"
#: The OCI reference annotation.
ANNOTATION_REF_NAME = "org.opencontainers.image.ref.name"
