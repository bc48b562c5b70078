"""OCI descriptors, digests, media types and the GC reference labels.

Everything read from an archive's JSON goes through `parse_descriptor`, which
checks each field's type and the digest's form (containerd's go-digest rules:
`algorithm:encoded`, with sha256, sha384 or sha512 and lowercase hex of the
right length). `children` lists what a manifest or index points to, after
`check_document` has applied containerd's `validateMediaType` rule (a manifest
must not look like an index, nor an index like a manifest, and schema 1 is
refused). `gc_labels` computes the `containerd.io/gc.ref.content.*` labels that
containerd's client (`images.SetChildrenLabels`) puts on a parent so that the
garbage collector keeps its children.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from actors.images.media import (
    DOCKER_CONFIG,
    DOCKER_LAYER,
    DOCKER_LAYER_GZIP,
    DOCKER_MANIFEST,
    DOCKER_MANIFEST_LIST,
    OCI_CONFIG,
    OCI_INDEX,
    OCI_MANIFEST,
)
from actors.images.platforms import Platform
from actors.preseed.errors import ArchiveError

__all__ = [
    "Descriptor",
    "check_digest",
    "check_document",
    "children",
    "digest_bytes",
    "gc_labels",
    "is_index",
    "is_manifest",
    "new_hasher",
    "parse_descriptor",
]

_DOCKER_LAYERS = frozenset(
    {
        DOCKER_LAYER,
        DOCKER_LAYER_GZIP,
        "application/vnd.docker.image.rootfs.foreign.diff.tar",
        "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
    }
)
_KNOWN_CONFIGS = frozenset(
    {
        DOCKER_CONFIG,
        OCI_CONFIG,
        "application/vnd.containerd.container.criu.checkpoint.criu.tar",
        "application/vnd.containerd.container.checkpoint.config.v1+proto",
    }
)
_DIGEST = re.compile(r"[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+")
_ALGORITHMS = {"sha256": 64, "sha384": 96, "sha512": 128}
_HEX = re.compile(r"[a-f0-9]+")
_GC_PREFIX = "containerd.io/gc.ref.content."


@dataclass(frozen=True, slots=True)
class Descriptor:
    """An OCI content descriptor."""

    #: The blob's media type ("" when the document gives none).
    media_type: str
    #: `algorithm:hex` digest of the blob.
    digest: str
    #: Blob size in bytes.
    size: int
    #: Annotations, in document order.
    annotations: Mapping[str, str] = field(default_factory=dict)
    #: The platform the descriptor is for, if it says.
    platform: Platform | None = None

    def to_json(self) -> dict[str, object]:
        """The OCI JSON object, with Go's field order and omitted empty fields."""
        doc: dict[str, object] = {}
        if self.media_type:
            doc["mediaType"] = self.media_type
        doc["digest"] = self.digest
        doc["size"] = self.size
        if self.annotations:
            doc["annotations"] = dict(sorted(self.annotations.items()))
        if self.platform is not None:
            doc["platform"] = self.platform.to_json()
        return doc


def is_manifest(media_type: str) -> bool:
    """Whether the media type is an image manifest (OCI or Docker schema 2)."""
    return media_type in (OCI_MANIFEST, DOCKER_MANIFEST)


def is_index(media_type: str) -> bool:
    """Whether the media type is an index (OCI index or Docker manifest list)."""
    return media_type in (OCI_INDEX, DOCKER_MANIFEST_LIST)


def _is_layer(media_type: str) -> bool:
    if media_type.startswith("application/vnd.oci.image.layer."):
        return True
    return media_type.split("+", 1)[0] in _DOCKER_LAYERS


def check_digest(digest: object) -> str:
    """Return the digest if it is a well-formed digest of a supported algorithm.

    Raises:
        ArchiveError: malformed, unsupported algorithm, or wrong encoded length.
    """
    if not isinstance(digest, str) or not _DIGEST.fullmatch(digest):
        raise ArchiveError(f"digest {digest!r} is malformed")
    algorithm, encoded = digest.split(":", 1)
    length = _ALGORITHMS.get(algorithm)
    if length is None:
        raise ArchiveError(f"digest {digest!r} uses an unsupported algorithm {algorithm!r}")
    if len(encoded) != length or not _HEX.fullmatch(encoded):
        raise ArchiveError(f"digest {digest!r} is malformed")
    return digest


def new_hasher(digest: str) -> Any:
    """A hashlib object for the algorithm of a checked digest."""
    return hashlib.new(digest.split(":", 1)[0])


def digest_bytes(data: bytes, algorithm: str = "sha256") -> str:
    """The digest of some bytes, e.g. `sha256:…`."""
    return f"{algorithm}:{hashlib.new(algorithm, data).hexdigest()}"


