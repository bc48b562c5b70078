"""The containerd config the agent generates when the user gives none.

What the config says is data, shared by every containerd version
(`ContainerdSettings`); how it says it depends on the version the binary reports
(`actors.containerd.runtimes.binary`): containerd 1.6 and 1.7 read version 2, whose CRI
plugin is the one `io.containerd.grpc.v1.cri` table; containerd 2.x reads version 3,
where CRI is split into `io.containerd.cri.v1.runtime` (runtimes),
`io.containerd.cri.v1.images` (snapshotter, the sandbox image) and
`io.containerd.grpc.v1.cri` (the gRPC service, streaming). 2.x would migrate a
version-2 file at every start, with a warning; each version gets its own layout
instead, so none migrates anything.

Held on every version: everything containerd writes lies under the agent's state
directory (root, state, the gRPC socket and the ttrpc socket `<address>.ttrpc`, and
the `opt` plugin's directory, otherwise `/opt/containerd`, and on 2.x the image
verifier's binaries under it). Nothing listens beyond loopback unless asked: the
debug address is empty, the metrics address is `[containerd] metrics_address` (empty
by default: no metrics listener) and the CRI plugin's TCP service is disabled. NRI is
off, as it is by default on 1.6 (which has none) and 1.7: 2.x enables it by default
with a socket at `/var/run/nri/nri.sock`, outside the state directory and shared by
every containerd on the machine. The CRI plugin itself stays on, since
Kubernetes reaches containerd through it; its streaming server (exec, attach,
port-forward) listens on 127.0.0.1 at a random port, reachable only with the
per-request tokens CRI hands out.

The CRI plugin gets the pod runtimes of `actors.containerd.runtimes.handlers` (handlers
`runc` and `runsc`, default handler, sandbox image, runc's root, CNI's config
directory, all under the state directory; CNI's plugin directories), in each
version's layout. The network namespaces of pods are mounted under containerd's
state directory too (`netns_mounts_under_state_dir`; CRI's default is
`/var/run/netns`). CNI's plugin directories are one `bin_dir` before containerd
2.1, the list `bin_dirs` from 2.1 (where `bin_dir` is deprecated).

`render_containerd_config` is pure; `write_containerd_config` asks the binary its
version and writes the file atomically, only when the config says the agent owns it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Union

from actors.config.schema import AgentConfig
from actors.containerd.core.version import ContainerdVersion
from actors.containerd.runtimes.binary import containerd_version
from actors.containerd.runtimes.cni import reads_many_bin_dirs
from actors.containerd.runtimes.files import write_atomically
from actors.containerd.runtimes.handlers import PodRuntimeSettings, pod_runtime_settings

__all__ = [
    "ContainerdSettings",
    "containerd_settings",
    "render_containerd_config",
    "render_settings",
    "write_containerd_config",
]

_ESCAPES = {
    '"': '\\"',
    "\\": "\\\\",
    "\b": "\\b",
    "\t": "\\t",
    "\n": "\\n",
    "\f": "\\f",
    "\r": "\\r",
}
_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")

Value = Union[str, Path, bool, int, list[str], "Table"]
Table = Mapping[str, Value]


@dataclass(frozen=True, slots=True, kw_only=True)
class ContainerdSettings:
    """What the generated config says, whatever its layout. Paths are absolute."""

    #: The agent config it comes from, named in the header comment.
    source: str
    #: Containerd's persistent root.
    root: Path
    #: Containerd's runtime state directory.
    state: Path
    #: The gRPC unix socket.
    address: Path
    #: The ttrpc unix socket.
    ttrpc_address: Path
    #: The `opt` plugin's directory (`<root>/opt`).
    opt_dir: Path
    #: The CRI plugin's pod runtimes (`actors.containerd.runtimes.handlers`): handlers,
    #: default handler, sandbox image, CNI config directory; None: CRI's defaults.
    pods: PodRuntimeSettings | None = None
    #: containerd's metrics endpoint, `host:port`; "" for none.
    metrics_address: str = ""


def containerd_settings(cfg: AgentConfig, pods: PodRuntimeSettings) -> ContainerdSettings:
    """The settings of the config generated for `cfg`, with its pod runtimes `pods`."""
    ctd = cfg.containerd
    return ContainerdSettings(
        source=str(cfg.source),
        root=ctd.root,
        state=ctd.state,
        address=ctd.address,
        ttrpc_address=ctd.ttrpc_address,
        opt_dir=ctd.root / "opt",
        pods=pods,
        metrics_address=ctd.metrics_address,
    )


def _top(s: ContainerdSettings, version: int) -> dict[str, Value]:
    """The top level and the daemon's own tables, alike in versions 2 and 3."""
    return {
        "version": version,
        "root": s.root,
        "state": s.state,
        "grpc": {"address": s.address},
        "ttrpc": {"address": s.ttrpc_address},
        "debug": {"address": ""},
        "metrics": {"address": s.metrics_address},
    }


