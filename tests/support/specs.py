"""The one builder of runnables' specs for tests and benchmarks.

A spec has no defaults (the config schema is the one place of them), so a test that
needs one takes the default profile's: `containerd_spec` is what `actors.agent.root`
builds from the default profile for a state directory, with the test's own values
(paths of its containerd, short timeouts) put over it. `containerd_spec_in` is the one
builder of `root.containerd`'s arguments for a containerd whose every file lies directly
in one directory (the layout `tests.support.containerd_daemon` writes the config for).
"""

from __future__ import annotations

import dataclasses
import functools
import shutil
from pathlib import Path
from typing import Any

from actors.agent.root import containerd_spec as spec_from_config
from actors.config import AgentConfig, parse_config
from actors.config.schema import STATE_ENV
from actors.containerd.core.spec import ContainerdSpec, PreseedSpec

__all__ = ["containerd_spec", "containerd_spec_in", "default_config", "preseed_spec"]

#: The `PATH` the test containerds run with.
SYSTEM_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"


@functools.lru_cache(maxsize=64)
def default_config(state_dir: str, toml: str = "") -> AgentConfig:
    """The default profile (with `toml` over it) for `state_dir`; binaries not looked up."""
    env = {STATE_ENV: str(state_dir)}
    return parse_config(toml, source="<test>", env=env, check_binaries=False)


@functools.lru_cache(maxsize=64)
def _profile_spec(state_dir: str) -> ContainerdSpec:
    return spec_from_config(default_config(state_dir))


def containerd_spec(state_dir: str | Path, **overrides: Any) -> ContainerdSpec:
    """`root.containerd`'s spec from the default profile for `state_dir`, with `overrides`.

    The preseed child is off (`preseed=None`) unless `overrides` gives one.
    """
    fields: dict[str, Any] = {"preseed": None, **overrides}
    return dataclasses.replace(_profile_spec(str(state_dir)), **fields)


def containerd_spec_in(base: str | Path, **overrides: Any) -> ContainerdSpec:
    """`containerd_spec` for a containerd whose config, sockets, FIFO and tmp lie in `base`.

    The binary is the `containerd` on `PATH` (at the time of the call), the config
    `<base>/config.toml`, the socket `<base>/containerd.sock`, the notify socket's
    directory `base`; `overrides` (timeouts, a fake binary, another config) go on top.
    """
    fields: dict[str, Any] = {
        "binary": shutil.which("containerd") or "/usr/bin/containerd",
        "config": f"{base}/config.toml",
        "address": f"{base}/containerd.sock",
        "path": SYSTEM_PATH,
        "tmpdir": f"{base}/tmp",
        "fifo": f"{base}/runsc.fifo",
        "notify_dir": str(base),
        **overrides,
    }
    return containerd_spec(base, **fields)


def preseed_spec(state_dir: str | Path, **overrides: Any) -> PreseedSpec:
    """`root.containerd.preseed`'s spec from the default profile, with `overrides`."""
    spec = _profile_spec(str(state_dir)).preseed
    assert spec is not None, "the default profile preseeds"
    return dataclasses.replace(spec, **overrides)
