"""The tree the agent runs, built from its configuration.

    root                       this module's `run`: starts containerd, HEALTHY, DONE
    └── root.containerd        actors.containerd.process:run (the containerd daemon)
        ├── root.containerd.runsc     actors.containerd.logpump:run (runsc's FIFO)
        └── root.containerd.preseed   actors.preseed.service.runnable:run (image tarballs)

As in Metropolis, the containerd service is one node whose children are the
log pump and preseed; `root` only starts it and is then DONE, so its process
exits and costs nothing while the tree runs.
"""

from __future__ import annotations

from typing import Any

from actors.config.schema import AgentConfig
from actors.containerd.runtimes.binary import containerd_version_or_none
from actors.containerd.runtimes.handlers import default_sandbox_image
from actors.supervisor.core.events import RunnableSpec
from actors.supervisor.process.api import Context, Signal, signal
from actors.supervisor.process.api import run as run_child

__all__ = ["run", "root_spec", "containerd_args", "preseed_args"]

#: How much of root.containerd's grace period containerd gets between SIGTERM
#: and our own SIGKILL (the rest is for the node's process to report back).
STOP_SHARE = 0.8


def sandbox_image(cfg: AgentConfig) -> str | None:
    """CRI's sandbox image in the generated config (`[cri] sandbox_image`, else
    containerd's default for its version); None with the user's own containerd config."""
    if not cfg.containerd.generate_config:
        return None
    version = containerd_version_or_none(cfg.containerd.binary)
    return cfg.cri.sandbox_image or default_sandbox_image(version)


def preseed_args(cfg: AgentConfig) -> dict[str, Any]:
    """Keyword arguments of `root.containerd.preseed`."""
    p = cfg.preseed
    return {
        "enabled": p.enabled,
        "address": str(cfg.containerd.address),
        "directory": str(p.dir),
        "record_path": str(p.record),
        "all_platforms": p.all_platforms,
        "skip_missing": p.skip_missing,
        "labels": dict(p.labels),
        "ready_timeout": cfg.containerd.ready_timeout,
        "watch": p.watch,
        "pin": p.pin,
        "unpack": p.unpack,
        "parallel": p.parallel or None,
        # Known only when the agent writes containerd's config; None: unknown.
        "sandbox_image": sandbox_image(cfg),
    }


def containerd_args(cfg: AgentConfig) -> dict[str, Any]:
    """Keyword arguments of `root.containerd` (see `actors.containerd.core.spec`)."""
    c = cfg.containerd
    grace = cfg.policy_set().for_dn("root.containerd").grace_period
    return {
        "binary": c.binary,
        "config": str(c.config),
        "address": str(c.address),
        "path": c.path,
        "tmpdir": str(c.tmpdir),
        "fifo": str(cfg.runsc.fifo),
        "notify_dir": str(cfg.state_dir / "run"),
        "fifo_mode": cfg.runsc.mode,
        "pipe_size": cfg.runsc.pipe_size,
        "ready_timeout": c.ready_timeout,
        "liveness_interval": c.liveness_interval,
        "liveness_timeout": c.liveness_timeout,
        "liveness_failures": c.liveness_failures,
        "stop_timeout": max(0.5, grace * STOP_SHARE) if grace > 0 else 0.5,
        "preseed": preseed_args(cfg),
    }


def root_spec(cfg: AgentConfig) -> RunnableSpec:
    """The root runnable of the agent's tree for `cfg`."""
    return RunnableSpec(target="actors.agent.root:run", args={"containerd": containerd_args(cfg)})


def run(ctx: Context, *, containerd: dict[str, Any]) -> None:
    """The root runnable: start `root.containerd`, then HEALTHY and DONE."""
    run_child(ctx, "containerd", "actors.containerd.process:run", **containerd)
    signal(ctx, Signal.HEALTHY)
    signal(ctx, Signal.DONE)
