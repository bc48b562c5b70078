"""Reads the keys of the pod runtimes: `[runsc] binary/platform/flags` and `[cri]`.

Kept apart from `actors.config.load` (which calls these) so the keys the pod
runtimes add stay in one place. Rules:

* `runsc.binary`: a name is looked up on the agent's PATH, then on
  `containerd.path`; not found → no `runsc` handler (not an error, since runsc
  is optional), unless `cri.default_runtime` is `runsc`. A path must exist.
* `runsc.flags`: strings starting with `-`; the flags the launcher sets itself
  (debug and panic logs, `--root`, `--platform`) are refused there.
* `cri.default_runtime`: `runc` or `runsc`.
* `cri.pause_binary`: as `runsc.binary` — a name is looked up on the agent's
  PATH, then on `containerd.path`; not found → no built-in sandbox image (not an
  error: the agent then falls back to containerd's default and warns). A path must
  be an executable file.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Mapping
from typing import Any

from actors.config.schema import PAUSE_BINARY, CriSection
from actors.config.values import Checker

__all__ = [
    "MAX_FLAGS",
    "MAX_REFERENCE",
    "OWNED_FLAGS",
    "RUNTIMES",
    "read_cri",
    "read_runsc_runtime",
]

#: The CRI runtime handlers the generated config can register.
RUNTIMES = ("runc", "runsc")
#: runsc flags the launcher sets from other keys; refused in `runsc.flags`.
OWNED_FLAGS = ("--debug-log", "--panic-log", "--debug", "--root", "--platform")
#: The most entries of `runsc.flags`.
MAX_FLAGS = 64
#: The longest image reference (the distribution spec's limit on a name is 255).
MAX_REFERENCE = 255
_PLATFORM = re.compile(r"[a-z0-9_-]{1,32}")
#: The characters of an image reference: name, `:tag`, `@algorithm:digest`.
_REFERENCE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/@+-]*")


def _optional_binary(
    chk: Checker, key: str, value: object, package: str, search_path: str
) -> str | None:
    """An optional binary's key: its absolute path, or None when a name is not found.

    Args:
        chk: the checker problems go to.
        key: the dotted key, e.g. `runsc.binary`.
        value: the key's value (its default when the file leaves it out).
        package: Debian's package that has it, named in the error.
        search_path: where a name is looked up.
    """
    name = chk.string(key, value, "", "a name or a path")
    if "/" not in name:
        found = shutil.which(name, path=search_path) if name else None
        return os.path.abspath(found) if found else None
    binary = os.path.abspath(name)
    if not (os.path.isfile(binary) and os.access(binary, os.X_OK)):
        chk.problem(
            key,
            f"{name!r} is not an executable file; install {package} "
            f"(Debian: apt-get install {package}) or set {key} to its path",
        )
        return None
    return binary


def read_runsc_runtime(
    chk: Checker, t: Mapping[str, Any], search_path: str
) -> tuple[str | None, str, tuple[str, ...]]:
    """`[runsc]` binary, platform, flags: (absolute binary or None, platform, flags)."""
    binary = _optional_binary(chk, "runsc.binary", t.get("binary", "runsc"), "runsc", search_path)
    platform = ""
    if "platform" in t:
        platform = chk.string("runsc.platform", t["platform"], "", "a runsc platform name")
        if platform and not _PLATFORM.fullmatch(platform):
            chk.problem(
                "runsc.platform",
                f'{platform!r} is not a platform name; use e.g. "ptrace" or "kvm", '
                'or "" for the binary\'s default',
            )
            platform = ""
    return binary, platform, _flags(chk, t.get("flags", []))


def _flags(chk: Checker, value: object) -> tuple[str, ...]:
    key = "runsc.flags"
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        chk.wrong_type(key, value, 'an array of strings, e.g. ["--network=host"]')
        return ()
    if len(value) > MAX_FLAGS:
        chk.problem(key, f"{len(value)} flags are too many; at most {MAX_FLAGS}")
        return ()
    out: list[str] = []
    for flag in value:
        if not flag.startswith("-"):
            chk.problem(key, f"{flag!r} is not a flag; each entry must start with '-'")
            continue
        name = "--" + flag.lstrip("-").split("=", 1)[0]
        if name in OWNED_FLAGS:
            chk.problem(
                key,
                f"{flag!r} is set by node-containerd itself (debug and panic logs go to "
                "runsc.fifo, the root lies in the state directory, the platform is "
                "runsc.platform); remove it",
            )
            continue
        out.append(flag)
    return tuple(out)


def read_cri(
    chk: Checker, t: Mapping[str, Any], runsc_binary: str | None, search_path: str
) -> CriSection:
    """`[cri]`: the default runtime handler, the sandbox image and the pause binary."""
    default = CriSection()
    runtime = default.default_runtime
    if "default_runtime" in t:
        runtime = chk.string(
            "cri.default_runtime", t["default_runtime"], runtime, '"runc" or "runsc"'
        )
        if runtime not in RUNTIMES:
            chk.problem(
                "cri.default_runtime", f'{runtime!r} is not a handler; use "runc" or "runsc"'
            )
            runtime = default.default_runtime
        elif runtime == "runsc" and runsc_binary is None:
            chk.problem(
                "cri.default_runtime",
                "'runsc' needs the runsc binary, which runsc.binary does not find; install "
                'runsc (Debian: apt-get install runsc) or use "runc"',
            )
    image = default.sandbox_image
    if "sandbox_image" in t:
        image = chk.string(
            "cri.sandbox_image",
            t["sandbox_image"],
            image,
            'an image reference, or "" for the default',
        )
        if len(image) > MAX_REFERENCE:
            chk.problem(
                "cri.sandbox_image",
                f"{image[:60]!r}… is {len(image)} characters long; an image reference has "
                f"at most {MAX_REFERENCE}",
            )
            image = default.sandbox_image
        elif image and not _REFERENCE.fullmatch(image):
            chk.problem(
                "cri.sandbox_image",
                f"{image!r} is not an image reference; use e.g. "
                '"registry.k8s.io/pause:3.6" (letters, digits and ._:/@+-)',
            )
            image = default.sandbox_image
    pause = _optional_binary(
        chk, "cri.pause_binary", t.get("pause_binary", PAUSE_BINARY), "catatonit", search_path
    )
    return CriSection(default_runtime=runtime, sandbox_image=image, pause_binary=pause)
