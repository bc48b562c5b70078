"""CNI for pods with their own network namespace: plugin directories and a default network.

containerd's CRI plugin sets up the network of a pod that is not host-network with
CNI: it loads the first config file of its config directory (by name: `.conf`,
`.conflist`, `.json`, as libcni lists them), and runs the plugins that file names,
found in its plugin directories, in the pod's new network namespace. It also brings
each pod's `lo` up with the `loopback` plugin itself (go-cni's loopback network), so
that plugin must be found too, though no config names it.

Theory of operation:

1. **Plugin directories.** `[cni] bin_dirs` lists where plugins may be (Debian's
   `/usr/lib/cni`, then the conventional `/opt/cni/bin`). containerd from 2.1
   searches every one of them (its `bin_dirs`); 1.6, 1.7 and 2.0 read a single
   `bin_dir`, which is the first listed directory that exists (`cni_search_dirs`).
2. **The default network.** When `[cni] conf_dir` is the agent's own directory
   (the key left "") and no other CNI config is in it, the agent writes
   `DEFAULT_CONFLIST` at every start: a bridge (`BRIDGE`) with host-local addresses
   from `[cni] subnet` and a default route through it, masquerading of what leaves
   the subnet, `firewall` (forwarding allowed for the pods' addresses, as podman
   and nerdctl do, so a host whose FORWARD policy is DROP still routes them), and
   `portmap` (host ports). host-local keeps its leases under the state directory.
3. **The operator's config wins.** A config file of anyone else in `conf_dir`
   means the default network must not be used: at start the agent removes its own
   file (`plan_default_network`). While it runs, its file's name sorts after any
   usual name (`05-cilium.conflist`, `10-flannel.conflist`, `87-podman.conflist`),
   so the file an operator or add-on writes is the first one, which CRI, watching
   the directory, loads as soon as it is written (containerd 1.6 ignores the mere
   creation or rename of a file). A directory the operator named (`conf_dir` set)
   is theirs: the agent never writes into it.

`default_conflist`, `plan_default_network`, `cni_search_dirs` and
`missing_plugins` are pure (the file system is passed in as names, contents or a
predicate); `ensure_default_network` carries out the plan.
"""

from __future__ import annotations

import enum
import json
import os
from collections.abc import Callable, Iterable
from pathlib import Path

from actors.config.schema import AgentConfig
from actors.containerd.core.version import ContainerdVersion
from actors.containerd.runtimes.files import write_atomically

__all__ = [
    "BRIDGE",
    "CONFIG_SUFFIXES",
    "DEFAULT_CONFLIST",
    "NETWORK_NAME",
    "REQUIRED_PLUGINS",
    "DefaultNetwork",
    "cni_search_dirs",
    "default_conflist",
    "ensure_default_network",
    "host_local_dir",
    "missing_plugins",
    "plan_default_network",
    "reads_many_bin_dirs",
]

#: The file name of the default network's config in `conf_dir`: sorts after the
#: names network add-ons and other runtimes use, so any of theirs is loaded first.
DEFAULT_CONFLIST = "zz-node-containerd.conflist"
#: The default network's name (CNI's `name`; host-local's lease directory).
NETWORK_NAME = "node-containerd"
#: The default network's bridge: not `cni0`, which flannel and containerd's example
#: config use with addresses of their own.
BRIDGE = "nc0"
#: The CNI spec version of the default config: 0.4.0, which every plugin release
#: since 2019 and every containerd we run understand.
CNI_VERSION = "0.4.0"
#: The extensions libcni reads from a config directory.
CONFIG_SUFFIXES = (".conf", ".conflist", ".json")
#: The plugins a pod of the default network needs: those it names, and
#: `loopback`, which CRI runs itself for every pod's `lo`.
REQUIRED_PLUGINS = ("bridge", "host-local", "firewall", "portmap", "loopback")


class DefaultNetwork(enum.Enum):
    """What the agent does with its default network's file at start."""

    #: Write it (absent, or saying something else, e.g. another subnet).
    WRITE = "write"
    #: It is there and says what it should.
    KEEP = "keep"
    #: Another config is there: remove ours.
    REMOVE = "remove"
    #: Another config is there and ours is not: nothing to do.
    NONE = "none"