def _string_map(value: object, what: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise ArchiveError(f"{what} must be an object of strings")
    return dict(value)


def _platform(value: object, what: str) -> Platform | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise ArchiveError(f"{what} platform must be an object")
    for key in ("os", "architecture", "variant", "os.version"):
        if not isinstance(value.get(key, ""), str):
            raise ArchiveError(f"{what} platform field {key!r} must be a string")
    features = value.get("os.features")
    if features is not None and (
        not isinstance(features, list) or not all(isinstance(f, str) for f in features)
    ):
        raise ArchiveError(f"{what} platform field 'os.features' must be a list of strings")
    return Platform.from_json(value)


def parse_descriptor(value: object, what: str) -> Descriptor:
    """Check and convert one JSON descriptor; `what` names it in errors.

    Raises:
        ArchiveError: a field is missing or has the wrong type, or the digest is bad.
    """
    if not isinstance(value, dict):
        raise ArchiveError(f"{what} is not a json object")
    media_type = value.get("mediaType", "")
    if media_type is None:
        media_type = ""
    if not isinstance(media_type, str):
        raise ArchiveError(f"{what} has a media type that is not a string")
    size = value.get("size")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise ArchiveError(f"{what} has an invalid size {size!r}")
    digest = check_digest(value.get("digest"))
    return Descriptor(
        media_type=media_type,
        digest=digest,
        size=size,
        annotations=_string_map(value.get("annotations"), f"{what} annotations"),
        platform=_platform(value.get("platform"), what),
    )


def check_document(doc: object, desc: Descriptor) -> dict[str, Any]:
    """Apply containerd's media-type sanity rule to a parsed manifest or index.

    Raises:
        ArchiveError: not an object, schema 1, or a manifest that looks like an index
            (or the reverse), or a `mediaType` field that contradicts the descriptor.
    """
    what = "manifest" if is_manifest(desc.media_type) else "index"
    if not isinstance(doc, dict):
        raise ArchiveError(f"{what} {desc.digest} is not a json object")
    inner = doc.get("mediaType")
    if inner is not None and not isinstance(inner, str):
        raise ArchiveError(f"{what} {desc.digest} has a media type that is not a string")
    if doc.get("fsLayers"):
        raise ArchiveError(f"{what} {desc.digest} is docker schema 1, which is not supported")
    if is_manifest(desc.media_type):
        if doc.get("manifests") or is_index(inner or ""):
            raise ArchiveError(
                f"manifest {desc.digest} has media type {desc.media_type!r} but is an index"
            )
    elif doc.get("config") or doc.get("layers") or is_manifest(inner or ""):
        raise ArchiveError(
            f"index {desc.digest} has media type {desc.media_type!r} but is a manifest"
        )
    return doc


def children(doc: Mapping[str, Any], desc: Descriptor) -> list[Descriptor]:
    """The descriptors a checked manifest (config, then layers) or index points to.

    Raises:
        ArchiveError: the lists or descriptors in it are malformed.
    """
    if is_manifest(desc.media_type):
        config = doc.get("config")
        layers = doc.get("layers")
        if config is None:
            raise ArchiveError(f"manifest {desc.digest} has no config")
        if layers is None:
            layers = []
        if not isinstance(layers, list):
            raise ArchiveError(f"manifest {desc.digest} has layers that are not a list")
        found = [parse_descriptor(config, f"config of manifest {desc.digest}")]
        found += [
            parse_descriptor(layer, f"layer {i} of manifest {desc.digest}")
            for i, layer in enumerate(layers)
        ]
        return found
    manifests = doc.get("manifests")
    if manifests is None:
        manifests = []
    if not isinstance(manifests, list):
        raise ArchiveError(f"index {desc.digest} has manifests that are not a list")
    return [
        parse_descriptor(m, f"manifest {i} of index {desc.digest}") for i, m in enumerate(manifests)
    ]


def _label_key(desc: Descriptor) -> str:
    if desc.media_type in _KNOWN_CONFIGS:
        return _GC_PREFIX + "config"
    if is_manifest(desc.media_type):
        return _GC_PREFIX + "m."
    if _is_layer(desc.media_type):
        return _GC_PREFIX + "l."
    return _GC_PREFIX


def gc_labels(kids: Sequence[Descriptor]) -> dict[str, str]:
    """The GC reference labels a parent gets for its children, as containerd's client sets.

    Config → `containerd.io/gc.ref.content.config`; manifests → `….m.<i>`; layers →
    `….l.<i>`; anything else → `….<i>`, each counter per key.
    """
    labels: dict[str, str] = {}
    counts: dict[str, int] = {}
    for kid in kids:
        key = _label_key(kid)
        index = counts.get(key, 0)
        counts[key] = index + 1
        if index > 0 or key.endswith("."):
            key = f"{key}{index}"
        labels[key] = kid.digest
    return labels
