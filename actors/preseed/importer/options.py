"""How an import behaves: one frozen `ImportOptions`, defaults as containerd's Go client."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from actors.images.platforms import Matcher, host_platform, parse_platform

__all__ = ["ImportOptions"]

_LABEL_MAX = 4096


@dataclass(frozen=True)
class ImportOptions:
    """Options of one import (validated on construction)."""

    #: Import every platform of a multi-platform image, not only `platform` (containerd's
    #: `WithAllPlatforms`).
    all_platforms: bool = False
    #: Leave out blobs that the archive lacks instead of failing (containerd's `WithSkipMissing`;
    #: `ctr images export` archives often lack other platforms' blobs).
    skip_missing: bool = False
    #: Labels set on every image created or updated, e.g. `{"io.cri-containerd.pinned": "pinned"}`.
    labels: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    #: The platform to import, `os/arch[/variant]`; None is the host's.
    platform: str | None = None
    #: Name prefix of images made for unnamed manifests (`<prefix>@<digest>`).
    digest_ref_prefix: str = "import"
    #: Directory where compressed archives are decompressed (None: the system's temporary
    #: directory).
    temp_dir: str | None = None
    #: After importing, unpack each image's layers for the platform into `snapshotter` (as `ctr
    #: images import` does by default).
    unpack: bool = False
    #: The snapshotter to unpack into: the one CRI uses.
    snapshotter: str = "overlayfs"

    def __post_init__(self) -> None:
        labels = dict(self.labels)
        for key, value in labels.items():
            if not isinstance(key, str) or not isinstance(value, str) or not key:
                raise ValueError(f"image label {key!r} must be a non-empty string key and a string")
            if len(key) + len(value) > _LABEL_MAX:
                raise ValueError(f"image label {key!r} is longer than {_LABEL_MAX} characters")
        object.__setattr__(self, "labels", MappingProxyType(labels))
        if self.platform is not None:
            parse_platform(self.platform)
        if not self.digest_ref_prefix:
            raise ValueError("digest_ref_prefix must not be empty")
        if not self.snapshotter:
            raise ValueError("snapshotter must not be empty")

    def matcher(self) -> Matcher:
        """The platform matcher these options select."""
        if self.all_platforms:
            return Matcher(None)
        return Matcher(parse_platform(self.platform) if self.platform else host_platform())

    def fingerprint(self) -> dict[str, object]:
        """What of these options changes an import's result (kept in the import record)."""
        return {
            "all_platforms": self.all_platforms,
            "skip_missing": self.skip_missing,
            "labels": dict(sorted(self.labels.items())),
            "platform": str(self.matcher()),
            "digest_ref_prefix": self.digest_ref_prefix,
            "unpack": self.snapshotter if self.unpack else False,
        }
