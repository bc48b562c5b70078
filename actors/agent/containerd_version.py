"""Which containerd the agent runs: the binary is asked (`containerd --version`).

containerd 1.x reads a version-2 config as its own; containerd 2.x reads version 3
and migrates anything older at every start, with a warning. The agent asks the
binary it is about to run for its version before it writes the config, so that each
version gets the layout it reads natively (`ContainerdVersion.config_version`).

`parse_containerd_version` is pure; `containerd_version` runs the binary.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass

__all__ = [
    "ContainerdVersion",
    "ContainerdVersionError",
    "containerd_version",
    "parse_containerd_version",
]

# `containerd github.com/containerd/containerd 1.6.20~ds1 1.6.20~ds1-1+deb12u3`
# `containerd github.com/containerd/containerd/v2 2.1.9+unknown `
# `containerd containerd.io v1.7.24 88bf19b2105c8b17560993bee28a01ddc2f97182`
_VERSION = re.compile(r"^containerd \S+ v?(\d+)\.(\d+)\.(\d+)\S*")

#: Seconds `containerd --version` may take (a loaded machine, a cold page cache).
VERSION_TIMEOUT = 30.0


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


def containerd_version(binary: str) -> ContainerdVersion:
    """Runs `binary --version` and parses what it prints.

    Raises:
        ContainerdVersionError: the binary cannot run, fails, times out or prints no
            version; the message names the binary.
    """
    try:
        r = subprocess.run(
            [binary, "--version"],
            capture_output=True,
            text=True,
            timeout=VERSION_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired as e:
        raise ContainerdVersionError(
            f"containerd {binary!r} --version did not answer within {VERSION_TIMEOUT:g}s"
        ) from e
    except OSError as e:
        raise ContainerdVersionError(
            f"cannot run containerd {binary!r} --version: {e.strerror or e}"
        ) from e
    if r.returncode != 0:
        raise ContainerdVersionError(
            f"containerd {binary!r} --version failed with exit status {r.returncode}: "
            f"{r.stderr.strip()!r}"
        )
    return parse_containerd_version(r.stdout, binary)
