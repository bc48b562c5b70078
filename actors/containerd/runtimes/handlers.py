"""The pod runtimes of the generated containerd config, as data both renderers share.

`pod_runtime_settings` says what containerd's CRI plugin gets: the runtime
handlers `runc` and (when a runsc binary is found) `runsc`, the default one,
the sandbox image, and the places under the state directory that replace
containerd's defaults outside it:

* `<state>/runc`: runc's `--root` (the shim option `Root`; containerd's
  default is `/run/containerd/runc`);
* `<state>/runsc/root`: runsc's `--root`;
* `<state>/runsc/tmp`: the `TMPDIR` runsc runs with (gVisor's sandbox mounts
  the tmpfs of its chroot there; see `actors.containerd.runtimes.runsc.access`);
* `<state>/runsc/launcher`: the launcher the `runsc` handler's shim runs as
  its runc (`actors.containerd.runtimes.runsc.launcher`);
* `[cni] conf_dir` (default `<state>/cni/net.d`): the CNI config directory,
  which containerd's CRI plugin would otherwise create as `/etc/cni/net.d`;
* `[cni] bin_dirs`: the CNI plugin directories containerd searches
  (`actors.containerd.runtimes.cni.cni_search_dirs`), instead of its
  `/opt/cni/bin` only.

Pure: the containerd version, whether the agent may lower OOM scores and which
directories exist are parameters (`containerd_version`, `may_lower_oom_score` and
`os.path.isdir` do that I/O).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from actors.config.schema import AgentConfig
from actors.containerd.core.version import ContainerdVersion
from actors.containerd.runtimes.cni import cni_search_dirs

__all__ = [
    "CRI_SNAPSHOTTER",
    "RUNC_V2",
    "CriRuntime",
    "PodRuntimeSettings",
    "RunscPaths",
    "default_sandbox_image",
    "may_lower_oom_score",
    "pod_runtime_settings",
    "runsc_paths",
]

#: The snapshotter CRI unpacks images into: containerd's default, which the
#: generated config keeps.
CRI_SNAPSHOTTER = "overlayfs"
#: containerd's runc v2 shim, which runs both handlers.
RUNC_V2 = "io.containerd.runc.v2"
#: containerd's own default sandbox image, per (major, minor); later versions
#: use the newest entry below them.
_SANDBOX_IMAGES = (
    ((1, 6), "registry.k8s.io/pause:3.6"),
    ((1, 7), "registry.k8s.io/pause:3.8"),
    ((2, 0), "registry.k8s.io/pause:3.10"),
)
#: CAP_SYS_RESOURCE, which writing a negative oom_score_adj needs.
_CAP_SYS_RESOURCE = 24


@dataclass(frozen=True, slots=True, kw_only=True)
class RunscPaths:
    """Where the runsc handler keeps its things, all under the state directory."""

    #: The launcher script, the shim's `BinaryName`.
    launcher: Path
    #: runsc's `--root` (container state).
    root: Path
    #: The `TMPDIR` runsc runs with; gVisor's sandbox user must reach it.
    tmpdir: Path


@dataclass(frozen=True, slots=True, kw_only=True)
class CriRuntime:
    """One CRI runtime handler (`[plugins.…cri.containerd.runtimes.<name>]`)."""

    #: The handler's name, as a RuntimeClass or RunPodSandbox names it.
    name: str
    #: containerd's shim for it.
    runtime_type: str = RUNC_V2
    #: The shim option `BinaryName`: the runc-compatible binary; None: `runc`.
    binary_name: Path | None = None
    #: The shim option `Root`: the runtime's `--root`.
    root: Path


@dataclass(frozen=True, slots=True, kw_only=True)
class PodRuntimeSettings:
    """Everything the CRI plugin's section of a generated config says."""

    #: The pod sandbox image.
    sandbox_image: str
    #: The handler of pods that name none.
    default_runtime: str
    #: The handlers, `runc` first.
    runtimes: tuple[CriRuntime, ...]
    #: CNI's config directory (read by CRI, created if missing).
    cni_conf_dir: Path
    #: CNI's plugin directories, searched in order: one for a containerd that
    #: reads a single `bin_dir` (before 2.1).
    cni_bin_dirs: tuple[Path, ...]
    #: True when containerd may not lower oom_score_adj (no CAP_SYS_RESOURCE): CRI
    #: then keeps the pods' scores at or above its own instead of failing them.
    restrict_oom_score_adj: bool


def runsc_paths(cfg: AgentConfig) -> RunscPaths:
    """The runsc handler's paths for `cfg`."""
    base = cfg.state_dir / "runsc"
    return RunscPaths(launcher=base / "launcher", root=base / "root", tmpdir=base / "tmp")


def default_sandbox_image(version: ContainerdVersion | None) -> str:
    """containerd's own default sandbox image for its release; 1.6's if unknown."""
    chosen = _SANDBOX_IMAGES[0][1]
    for since, image in _SANDBOX_IMAGES:
        if version is not None and version.release >= since:
            chosen = image
    return chosen


def pod_runtime_settings(
    cfg: AgentConfig,
    *,
    version: ContainerdVersion | None = None,
    may_lower_oom: bool = True,
    is_dir: Callable[[Path], bool] = lambda _: False,
    sandbox_image: str | None = None,
) -> PodRuntimeSettings:
    """The CRI settings of a generated config.

    Args:
        cfg: the agent's config.
        version: containerd's release, for the default sandbox image and the
            layout of CNI's plugin directories.
        may_lower_oom: whether containerd may write negative oom_score_adj values.
        is_dir: whether a path is an existing directory (`os.path.isdir`): a
            containerd that reads one CNI plugin directory gets the first of
            `[cni] bin_dirs` that exists. The default says none does (the first).
        sandbox_image: the sandbox image the agent chose (`actors.agent.sandbox`: its
            own built-in image by default); None: `[cri] sandbox_image`, else
            containerd's default for `version`.
    """
    runtimes = [CriRuntime(name="runc", root=cfg.state_dir / "runc")]
    if cfg.runsc.binary is not None:
        paths = runsc_paths(cfg)
        runtimes.append(CriRuntime(name="runsc", binary_name=paths.launcher, root=paths.root))
    return PodRuntimeSettings(
        sandbox_image=sandbox_image or cfg.cri.sandbox_image or default_sandbox_image(version),
        default_runtime=cfg.cri.default_runtime,
        runtimes=tuple(runtimes),
        cni_conf_dir=cfg.cni.conf_dir,
        cni_bin_dirs=cni_search_dirs(cfg.cni.bin_dirs, version, is_dir),
        restrict_oom_score_adj=not may_lower_oom,
    )


def may_lower_oom_score(status: str = "/proc/self/status") -> bool:
    """Whether this process has CAP_SYS_RESOURCE (so its children may too)."""
    try:
        with open(status, encoding="ascii") as f:
            for line in f:
                if line.startswith("CapEff:"):
                    return bool(int(line.split()[1], 16) >> _CAP_SYS_RESOURCE & 1)
    except (OSError, ValueError, IndexError):
        pass
    return True
