"""Images as specs: a single-platform `ImageSpec`, a `MultiPlatformSpec`, and their blobs.

`build_image` makes an image's config and manifest blobs; `small_image`,
`many_layer_image` and `multi_platform_image` are the specs tests ask for most.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.images.blobs import (
    DOCKER_CONFIG,
    DOCKER_MANIFEST,
    OCI_CONFIG,
    OCI_MANIFEST,
    Blob,
    Platform,
    json_bytes,
)
from tests.support.images.layers import Compression, make_layer, random_layer

__all__ = [
    "BuiltImage",
    "ImageSpec",
    "MultiPlatformSpec",
    "build_image",
    "many_layer_image",
    "multi_platform_image",
    "small_image",
]

_EPOCH = "1970-01-01T00:00:00Z"


@dataclass(frozen=True, slots=True)
class ImageSpec:
    """One single-platform image.

    Attributes:
        name: its full reference (e.g. `docker.io/library/pause:3.9`), or None for an
            image the index lists without a name annotation.
        layers: its layer blobs, base first.
        platform: written into the config (and into the descriptor when in an index).
        ref_name: the `org.opencontainers.image.ref.name` value; defaults to `name`.
        annotations: extra annotations on its descriptor in `index.json`.
        docker_media_types: write a Docker schema-2 manifest and config media types.
    """

    name: str | None
    layers: tuple[Blob, ...]
    platform: Platform = field(default_factory=Platform.host)
    ref_name: str | None = None
    annotations: Mapping[str, str] = field(default_factory=dict)
    docker_media_types: bool = False


@dataclass(frozen=True, slots=True)
class MultiPlatformSpec:
    """A multi-platform image: a named index of per-platform manifests.

    Attributes:
        name: its full reference, annotated on the index's descriptor.
        images: one `ImageSpec` per platform (their own names are ignored).
        include: platforms whose manifest, config and layers go into the archive; the
            others are referenced but absent, as in `ctr images export`. None = all.
    """

    name: str | None
    images: tuple[ImageSpec, ...]
    include: tuple[Platform, ...] | None = None


@dataclass(frozen=True, slots=True)
class BuiltImage:
    """The blobs of one single-platform image, ready to write."""

    spec: ImageSpec
    config: Blob
    manifest: Blob

    @property
    def blobs(self) -> tuple[Blob, ...]:
        """Manifest, config, then layers."""
        return (self.manifest, self.config, *self.spec.layers)


def build_image(spec: ImageSpec) -> BuiltImage:
    """Make the config and manifest blobs of `spec`."""
    if any(layer.diff_id is None for layer in spec.layers):
        raise ValueError("every layer blob needs a diff_id")
    config_doc = {
        **spec.platform.to_json(),
        "created": _EPOCH,
        "config": {
            "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
            "Cmd": ["/bin/true"],
        },
        "rootfs": {"type": "layers", "diff_ids": [layer.diff_id for layer in spec.layers]},
        "history": [
            {"created": _EPOCH, "created_by": f"imagegen layer {i}"}
            for i in range(len(spec.layers))
        ],
    }
    docker = spec.docker_media_types
    config = Blob.of(DOCKER_CONFIG if docker else OCI_CONFIG, json_bytes(config_doc))
    media_type = DOCKER_MANIFEST if docker else OCI_MANIFEST
    manifest_doc = {
        "schemaVersion": 2,
        "mediaType": media_type,
        "config": config.descriptor(),
        "layers": [layer.descriptor() for layer in spec.layers],
    }
    return BuiltImage(spec, config, Blob.of(media_type, json_bytes(manifest_doc)))


def small_image(
    name: str | None,
    *,
    seed: int = 0,
    layers: int = 1,
    compression: Compression = "none",
    platform: Platform | None = None,
    file_size: int = 64,
) -> ImageSpec:
    """A small image of `layers` layers, each a tar of three little files made from `seed`."""
    blobs = []
    for i in range(layers):
        rng = random.Random(f"{seed}-{i}")
        files = {
            f"layer{i}/hello.txt": f"hello from layer {i} of seed {seed}\n".encode(),
            f"layer{i}/etc/config.json": json_bytes({"layer": i, "seed": seed}),
            f"layer{i}/bin/blob.bin": rng.randbytes(file_size),
        }
        blobs.append(make_layer(files, compression=compression))
    return ImageSpec(name, tuple(blobs), platform or Platform.host())


def many_layer_image(
    name: str | None,
    *,
    total_size: int,
    count: int,
    seed: int = 0,
    compression: Compression = "none",
    spool_dir: Path | None = None,
    platform: Platform | None = None,
) -> ImageSpec:
    """An image of `count` random layers whose file contents add up to `total_size` bytes."""
    sizes = [total_size // count + (1 if i < total_size % count else 0) for i in range(count)]
    layers = tuple(
        random_layer(s, seed=seed * 100_003 + i, compression=compression, spool_dir=spool_dir)
        for i, s in enumerate(sizes)
    )
    return ImageSpec(name, layers, platform or Platform.host())


def multi_platform_image(
    name: str | None,
    platforms: Sequence[str] = ("linux/amd64", "linux/arm64/v8"),
    *,
    seed: int = 0,
    include: Sequence[str] | None = None,
) -> MultiPlatformSpec:
    """A `MultiPlatformSpec` of small images, one per platform in `platforms`.

    Args:
        include: the platforms whose blobs are written (None = all), e.g.
            `[str(Platform.host())]` to mimic `ctr images export`.
    """
    images = tuple(
        small_image(None, seed=seed * 1000 + i, platform=Platform.parse(p))
        for i, p in enumerate(platforms)
    )
    inc = None if include is None else tuple(Platform.parse(p) for p in include)
    return MultiPlatformSpec(name, images, inc)
