"""Names as containerd and Docker spell them: namespaces and image references.

- `validate_namespace` is containerd's identifier rule
  (`^[A-Za-z0-9]+(?:[._-][A-Za-z0-9]+)*$`, at most 76 characters).
- `normalize_docker_ref` is what containerd's archive importer does to a
  `docker save` RepoTag (Docker's `ParseDockerRef`): `alpine:latest` becomes
  `docker.io/library/alpine:latest`, a bare name gets `:latest`, a reference with
  both tag and digest keeps only the digest.
- `oci_ref_name` is the object part of a normalized reference (the tag, or
  `@<digest>`), which the importer stores as `org.opencontainers.image.ref.name`.

All functions are pure; a bad name raises `ArchiveError` (or `ValueError` for a
namespace, which is configuration rather than archive content).
"""

from __future__ import annotations

import re

from actors.fs_names import display, quoted
from actors.preseed.errors import ArchiveError

__all__ = ["is_config_digest_name", "normalize_docker_ref", "oci_ref_name", "validate_namespace"]

_IDENTIFIER = re.compile(r"[A-Za-z0-9]+(?:[._-][A-Za-z0-9]+)*")
_IDENTIFIER_MAX = 76

# Docker's reference grammar (distribution/reference).
_ALNUM = r"[a-z0-9]+"
_SEPARATOR = r"(?:[._]|__|[-]+)"
_COMPONENT = rf"{_ALNUM}(?:{_SEPARATOR}{_ALNUM})*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[a-fA-F0-9:]+\])(?::[0-9]+)?"
_TAG = r"[\w][\w.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"
_NAME = rf"(?:{_DOMAIN}/)?{_COMPONENT}(?:/{_COMPONENT})*"
_REFERENCE = re.compile(rf"({_NAME})(?::({_TAG}))?(?:@({_DIGEST}))?")
_HEX64 = re.compile(r"[a-f0-9]{64}")
_CONFIG_DIGEST_NAME = re.compile(r"sha256:[0-9a-f]{64}")
_NAME_MAX = 255
_DEFAULT_DOMAIN = "docker.io"


def validate_namespace(namespace: str) -> None:
    """Check a containerd namespace name as containerd's identifiers package does.

    Raises:
        ValueError: the name is empty, longer than 76 characters, or not of the form
            `alnum([._-]alnum)*`.
    """
    if not namespace:
        raise ValueError("namespace must not be empty")
    shown = quoted(display(namespace))  # it may be a directory's name: any bytes
    if len(namespace) > _IDENTIFIER_MAX:
        raise ValueError(f"namespace {shown} is longer than {_IDENTIFIER_MAX} characters")
    if not _IDENTIFIER.fullmatch(namespace):
        raise ValueError(
            f"namespace {shown} is invalid: it must be letters and digits, "
            "separated by single '.', '_' or '-'"
        )


def _split_domain(name: str) -> tuple[str, str]:
    slash = name.find("/")
    first = name[:slash] if slash >= 0 else ""
    if slash < 0 or (
        not any(c in first for c in ".:") and first != "localhost" and first.lower() == first
    ):
        domain, rest = _DEFAULT_DOMAIN, name
    else:
        domain, rest = first, name[slash + 1 :]
    if domain == "index.docker.io":
        domain = _DEFAULT_DOMAIN
    if domain == _DEFAULT_DOMAIN and "/" not in rest:
        rest = "library/" + rest
    return domain, rest


def normalize_docker_ref(ref: str) -> str:
    """Normalize a Docker RepoTag the way containerd's archive importer does.

    Raises:
        ArchiveError: the reference is not a valid Docker reference.
    """
    if _HEX64.fullmatch(ref):
        raise ArchiveError(
            f"invalid image reference {ref!r}: cannot be a 64-character hexadecimal string"
        )
    domain, rest = _split_domain(ref)
    remote = rest.split(":", 1)[0]
    if remote.lower() != remote:
        raise ArchiveError(f"invalid image reference {ref!r}: repository name must be lowercase")
    full = f"{domain}/{rest}"
    match = _REFERENCE.fullmatch(full)
    if match is None:
        raise ArchiveError(f"invalid image reference {ref!r}")
    name, tag, digest = match.group(1), match.group(2), match.group(3)
    if len(name) > _NAME_MAX:
        raise ArchiveError(f"invalid image reference {ref!r}: name longer than {_NAME_MAX}")
    if digest is not None:
        return f"{name}@{digest}"
    return f"{name}:{tag or 'latest'}"


def oci_ref_name(name: str) -> str:
    """The object of a normalized reference: its tag, or `@<digest>` (containerd's rule)."""
    slash = name.find("/")
    if "://" in name or slash <= 0:
        return name
    path = name[slash:]
    for i, char in enumerate(path):
        if char in ":@":
            obj = path[i:]
            return obj.removeprefix(":")
    return ""


def is_config_digest_name(name: str) -> bool:
    """Whether an image name is `sha256:<config digest>`: the reference CRI adds beside
    each image in `k8s.io` (not an image anyone named)."""
    return _CONFIG_DIGEST_NAME.fullmatch(name) is not None
