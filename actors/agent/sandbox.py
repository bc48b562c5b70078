"""Which sandbox ("pause") image CRI gets, and the one the node builds itself.

Decided once per start, before the tree runs (`prepare_sandbox`, called by
`actors.agent.prepare.prepare_state` with the containerd version it found), in
this order:

1. `[cri] sandbox_image` names an image: that one. It must be preseeded.
2. Else, when a pause binary is found (`[cri] pause_binary`, Debian's catatonit by
   default): the node's own image. The agent writes its tarball to
   `<state>/images/pause.tar` (`actors.images.pause`: deterministic), and keeps
   its name and digest beside it (`pause.json`), with the keys of the binary and
   of the tarball (`actors.file_key`) and the agent's version: a later start that
   finds all three unchanged uses the tarball as it is, without loading
   `actors.images` or running the binary (~20 ms of the start). Then
   `root.containerd.preseed` imports it into `k8s.io` before
   the preseed directory, skipping it when it is there with the same target, and
   pins it. Its name, `localhost/node-containerd/pause:<version>`, follows the
   binary, not containerd: an upgraded containerd keeps finding it.
3. Else containerd's own default for its version (1.6 `registry.k8s.io/pause:3.6`
   … 2.x `pause:3.10`), which must be preseeded; the missing-sandbox warning then
   names the package to install.

With the user's own containerd config, that file decides the sandbox image: the
agent neither builds one nor knows its name (`USER_CONFIG`).

`sandbox_image_name` gives the name alone, writing nothing (for `check`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from actors.agent import __version__
from actors.config.schema import AgentConfig
from actors.containerd.core.spec import BuiltImageSpec
from actors.containerd.core.version import ContainerdVersion
from actors.containerd.runtimes.files import write_atomically
from actors.containerd.runtimes.handlers import default_sandbox_image
from actors.file_key import file_key

__all__ = [
    "USER_CONFIG",
    "SandboxChoice",
    "SandboxImageError",
    "pause_archive",
    "prepare_sandbox",
    "sandbox_image_name",
]


class SandboxImageError(Exception):
    """The built-in sandbox image could not be built: the text names the file and the cause."""


@dataclass(frozen=True, slots=True, kw_only=True)
class SandboxChoice:
    """CRI's sandbox image for this start, and how it got there."""

    #: Its name; None with the user's own containerd config (the file decides).
    name: str | None
    #: The image the agent built for it (rule 2), or None.
    built: BuiltImageSpec | None
    #: True when it is containerd's default because no pause binary was found (rule 3).
    pause_missing: bool


#: The choice with the user's own containerd config: the agent knows nothing of it.
USER_CONFIG = SandboxChoice(name=None, built=None, pause_missing=False)


def pause_archive(cfg: AgentConfig) -> Path:
    """Where the built-in sandbox image's tarball is written: `<state>/images/pause.tar`."""
    return cfg.state_dir / "images" / "pause.tar"


def sandbox_image_name(cfg: AgentConfig, version: ContainerdVersion | None) -> str:
    """The sandbox image the agent configures for `cfg`, by the rules above; writes nothing.

    With the user's own containerd config: `[cri] sandbox_image`, else containerd's default.

    Raises:
        SandboxImageError: the pause binary cannot be read.
    """
    if cfg.cri.sandbox_image:
        return cfg.cri.sandbox_image
    if cfg.containerd.generate_config and cfg.cri.pause_binary is not None:
        from actors.images.pause import pause_image_name  # here: the image code is heavy

        try:
            return pause_image_name(Path(cfg.cri.pause_binary))
        except OSError as e:
            raise _error(cfg.cri.pause_binary, e) from e
    return default_sandbox_image(version)


def prepare_sandbox(cfg: AgentConfig, version: ContainerdVersion | None) -> SandboxChoice:
    """Chooses the sandbox image; for the built-in one, writes its tarball (`pause_archive`)
    unless an earlier start's is kept (`_kept_pause`).

    Args:
        cfg: the agent's config.
        version: the containerd that runs, for its default image.

    Raises:
        SandboxImageError: the pause binary cannot be read, or the tarball cannot be written.
    """
    if not cfg.containerd.generate_config:
        return USER_CONFIG
    if cfg.cri.sandbox_image:
        return SandboxChoice(name=cfg.cri.sandbox_image, built=None, pause_missing=False)
    if cfg.cri.pause_binary is None:
        return SandboxChoice(name=default_sandbox_image(version), built=None, pause_missing=True)
    binary, archive = cfg.cri.pause_binary, pause_archive(cfg)
    built = _kept_pause(binary, archive) or _build_pause(binary, archive)
    return SandboxChoice(name=built.name, built=built, pause_missing=False)


def _record(archive: Path) -> Path:
    """Beside the tarball: what it holds, and what it was built from."""
    return archive.with_suffix(".json")


def _kept_pause(binary: str, archive: Path) -> BuiltImageSpec | None:
    """The image an earlier start built, if its binary, its tarball and the agent are
    the same as then; else None (absent, torn or stale: it is built again)."""
    try:
        held = json.loads(_record(archive).read_text(encoding="utf-8"))
        same = (
            held["agent"] == __version__
            and held["binary"] == file_key(binary)
            and held["archive"] == file_key(str(archive))
            and held["binary"] is not None
            and held["archive"] is not None
        )
        if same:
            return BuiltImageSpec(name=held["name"], archive=str(archive), digest=held["digest"])
    except (OSError, ValueError, KeyError, TypeError):
        pass
    return None


def _build_pause(binary: str, archive: Path) -> BuiltImageSpec:
    """Writes the tarball of `binary`'s image, and then its record (`_kept_pause`)."""
    from actors.images.pause import write_pause_archive  # here: a kept image needs none

    record = _record(archive)
    try:
        archive.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        record.unlink(missing_ok=True)  # the tarball changes first: no record may outlive it
        image = write_pause_archive(Path(binary), archive)
    except OSError as e:
        raise _error(binary, e, archive) from e
    held = {
        "agent": __version__,
        "binary": file_key(binary),
        "archive": file_key(str(archive)),
        "name": image.name,
        "digest": image.digest,
    }
    try:
        write_atomically(record, json.dumps(held), 0o644)
    except OSError:
        pass  # only the next start's time is lost
    return BuiltImageSpec(name=image.name, archive=str(archive), digest=image.digest)


def _error(binary: str, e: OSError, archive: Path | None = None) -> SandboxImageError:
    where = f" into {str(archive)!r}" if archive is not None else ""
    named = e.filename is not None and str(e.filename) != binary
    cause = f"{str(e.filename)!r}: {e.strerror or e}" if named else str(e.strerror or e)
    return SandboxImageError(f"cannot build the sandbox image from {binary!r}{where}: {cause}")