def reads_many_bin_dirs(version: ContainerdVersion | None) -> bool:
    """Whether this containerd reads CRI's `cni.bin_dirs` (a list): from 2.1."""
    return version is not None and version.release >= (2, 1)


def cni_search_dirs(
    bin_dirs: tuple[Path, ...],
    version: ContainerdVersion | None,
    is_dir: Callable[[Path], bool],
) -> tuple[Path, ...]:
    """The plugin directories containerd `version` is to search.

    Args:
        bin_dirs: `[cni] bin_dirs`, in order (never empty).
        version: the containerd; None counts as one that reads a single directory.
        is_dir: whether a path is an existing directory (`os.path.isdir`).

    Returns:
        Every directory for a containerd that reads a list; else the first that
        exists, or the first of all when none does (so that CRI's error names it).
    """
    if reads_many_bin_dirs(version):
        return bin_dirs
    for directory in bin_dirs:
        if is_dir(directory):
            return (directory,)
    return bin_dirs[:1]


def missing_plugins(
    dirs: Iterable[Path], is_file: Callable[[Path], bool], plugins: Iterable[str] = REQUIRED_PLUGINS
) -> list[str]:
    """The `plugins` found in none of `dirs` (`is_file`: an executable file there)."""
    searched = list(dirs)
    return [p for p in plugins if not any(is_file(d / p) for d in searched)]


def host_local_dir(cfg: AgentConfig) -> Path:
    """Where host-local keeps the default network's leases: under the state directory."""
    return cfg.state_dir / "cni" / "networks"


def default_conflist(subnet: str, data_dir: Path) -> str:
    """The default network's config file: JSON text, ending with a newline.

    Args:
        subnet: the private IPv4 range (`[cni] subnet`), normalised.
        data_dir: host-local's lease directory.
    """
    doc = {
        "cniVersion": CNI_VERSION,
        "name": NETWORK_NAME,
        "plugins": [
            {
                "type": "bridge",
                "bridge": BRIDGE,
                "isGateway": True,
                "ipMasq": True,
                "hairpinMode": True,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{"subnet": subnet}]],
                    "routes": [{"dst": "0.0.0.0/0"}],
                    "dataDir": str(data_dir),
                },
            },
            {"type": "firewall"},
            {"type": "portmap", "capabilities": {"portMappings": True}},
        ],
    }
    return json.dumps(doc, indent=2) + "\n"


def plan_default_network(configs: Iterable[str], ours: str | None, wanted: str) -> DefaultNetwork:
    """What to do with the default network's file, given the config directory.

    Args:
        configs: the names of the CNI config files in the directory
            (`CONFIG_SUFFIXES`), ours included if it is there.
        ours: the text of our file; None when it is absent.
        wanted: the text it should have (`default_conflist`).
    """
    others = [name for name in configs if name != DEFAULT_CONFLIST]
    if others:
        return DefaultNetwork.REMOVE if ours is not None else DefaultNetwork.NONE
    return DefaultNetwork.KEEP if ours == wanted else DefaultNetwork.WRITE


def _config_names(conf_dir: Path) -> list[str]:
    try:
        entries = sorted(os.listdir(conf_dir))
    except FileNotFoundError:
        return []
    return [
        name for name in entries if name.endswith(CONFIG_SUFFIXES) and (conf_dir / name).is_file()
    ]


def ensure_default_network(cfg: AgentConfig) -> DefaultNetwork:
    """Writes, keeps or removes the default network's file in `cfg.cni.conf_dir`.

    Does nothing (`DefaultNetwork.NONE`) when the directory is the operator's
    (`cfg.cni.write_default` is False). The file is written atomically (mode 0644).

    Raises:
        OSError: the directory or the file could not be made or removed.
    """
    if not cfg.cni.write_default:
        return DefaultNetwork.NONE
    conf_dir = cfg.cni.conf_dir
    target = conf_dir / DEFAULT_CONFLIST
    try:
        ours: str | None = target.read_text(encoding="utf-8")
    except FileNotFoundError:
        ours = None
    wanted = default_conflist(cfg.cni.subnet, host_local_dir(cfg))
    plan = plan_default_network(_config_names(conf_dir), ours, wanted)
    if plan is DefaultNetwork.REMOVE:
        target.unlink(missing_ok=True)
    elif plan is DefaultNetwork.WRITE:
        write_atomically(target, wanted, 0o644)
    return plan