def _cri_runtimes(pods: PodRuntimeSettings) -> dict[str, Value]:
    """The `containerd` table of CRI's runtimes, alike in both layouts (its place differs)."""
    runtimes: dict[str, Value] = {}
    for rt in pods.runtimes:
        options: dict[str, Value] = {}
        if rt.binary_name is not None:
            options["BinaryName"] = rt.binary_name
        options["Root"] = rt.root
        runtimes[rt.name] = {"runtime_type": rt.runtime_type, "options": options}
    return {"default_runtime_name": pods.default_runtime, "runtimes": runtimes}


def _cni(pods: PodRuntimeSettings, many_dirs: bool) -> dict[str, Value]:
    """CRI's `cni` table: the plugin directories (`bin_dirs` from 2.1) and the config's."""
    dirs: dict[str, Value]
    if many_dirs:
        dirs = {"bin_dirs": [str(d) for d in pods.cni_bin_dirs]}
    else:
        dirs = {"bin_dir": pods.cni_bin_dirs[0]}
    return dirs | {"conf_dir": pods.cni_conf_dir}


def _v2(s: ContainerdSettings) -> dict[str, Value]:
    """Version 2 (containerd 1.6, 1.7): CRI is one `io.containerd.grpc.v1.cri` table."""
    cri: dict[str, Value] = {"disable_tcp_service": True}
    if s.pods is not None:
        cri["sandbox_image"] = s.pods.sandbox_image
        cri["restrict_oom_score_adj"] = s.pods.restrict_oom_score_adj
        cri["netns_mounts_under_state_dir"] = True
        cri["cni"] = _cni(s.pods, many_dirs=False)
        cri["containerd"] = _cri_runtimes(s.pods)
    return _top(s, 2) | {
        "plugins": {
            "io.containerd.internal.v1.opt": {"path": s.opt_dir},
            "io.containerd.grpc.v1.cri": cri,
            "io.containerd.nri.v1.nri": {"disable": True},
        }
    }


def _v3(s: ContainerdSettings, version: ContainerdVersion) -> dict[str, Value]:
    """Version 3 (containerd 2.x): CRI split into runtime, images and the gRPC service.

    The sandbox image is `io.containerd.cri.v1.images`' `pinned_images.sandbox`;
    handlers, the OOM score rule and CNI are `io.containerd.cri.v1.runtime`'s. 2.x also
    has an image verifier plugin whose binaries would be looked for in
    `/opt/containerd/image-verifier/bin`: here it is under the `opt` directory too.
    """
    plugins: dict[str, Value] = {
        "io.containerd.internal.v1.opt": {"path": s.opt_dir},
        "io.containerd.image-verifier.v1.bindir": {"bin_dir": s.opt_dir / "image-verifier" / "bin"},
    }
    if s.pods is not None:
        plugins["io.containerd.cri.v1.images"] = {
            "pinned_images": {"sandbox": s.pods.sandbox_image}
        }
        plugins["io.containerd.cri.v1.runtime"] = {
            "restrict_oom_score_adj": s.pods.restrict_oom_score_adj,
            "netns_mounts_under_state_dir": True,
            "cni": _cni(s.pods, many_dirs=reads_many_bin_dirs(version)),
            "containerd": _cri_runtimes(s.pods),
        }
    plugins["io.containerd.grpc.v1.cri"] = {"disable_tcp_service": True}
    plugins["io.containerd.nri.v1.nri"] = {"disable": True}
    return _top(s, 3) | {"plugins": plugins}


