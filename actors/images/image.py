"""OCI images as data: platform, runtime config, layers → config, manifest and index blobs.

`build_image` turns an `ImageSpec` into its config and manifest blobs;
`build_index` turns an `IndexSpec` (one image per platform) into an index blob
over their manifests. Every document is canonical JSON (`blobs.json_bytes`) and
holds nothing of the moment or the machine: no `created` time, no history, no
host name. The same spec gives the same bytes and digests everywhere.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from actors.images.blobs import Blob, json_blob
from actors.images.layer import Layer
from actors.images.media import OCI_CONFIG, OCI_INDEX, OCI_MANIFEST
from actors.images.platforms import Platform, host_platform

__all__ = [
    "OCI_CONFIG",
    "OCI_INDEX",
    "OCI_MANIFEST",
    "BuiltImage",
    "BuiltIndex",
    "ImageSpec",
    "IndexSpec",
    "RuntimeConfig",
    "build_image",
    "build_index",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class RuntimeConfig:
    """The image config's `config` object: how a container of the image runs."""

    #: `Entrypoint`, e.g. `("/pause", "-P")`; empty: none.
    entrypoint: tuple[str, ...] = ()
    #: `Cmd`: the entrypoint's default arguments, or the command without one.
    cmd: tuple[str, ...] = ()
    #: `Env`, as `NAME=value` strings.
    env: tuple[str, ...] = ()
    #: `User`: `uid[:gid]` or a name; "": the runtime's default (root).
    user: str = ""
    #: `WorkingDir`; "": `/`.
    working_dir: str = ""
    #: `Labels`.
    labels: Mapping[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, object]:
        """The object, with only the fields that are set."""
        doc: dict[str, object] = {}
        if self.entrypoint:
            doc["Entrypoint"] = list(self.entrypoint)
        if self.cmd:
            doc["Cmd"] = list(self.cmd)
        if self.env:
            doc["Env"] = list(self.env)
        if self.user:
            doc["User"] = self.user
        if self.working_dir:
            doc["WorkingDir"] = self.working_dir
        if self.labels:
            doc["Labels"] = dict(self.labels)
        return doc


@dataclass(frozen=True, slots=True, kw_only=True)
class ImageSpec:
    """One single-platform image."""

    #: Its full reference (`localhost/node-containerd/pause:0.1.7`), or None for an image
    #: listed without a name.
    name: str | None
    #: Its layers, base first.
    layers: tuple[Layer, ...]
    #: The platform its config (and, inside an index, its descriptor) names.
    platform: Platform = field(default_factory=host_platform)
    #: How its containers run.
    config: RuntimeConfig = field(default_factory=RuntimeConfig)
    #: Annotations of the manifest itself.
    annotations: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class IndexSpec:
    """A multi-platform image: an index over one manifest per platform."""

    #: Its full reference, or None.
    name: str | None
    #: One image per platform (their own names are not written).
    images: tuple[ImageSpec, ...]
    #: The platforms whose manifests, configs and layers are written; the others are
    #: referenced but absent, as `ctr images export` leaves them. None: all.
    include: tuple[Platform, ...] | None = None


@dataclass(frozen=True, slots=True)
class BuiltImage:
    """The blobs of one single-platform image."""

    #: What it was built from.
    spec: ImageSpec
    #: Its config.
    config: Blob
    #: Its manifest: its digest is the image's.
    manifest: Blob

    @property
    def blobs(self) -> tuple[Blob, ...]:
        """Manifest, config, then the layers."""
        return (self.manifest, self.config, *(layer.blob for layer in self.spec.layers))


@dataclass(frozen=True, slots=True)
class BuiltIndex:
    """The blobs of a multi-platform image."""

    #: What it was built from.
    spec: IndexSpec
    #: The index: its digest is the image's.
    index: Blob
    #: Each platform's image, in the spec's order.
    images: tuple[BuiltImage, ...]

    @property
    def blobs(self) -> tuple[Blob, ...]:
        """The index, then the blobs of each included platform."""
        out = [self.index]
        for built in self.images:
            if self.spec.include is None or built.spec.platform in self.spec.include:
                out.extend(built.blobs)
        return tuple(out)


def build_image(spec: ImageSpec) -> BuiltImage:
    """The config and manifest blobs of `spec`."""
    config_doc = {
        **spec.platform.to_json(),
        "config": spec.config.to_json(),
        "rootfs": {"type": "layers", "diff_ids": [layer.diff_id for layer in spec.layers]},
    }
    config = json_blob(OCI_CONFIG, config_doc)
    manifest_doc: dict[str, object] = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": config.descriptor(),
        "layers": [layer.blob.descriptor() for layer in spec.layers],
    }
    if spec.annotations:
        manifest_doc["annotations"] = dict(spec.annotations)
    return BuiltImage(spec, config, json_blob(OCI_MANIFEST, manifest_doc))


def build_index(spec: IndexSpec) -> BuiltIndex:
    """The index blob of `spec` over its platforms' manifests, and their blobs."""
    images = tuple(build_image(image) for image in spec.images)
    manifests = [b.manifest.descriptor(platform=b.spec.platform.to_json()) for b in images]
    index = json_blob(
        OCI_INDEX, {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests}
    )
    return BuiltIndex(spec, index, images)
