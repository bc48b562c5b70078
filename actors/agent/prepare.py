"""The agent's state before its tree starts: directories, containerd's config, CNI.

`prepare_state` runs once per start, after the state directory's lock is taken
(`actors.agent.daemon`) and before `root.containerd` is spawned: the state
directories (0700), the built-in sandbox image's tarball (`actors.agent.sandbox`),
the generated containerd config (after asking the binary for its version) and the
default CNI network (`prepare_network`). `check` and the tests call them too.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from pathlib import Path

from actors.agent.daemon import AgentError
from actors.agent.sandbox import USER_CONFIG, SandboxChoice, SandboxImageError, prepare_sandbox
from actors.config.schema import AgentConfig
from actors.containerd.core.version import ContainerdVersionError
from actors.containerd.runtimes.binary import cached_containerd_version
from actors.containerd.runtimes.cni import (
    REQUIRED_PLUGINS,
    DefaultNetwork,
    ensure_default_network,
    missing_plugins,
)
from actors.containerd.runtimes.config_file import write_containerd_config
from actors.containerd.runtimes.handlers import may_lower_oom_score, pod_runtime_settings
from actors.containerd.runtimes.runsc.access import AccessError
from actors.containerd.runtimes.runsc.state import prepare_runsc

__all__ = ["prepare_network", "prepare_state"]


def _mkdir_private(path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, 0o700)


def prepare_state(cfg: AgentConfig) -> SandboxChoice:
    """Create the state directories, the built-in sandbox image, the containerd config
    and its default CNI network (`prepare_network`).

    Returns:
        CRI's sandbox image, and the tarball of the one built (`actors.agent.sandbox`).

    Raises:
        AgentError: a directory or file could not be made (full disk, permissions),
            naming the path and the cause.
    """
    where: Path = cfg.state_dir
    sandbox = USER_CONFIG
    try:
        for where in (
            cfg.state_dir,
            cfg.state_dir / "run",
            cfg.containerd.tmpdir,
            cfg.runsc.fifo.parent,
            cfg.control.socket.parent,
            cfg.containerd.address.parent,
        ):
            _mkdir_private(where)
        # The namespace Kubernetes sees, so an operator knows where to drop tarballs.
        where = cfg.preseed.dir / "k8s.io"
        where.mkdir(parents=True, exist_ok=True)
        if cfg.containerd.generate_config:
            where = cfg.containerd.config
            _mkdir_private(where.parent)
            where = cfg.state_dir / "runsc"
            runtimes_cfg = _prepare_runsc_or_drop_it(cfg)
            where = cfg.containerd.config
            # The binary says which containerd it is: its config layout and defaults
            # (asked again only when it is another file or was changed).
            version = cached_containerd_version(cfg.containerd.binary, version_cache(cfg))
            # The node's own sandbox image, whose name CRI's config gives.
            sandbox = prepare_sandbox(runtimes_cfg, version)
            pods = pod_runtime_settings(
                runtimes_cfg,
                version=version,
                may_lower_oom=may_lower_oom_score(),
                is_dir=os.path.isdir,
                sandbox_image=sandbox.name,
            )
            write_containerd_config(runtimes_cfg, pods, version)
            where = cfg.cni.conf_dir
            prepare_network(cfg, pods.cni_bin_dirs)
    except SandboxImageError as e:
        raise AgentError(str(e)) from e
    except ContainerdVersionError as e:
        raise AgentError(f"cannot write the containerd config {str(where)!r}: {e}") from e
    except OSError as e:
        # A failed write (ENOSPC) carries no file name: name the file being made.
        raise AgentError(
            f"cannot prepare the state directory: {str(e.filename or where)!r}: {e.strerror or e}"
        ) from e
    return sandbox


def version_cache(cfg: AgentConfig) -> Path:
    """Where `run` keeps what `containerd --version` printed, and for which binary."""
    return cfg.state_dir / "run" / "containerd-version.json"


def prepare_network(cfg: AgentConfig, searched: tuple[Path, ...]) -> None:
    """The default CNI network (`ensure_default_network`); warns of missing plugins.

    Args:
        cfg: the agent's config.
        searched: the CNI plugin directories the generated config names.
    """
    plan = ensure_default_network(cfg)
    # Another network's plugins are its own business; CRI runs `loopback` for every pod.
    default_in_use = plan in (DefaultNetwork.WRITE, DefaultNetwork.KEEP)
    missing = missing_plugins(
        searched,
        lambda p: p.is_file() and os.access(p, os.X_OK),
        REQUIRED_PLUGINS if default_in_use else ("loopback",),
    )
    if missing:
        dirs = ", ".join(repr(str(d)) for d in searched)
        print(
            f"node-containerd: warning: CNI plugins {', '.join(missing)} are not in {dirs}: "
            "pods with their own network namespace will not start; install them "
            "(Debian: apt-get install containernetworking-plugins) or set [cni] bin_dirs",
            file=sys.stderr,
        )


def _prepare_runsc_or_drop_it(cfg: AgentConfig) -> AgentConfig:
    """Prepares the runsc handler; without ACL support, `cfg` with no runsc binary.

    A file system that refuses the sandbox user's ACL costs the `runsc` handler
    (said on stderr), not the agent, unless runsc is the default runtime.
    """
    try:
        prepare_runsc(cfg)
    except AccessError as e:
        if cfg.cri.default_runtime == "runsc":
            raise AgentError(f"{e}; cri.default_runtime is 'runsc'") from e
        print(f"node-containerd: warning: no runsc runtime handler: {e}", file=sys.stderr)
        return dataclasses.replace(cfg, runsc=dataclasses.replace(cfg.runsc, binary=None))
    return cfg