def _toml_string(value: str | Path) -> str:
    """A TOML basic string: quotes, backslashes and control characters escaped."""
    out = []
    for ch in str(value):
        if ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def _toml_value(value: Value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_string(v) for v in value) + "]"
    assert isinstance(value, (str, Path)), value
    return _toml_string(value)


def _toml_key(key: str) -> str:
    return key if _BARE_KEY.fullmatch(key) else _toml_string(key)


def _toml_table(table: Table, path: list[str], out: list[str]) -> None:
    """Appends `table`'s keys, then its subtables, each under its dotted header."""
    indent = "  " * max(len(path) - 1, 0)
    for key, value in table.items():
        if not isinstance(value, Mapping):
            out.append(f"{indent}{'  ' if path else ''}{_toml_key(key)} = {_toml_value(value)}")
    for key, value in table.items():
        if isinstance(value, Mapping):
            sub = [*path, key]
            if not path:
                out.append("")
            out.append("  " * (len(sub) - 1) + "[" + ".".join(map(_toml_key, sub)) + "]")
            _toml_table(value, sub, out)


def render_containerd_config(
    cfg: AgentConfig, version: ContainerdVersion, pods: PodRuntimeSettings | None = None
) -> str:
    """The text of containerd's config for `cfg`, in the layout `version` reads natively.

    Args:
        cfg: a loaded agent config; its `containerd` section gives root, state
            and the socket address.
        version: the containerd that is to read it: version 3 for 2.x, else 2.
        pods: the pod runtimes; default: `pod_runtime_settings` of `cfg` for `version`.

    Returns:
        TOML text, ending with a newline.
    """
    if pods is None:
        pods = pod_runtime_settings(cfg, version=version)
    return render_settings(containerd_settings(cfg, pods), version)


def render_settings(s: ContainerdSettings, version: ContainerdVersion) -> str:
    """The text of a containerd config saying `s`, in the layout `version` reads natively."""
    tree = _v3(s, version) if version.config_version == 3 else _v2(s)
    out = [
        f"# Generated by node-containerd from {s.source} for containerd {version}.",
        "# Rewritten at every start: edit the agent's config instead, or point",
        "# containerd.config at a file of your own.",
    ]
    _toml_table(tree, [], out)
    return "\n".join(out) + "\n"


def write_containerd_config(
    cfg: AgentConfig,
    pods: PodRuntimeSettings | None = None,
    version: ContainerdVersion | None = None,
) -> Path:
    """Writes the generated config to `cfg.containerd.config`, atomically.

    Does nothing when the config names the user's own file
    (`cfg.containerd.generate_config` is False).

    Args:
        cfg: the agent config.
        pods: the pod runtimes; default: `pod_runtime_settings` of `cfg` for `version`.
        version: the containerd that reads it; None asks `cfg.containerd.binary`.

    Returns:
        The path containerd is to be started with (`--config`).

    Raises:
        ContainerdVersionError: the binary did not say its version.
    """
    target = cfg.containerd.config
    if not cfg.containerd.generate_config:
        return target
    if version is None:
        version = containerd_version(cfg.containerd.binary)
    write_atomically(target, render_containerd_config(cfg, version, pods), 0o644)
    return target
