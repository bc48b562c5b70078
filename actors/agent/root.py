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

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from actors.containerd.core.dns import CONTAINERD_DN, CONTAINERD_NAME
from actors.containerd.core.spec import ContainerdSpec, PreseedSpec
from actors.supervisor.core.events import RunnableSpec
from messages.specs import spec_from_wire, spec_to_wire

if TYPE_CHECKING:
    from actors.agent.sandbox import SandboxChoice
    from actors.config.schema import AgentConfig
    from actors.supervisor.process.api import Context

__all__ = ["RootSpec", "containerd_spec", "preseed_spec", "root_spec", "run"]

#: How much of root.containerd's grace period containerd gets between SIGTERM
#: and our own SIGKILL (the rest is for the node's process to report back).
STOP_SHARE = 0.8
#: containerd's shortest stop time, in seconds, however short the grace period.
MIN_STOP_TIMEOUT = 0.5
#: How the agent's containerd says it is ready: `READY=1` on the notify socket.
READINESS = "notify"


@dataclass(frozen=True, slots=True, kw_only=True)
class RootSpec:
    """What the root runnable starts: `root.containerd`."""

    #: The spec of `root.containerd`.
    containerd: ContainerdSpec


def sandbox_image(cfg: AgentConfig) -> str | None:
    """CRI's sandbox image when none was built (`[cri] sandbox_image`, else containerd's
    default for its version); None with the user's own containerd config."""
    from actors.containerd.runtimes.binary import containerd_version_or_none
    from actors.containerd.runtimes.handlers import default_sandbox_image

    if not cfg.containerd.generate_config:
        return None
    version = containerd_version_or_none(cfg.containerd.binary)
    return cfg.cri.sandbox_image or default_sandbox_image(version)


def _unbuilt(cfg: AgentConfig) -> SandboxChoice:
    """The sandbox choice when the caller built nothing (tools and tests that start no agent)."""
    from actors.agent.sandbox import SandboxChoice

    missing = cfg.containerd.generate_config and not cfg.cri.sandbox_image
    return SandboxChoice(
        name=sandbox_image(cfg),
        built=None,
        pause_missing=missing and cfg.cri.pause_binary is None,
    )


def preseed_spec(cfg: AgentConfig, sandbox: SandboxChoice | None = None) -> PreseedSpec | None:
    """The spec of `root.containerd.preseed`; None when `[preseed] enabled` is off.

    Args:
        cfg: the agent's config.
        sandbox: CRI's sandbox image as `prepare_state` chose (and built) it; None: as
            if nothing was built (`[cri] sandbox_image`, else containerd's default).
    """
    from actors.containerd.runtimes.handlers import CRI_SNAPSHOTTER

    p = cfg.preseed
    if not p.enabled:
        return None
    if sandbox is None:
        sandbox = _unbuilt(cfg)
    return PreseedSpec(
        address=str(cfg.containerd.address),
        dir=str(p.dir),
        record=str(p.record),
        all_platforms=p.all_platforms,
        skip_missing=p.skip_missing,
        labels=p.labels,
        ready_timeout=cfg.containerd.ready_timeout,
        watch=p.watch,
        pin=p.pin,
        unpack=p.unpack,
        parallel=p.parallel,
        snapshotter=CRI_SNAPSHOTTER,
        sandbox_image=sandbox.name,
        built_sandbox=sandbox.built,
        pause_missing=sandbox.pause_missing,
    )


def containerd_spec(cfg: AgentConfig, sandbox: SandboxChoice | None = None) -> ContainerdSpec:
    """The spec of `root.containerd` (and, inside it, of its children); `sandbox` as for
    `preseed_spec`."""
    c = cfg.containerd
    grace = cfg.policy_set().for_dn(CONTAINERD_DN).grace_period
    return ContainerdSpec(
        binary=c.binary,
        config=str(c.config),
        address=str(c.address),
        path=c.path,
        tmpdir=str(c.tmpdir),
        fifo=str(cfg.runsc.fifo),
        notify_dir=str(cfg.state_dir / "run"),
        fifo_mode=cfg.runsc.mode,
        pipe_size=cfg.runsc.pipe_size,
        ready_timeout=c.ready_timeout,
        stop_timeout=max(MIN_STOP_TIMEOUT, grace * STOP_SHARE),
        readiness=READINESS,
        liveness_interval=c.liveness_interval,
        liveness_timeout=c.liveness_timeout,
        liveness_failures=c.liveness_failures,
        preseed=preseed_spec(cfg, sandbox),
    )


def root_spec(cfg: AgentConfig, sandbox: SandboxChoice | None = None) -> RunnableSpec:
    """The root runnable of the agent's tree for `cfg`; `sandbox` as for `preseed_spec`."""
    spec = RootSpec(containerd=containerd_spec(cfg, sandbox))
    return RunnableSpec(target="actors.agent.root:run", args=spec_to_wire(spec))


def run(ctx: Context, **wire: Any) -> None:
    """The root runnable: start `root.containerd`, then HEALTHY and DONE."""
    from actors.supervisor.process.api import Signal, signal
    from actors.supervisor.process.api import run as run_child

    spec = spec_from_wire(RootSpec, wire)
    run_child(
        ctx, CONTAINERD_NAME, "actors.containerd.process:run", **spec_to_wire(spec.containerd)
    )
    signal(ctx, Signal.HEALTHY)
    signal(ctx, Signal.DONE)
