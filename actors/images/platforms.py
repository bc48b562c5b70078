"""Platforms as containerd's `platforms` package handles them.

A platform is `os/architecture[/variant]`. `normalize` canonicalises spellings
(`x86_64` → `amd64`, `aarch64` → `arm64`, `arm` → `arm/v7`, …). `Matcher` is
containerd's `platforms.Only`: it accepts the given platform and the ones that
platform can run (amd64 also runs 386; arm64 runs arm v8…v5; arm/v7 runs v6 and
v5). `host_platform` is the machine's own platform, the default of containerd's
Go client.
"""

from __future__ import annotations

import platform as _platform
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["Matcher", "Platform", "host_platform", "normalize", "parse_platform"]

_MACHINE_ARCH = {
    "x86_64": ("amd64", ""),
    "amd64": ("amd64", ""),
    "aarch64": ("arm64", ""),
    "arm64": ("arm64", ""),
    "armv8l": ("arm", "v8"),
    "armv7l": ("arm", "v7"),
    "armv6l": ("arm", "v6"),
    "armv5tel": ("arm", "v5"),
    "i386": ("386", ""),
    "i686": ("386", ""),
    "ppc64le": ("ppc64le", ""),
    "s390x": ("s390x", ""),
    "riscv64": ("riscv64", ""),
}


@dataclass(frozen=True, slots=True)
class Platform:
    """One platform."""

    #: Operating system, e.g. "linux".
    os: str
    #: CPU architecture in Go's spelling, e.g. "amd64".
    architecture: str
    #: CPU variant, e.g. "v7" for arm, or "".
    variant: str = ""
    #: OS version (Windows only), or "".
    os_version: str = ""
    #: OS features, in the order the document gives them.
    os_features: tuple[str, ...] = ()

    def __str__(self) -> str:
        text = f"{self.os}/{self.architecture}"
        return f"{text}/{self.variant}" if self.variant else text

    def to_json(self) -> dict[str, object]:
        """The OCI JSON object, with Go's field order and omitted empty fields."""
        doc: dict[str, object] = {"architecture": self.architecture, "os": self.os}
        if self.os_version:
            doc["os.version"] = self.os_version
        if self.os_features:
            doc["os.features"] = list(self.os_features)
        if self.variant:
            doc["variant"] = self.variant
        return doc

    @classmethod
    def from_json(cls, doc: Mapping[str, object]) -> Platform:
        """Build from an OCI platform object whose fields were already type-checked."""
        features = doc.get("os.features") or ()
        return cls(
            os=str(doc.get("os") or ""),
            architecture=str(doc.get("architecture") or ""),
            variant=str(doc.get("variant") or ""),
            os_version=str(doc.get("os.version") or ""),
            os_features=tuple(str(f) for f in features) if isinstance(features, list) else (),
        )


def _normalize_arch(arch: str, variant: str) -> tuple[str, str]:
    arch, variant = arch.lower(), variant.lower()
    if arch == "i386":
        return "386", ""
    if arch in ("x86_64", "x86-64", "amd64"):
        return "amd64", "" if variant == "v1" else variant
    if arch in ("aarch64", "arm64"):
        return "arm64", "" if variant in ("8", "v8") else variant
    if arch == "armhf":
        return "arm", "v7"
    if arch == "armel":
        return "arm", "v6"
    if arch == "arm":
        if variant in ("", "7"):
            return "arm", "v7"
        if variant in ("5", "6", "8"):
            return "arm", "v" + variant
    return arch, variant


def normalize(p: Platform) -> Platform:
    """containerd's `platforms.Normalize`: canonical os, architecture and variant."""
    os_name = p.os.lower() if p.os else "linux"
    if os_name == "macos":
        os_name = "darwin"
    arch, variant = _normalize_arch(p.architecture, p.variant)
    return Platform(os_name, arch, variant, p.os_version, p.os_features)


def parse_platform(text: str) -> Platform:
    """Parse `os/arch[/variant]`, `os` or `arch` (containerd's `platforms.Parse`).

    Raises:
        ValueError: the text is empty or has more than three parts.
    """
    parts = text.strip().split("/")
    if not text.strip() or len(parts) > 3 or any(not part for part in parts):
        raise ValueError(f"platform {text!r} is invalid: expected os/arch[/variant]")
    if len(parts) == 1:
        word = parts[0].lower()
        arch, _ = _normalize_arch(word, "")
        if word in _KNOWN_OS:
            return normalize(Platform(word, host_platform().architecture))
        return normalize(Platform("linux", arch))
    return normalize(Platform(parts[0], parts[1], parts[2] if len(parts) == 3 else ""))


_KNOWN_OS = frozenset({"linux", "windows", "darwin", "freebsd", "netbsd", "openbsd", "solaris"})


def host_platform() -> Platform:
    """The platform of this machine, as Go's `platforms.DefaultSpec` reports it."""
    arch, variant = _MACHINE_ARCH.get(_platform.machine().lower(), (_platform.machine(), ""))
    return normalize(Platform("linux", arch, variant))


def _vector(p: Platform) -> list[Platform]:
    vector = [p]
    if p.architecture == "amd64":
        vector.append(Platform(p.os, "386", "", p.os_version, p.os_features))
    elif p.architecture == "arm" and p.variant[1:].isdigit() and int(p.variant[1:]) > 5:
        for version in range(int(p.variant[1:]) - 1, 4, -1):
            vector.append(Platform(p.os, "arm", f"v{version}", p.os_version, p.os_features))
    elif p.architecture == "arm64":
        vector.extend(
            _vector(Platform(p.os, "arm", p.variant or "v8", p.os_version, p.os_features))
        )
    return vector


class Matcher:
    """Which platforms an import keeps: containerd's `platforms.Only`, or all."""

    def __init__(self, target: Platform | None) -> None:
        """Match `target` and what it can run; `None` matches every platform."""
        self.target = normalize(target) if target is not None else None
        self._accepted = (
            {(q.os, q.architecture, q.variant) for q in _vector(self.target)}
            if self.target is not None
            else None
        )

    def __str__(self) -> str:
        return "all platforms" if self.target is None else str(self.target)

    def match(self, p: Platform) -> bool:
        """Whether a descriptor with platform `p` is kept."""
        if self._accepted is None:
            return True
        q = normalize(p)
        return (q.os, q.architecture, q.variant) in self._accepted
