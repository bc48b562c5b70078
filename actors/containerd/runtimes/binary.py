"""Which containerd the agent runs: the binary is asked (`containerd --version`).

containerd 1.x reads a version-2 config as its own; containerd 2.x reads version 3
and migrates anything older at every start, with a warning. The agent asks the
binary it is about to run for its version before it writes the config, so that each
version gets the layout it reads natively (`ContainerdVersion.config_version`).

`containerd_version` runs the binary and reads its line with
`actors.containerd.core.version.parse_containerd_version`; `containerd_version_or_none`
is its lenient form, for defaults that fall back when the binary cannot tell.

Running it costs 20–50 ms of the agent's start (a Go binary of ~50 MB, before
containerd itself is spawned), so `run` keeps what it printed in the state
directory (`cached_containerd_version`) and asks again only when the binary is
another file or was changed (`actors.file_key`).
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from actors.containerd.core.version import (
    ContainerdVersion,
    ContainerdVersionError,
    parse_containerd_version,
)
from actors.file_key import file_key

__all__ = [
    "VERSION_TIMEOUT",
    "cached_containerd_version",
    "containerd_version",
    "containerd_version_or_none",
]

#: Seconds `containerd --version` may take (a loaded machine, a cold page cache).
VERSION_TIMEOUT = 30.0


def containerd_version(binary: str) -> ContainerdVersion:
    """Runs `binary --version` and parses what it prints.

    Raises:
        ContainerdVersionError: the binary cannot run, fails, times out or prints no
            version; the message names the binary.
    """
    return parse_containerd_version(_version_output(binary), binary)


def cached_containerd_version(binary: str, cache: Path) -> ContainerdVersion:
    """`containerd_version`, from `cache` while the binary is the same unchanged file.

    The file holds the binary's key and what `--version` printed; it is written
    (replaced at once) after each run, and one that cannot be read or written only
    costs that run.

    Raises:
        ContainerdVersionError: as `containerd_version`, when the binary is asked.
    """
    key = file_key(binary)
    if key is not None:
        try:
            held = json.loads(cache.read_text(encoding="utf-8"))
            if held["key"] == key:
                return parse_containerd_version(str(held["output"]), binary)
        except (OSError, ValueError, KeyError, TypeError, ContainerdVersionError):
            pass  # absent, torn or stale: ask the binary
    output = _version_output(binary)
    version = parse_containerd_version(output, binary)
    if key is not None:
        fresh = cache.with_name(f".{cache.name}.{os.getpid()}")
        try:
            fresh.write_text(json.dumps({"key": key, "output": output}), encoding="utf-8")
            fresh.replace(cache)
        except OSError:
            fresh.unlink(missing_ok=True)
    return version


def _version_output(binary: str) -> str:
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
    return r.stdout


def containerd_version_or_none(binary: str) -> ContainerdVersion | None:
    """`containerd_version`, or None when the binary cannot tell (defaults then fall back)."""
    try:
        return containerd_version(binary)
    except ContainerdVersionError:
        return None
