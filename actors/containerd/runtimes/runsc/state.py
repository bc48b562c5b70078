"""Prepares the runsc handler's corner of the state directory at every start.

`prepare_runsc` makes `<state>/runsc/{root,tmp}` (0700), lets gVisor's sandbox
user search its way to the TMPDIR (`actors.containerd.runtimes.runsc.access`), and writes the
launcher and its helper (`actors.containerd.runtimes.runsc.launcher`) with the config's
flags. Run it after the state directories were made 0700 (a `chmod` resets an ACL's mask).
"""

from __future__ import annotations

import os
from pathlib import Path

from actors.config.schema import AgentConfig
from actors.containerd.runtimes.handlers import runsc_paths
from actors.containerd.runtimes.runsc.access import grant_search
from actors.containerd.runtimes.runsc.launcher import (
    helper_path,
    render_helper,
    render_launcher,
    write_launcher,
)

__all__ = ["launcher_flags", "prepare_runsc"]


def launcher_flags(cfg: AgentConfig) -> list[str]:
    """runsc's flags in the launcher: logs into the FIFO, platform, then the config's."""
    fifo = str(cfg.runsc.fifo)
    flags = ["--debug", f"--debug-log={fifo}", f"--panic-log={fifo}"]
    if cfg.runsc.platform:
        flags.append(f"--platform={cfg.runsc.platform}")
    return [*flags, *cfg.runsc.flags]


def _mkdir_private(path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, 0o700)


def prepare_runsc(cfg: AgentConfig) -> None:
    """Directories, ACL and launcher of the runsc handler. Does nothing without runsc.

    Raises:
        OSError: a directory or the launcher could not be made.
        actors.containerd.runtimes.runsc.access.AccessError: the ACL could not be set.
    """
    if cfg.runsc.binary is None:
        return
    paths = runsc_paths(cfg)
    for directory in (paths.launcher.parent, paths.root, paths.tmpdir):
        _mkdir_private(directory)
    for directory in (cfg.state_dir, paths.tmpdir.parent):
        grant_search(directory)
    flags = launcher_flags(cfg)
    helper = helper_path(paths.launcher)
    write_launcher(helper, render_helper(runsc=cfg.runsc.binary, flags=flags, tmpdir=paths.tmpdir))
    write_launcher(
        paths.launcher,
        render_launcher(runsc=cfg.runsc.binary, flags=flags, tmpdir=paths.tmpdir, helper=helper),
    )
