"""Which containerd this is: the values its version answers are read into. Pure.

containerd tells its version two ways, and both are read here, without I/O:

- the binary: `containerd --version` prints a line such as
  `containerd github.com/containerd/containerd 1.6.20~ds1 1.6.20~ds1-1+deb12u3`,
  read by `parse_containerd_version` into a `ContainerdVersion` (the release the
  generated config, the sandbox image and the runtimes follow);
- the API: the `Version` call answers a `VersionResponse`, decoded by
  `parse_version_response` into a `VersionInfo` (readiness and liveness).

`ContainerdVersion.find` reads the first `[v]MAJOR.MINOR.PATCH` of any text, such as
CRI's `runtime_version` or `VersionInfo.version`. Running the binary is
`actors.containerd.runtimes.binary`; making the call is `actors.containerd.api.version`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = [
    "ContainerdVersion",
    "ContainerdVersionError",
    "VersionInfo",
    "parse_containerd_version",
    "parse_version_response",
]

# `containerd github.com/containerd/containerd 1.6.20~ds1 1.6.20~ds1-1+deb12u3`
# `containerd github.com/containerd/containerd/v2 2.1.9+unknown `
# `containerd containerd.io v1.7.24 88bf19b2105c8b17560993bee28a01ddc2f97182`
_VERSION = re.compile(r"^containerd \S+ v?(\d+)\.(\d+)\.(\d+)\S*")
_ANY_VERSION = re.compile(r"\bv?(\d+)\.(\d+)\.(\d+)")


class ContainerdVersionError(Exception):
    """The binary did not say which containerd it is; the message names it."""


@dataclass(frozen=True, slots=True, order=True)
class ContainerdVersion:
    """A containerd release, as its binary reports it."""

    #: 1 or 2.
    major: int
    #: e.g. 6 for 1.6.20.
    minor: int
    #: e.g. 20 for 1.6.20.
    patch: int

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}.{self.patch}"

    @classmethod
    def find(cls, text: str) -> ContainerdVersion | None:
        """The first `[v]MAJOR.MINOR.PATCH` in `text`, or None when there is none."""
        found = _ANY_VERSION.search(text)
        if found is None:
            return None
        return cls(int(found.group(1)), int(found.group(2)), int(found.group(3)))

    @property
    def release(self) -> tuple[int, int]:
        """(major, minor): what defaults such as the sandbox image follow."""
        return (self.major, self.minor)

    @property
    def config_version(self) -> int:
        """The config version this containerd reads without migrating: 3 from 2.0, else 2."""
        return 3 if self.major >= 2 else 2


def parse_containerd_version(output: str, binary: str = "containerd") -> ContainerdVersion:
    """The version in the first line of `containerd --version`.

    Args:
        output: what the binary printed.
        binary: its path, for the error message.

    Raises:
        ContainerdVersionError: the line is not containerd's version line.
    """
    first = output.splitlines()[0] if output else ""
    m = _VERSION.match(first)
    if m is None:
        raise ContainerdVersionError(
            f"containerd {binary!r} --version printed {first!r}: not a containerd version line"
        )
    return ContainerdVersion(int(m.group(1)), int(m.group(2)), int(m.group(3)))


@dataclass(frozen=True, slots=True, kw_only=True)
class VersionInfo:
    """What containerd's Version call answered."""

    #: e.g. `1.6.20~ds1`.
    version: str
    #: e.g. `1.6.20~ds1-1+deb12u3`.
    revision: str


def parse_version_response(data: bytes) -> VersionInfo:
    """Decodes a `containerd.services.version.v1.VersionResponse`.

    Fields 1 and 2 are strings; any other field is skipped by its wire type.

    Raises:
        ValueError: the bytes are not a valid protobuf message.
    """
    strings = {1: "", 2: ""}
    pos = 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        number, wire_type = key >> 3, key & 7
        if wire_type == 0:
            _, pos = _varint(data, pos)
        elif wire_type == 1:
            pos += 8
        elif wire_type == 5:
            pos += 4
        elif wire_type == 2:
            length, pos = _varint(data, pos)
            if number in strings:
                strings[number] = data[pos : pos + length].decode("utf-8", "replace")
            pos += length
        else:
            raise ValueError(f"version response is invalid: wire type {wire_type} at {pos}")
        if pos > len(data):
            raise ValueError("version response is invalid: truncated")
    return VersionInfo(version=strings[1], revision=strings[2])


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(data) or shift > 63:
            raise ValueError("version response is invalid: bad varint")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, pos
