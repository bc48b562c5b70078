"""Which containerd the agent runs: the binary is asked (`containerd --version`).

containerd 1.x reads a version-2 config as its own; containerd 2.x reads version 3
and migrates anything older at every start, with a warning. The agent asks the
binary it is about to run for its version before it writes the config, so that each
version gets the layout it reads natively (`ContainerdVersion.config_version`).

`containerd_version` runs the binary and reads its line with
`actors.containerd.core.version.parse_containerd_version`; `containerd_version_or_none`
is its lenient form, for defaults that fall back when the binary cannot tell.
"""

from __future__ import annotations

import subprocess

from actors.containerd.core.version import (
    ContainerdVersion,
    ContainerdVersionError,
    parse_containerd_version,
)

__all__ = ["VERSION_TIMEOUT", "containerd_version", "containerd_version_or_none"]

#: Seconds `containerd --version` may take (a loaded machine, a cold page cache).
VERSION_TIMEOUT = 30.0


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


def containerd_version_or_none(binary: str) -> ContainerdVersion | None:
    """`containerd_version`, or None when the binary cannot tell (defaults then fall back)."""
    try:
        return containerd_version(binary)
    except ContainerdVersionError:
        return None
