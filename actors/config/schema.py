"""The agent's configuration as typed, frozen data, and the one place its defaults live.

`AgentConfig` is what `load_config` returns: one frozen dataclass per TOML section,
every path already made absolute, every duration in seconds, every size in bytes.
The defaults of the static keys are the dataclass field defaults below; the paths
that default to a place under the state directory are listed in `DERIVED_PATHS`.
The embedded default profile (`default.toml`) writes out the same values, and a
test keeps the two from drifting apart.

This module does no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

from actors.config.errors import ConfigError
from actors.config.state_dir import CONTROL_SOCKET_NAME, DEFAULT_STATE_DIR, STATE_ENV
from actors.containerd.core.dns import CONTAINERD_DN, RUNSC_DN
from actors.logtree.parse.line import ParseFormat
from actors.supervisor.core.policy import PolicyRule, PolicySet
from actors.supervisor.core.severity import Severity

__all__ = [
    "DEFAULT_STATE_DIR",
    "DERIVED_PATHS",
    "PAUSE_BINARY",
    "POLICY_KEYS",
    "SECTION_KEYS",
    "PARSE_FORMATS",
    "DEFAULT_LOG_PARSE",
    "STATE_ENV",
    "UNIX_PATH_MAX",
    "AgentConfig",
    "ConfigError",
    "ContainerdSection",
    "ControlSection",
    "CniSection",
    "CriSection",
    "LogSection",
    "MetricsSection",
    "PreseedSection",
    "SPAWN_MODES",
    "SupervisorSection",
    "RunscSection",
]

#: `[cri] pause_binary` when the config names none: Debian's catatonit, a static binary
#: whose `-P` mode is a pause process.
PAUSE_BINARY = "catatonit"

#: Longest path of a unix socket, in bytes: `sun_path` is 108 bytes with its NUL.
UNIX_PATH_MAX = 107

#: Dotted key -> its default, relative to the state directory, used when the key
#: is omitted or "".
DERIVED_PATHS: Mapping[str, str] = MappingProxyType(
    {
        "containerd.config": "containerd/config.toml",
        "containerd.address": "containerd/containerd.sock",
        "containerd.root": "containerd/root",
        "containerd.state": "containerd/state",
        "containerd.tmpdir": "tmp",
        "runsc.fifo": "runsc/logs.fifo",
        "cni.conf_dir": "cni/net.d",
        "preseed.dir": "preseed",
        "preseed.record": "preseed-record.json",
        "control.socket": CONTROL_SOCKET_NAME,
    }
)

#: How a DN's raw lines are parsed: the values of `actors.logtree.ParseFormat`.
PARSE_FORMATS = tuple(f.value for f in ParseFormat)

#: `[log] parse` entries in force unless the config file sets the same pattern.
DEFAULT_LOG_PARSE: Mapping[str, str] = MappingProxyType({CONTAINERD_DN: "logrus", RUNSC_DN: "glog"})

#: Policy key -> how its value is read (see `actors.config`):
#: "duration" >= 0, "positive" duration > 0, "optional" duration > 0 or "off",
#: "multiplier" number >= 1, "jitter" number in [0, 1), "count" integer >= 0 or "off".
#: Exactly the fields of `RestartPolicy` (a test checks it).
POLICY_KEYS: Mapping[str, str] = MappingProxyType(
    {
        "backoff_initial": "duration",
        "backoff_multiplier": "multiplier",
        "backoff_jitter": "jitter",
        "backoff_max": "duration",
        "min_healthy_uptime": "duration",
        "max_restarts": "count",
        "restart_window": "positive",
        "grace_period": "duration",
        "healthy_deadline": "optional",
        "heartbeat_interval": "optional",
    }
)

#: Section -> the keys it may hold, in the order the default profile documents them.
SECTION_KEYS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "containerd": (
            "binary",
            "config",
            "address",
            "root",
            "state",
            "path",
            "tmpdir",
            "ready_timeout",
            "liveness_interval",
            "liveness_timeout",
            "liveness_failures",
            "metrics_address",
        ),
        "runsc": ("fifo", "mode", "pipe_size", "binary", "platform", "flags"),
        "cri": ("default_runtime", "sandbox_image", "pause_binary"),
        "cni": ("bin_dirs", "conf_dir", "subnet"),
        "preseed": (
            "enabled",
            "dir",
            "record",
            "all_platforms",
            "skip_missing",
            "labels",
            "watch",
            "pin",
            "unpack",
            "parallel",
        ),
        "log": ("stderr", "json_file", "min_severity", "keep", "parse"),
        "control": ("socket",),
        "metrics": ("enabled", "listen"),
        "supervisor": ("spawn",),
    }
)


@dataclass(frozen=True, slots=True, kw_only=True)
class ContainerdSection:
    """`[containerd]`: the containerd daemon that `root.containerd` runs."""

    #: The binary: an absolute path after lookup on the agent's PATH, then on
    #: `path`. Left as written when it was not found and binaries were not checked.
    binary: str = "containerd"
    #: The config file containerd is started with (`--config`), absolute.
    config: Path
    #: True when the agent writes `config` itself (`render_containerd_config`);
    #: False when `config` is the user's own file, which the agent never writes.
    generate_config: bool = True
    #: containerd's gRPC unix socket, absolute. With the user's own config file,
    #: the file's `grpc.address` (containerd's default if it has none).
    address: Path
    #: containerd's persistent root directory, absolute.
    root: Path
    #: containerd's runtime state directory, absolute.
    state: Path
    #: The PATH containerd runs with; its environment is exactly PATH and TMPDIR.
    path: str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    #: The TMPDIR containerd runs with, absolute.
    tmpdir: Path
    #: Seconds containerd may take to answer on `address` before the node fails.
    ready_timeout: float = 30.0
    #: Seconds between liveness probes (a Version call on `address`) while
    #: `root.containerd` is HEALTHY; None (`"off"`) for no probing.
    liveness_interval: float | None = 5.0
    #: Seconds one liveness probe may take before it counts as failed.
    liveness_timeout: float = 5.0
    #: Liveness probes failed in a row that fail `root.containerd` (so that its
    #: restart policy kills and restarts containerd).
    liveness_failures: int = 3
    #: containerd's own metrics endpoint (`GET /v1/metrics`), `host:port` (IPv6 in
    #: brackets), rendered as `[metrics] address` of the generated config; "" (the
    #: default) serves none: another listener is the operator's choice.
    metrics_address: str = ""

    @property
    def ttrpc_address(self) -> Path:
        """containerd's ttrpc socket in a generated config: `address` + `.ttrpc`."""
        return Path(f"{self.address}.ttrpc")


@dataclass(frozen=True, slots=True, kw_only=True)
class RunscSection:
    """`[runsc]`: the FIFO that gVisor's runsc writes its debug logs into."""

    #: The named pipe, absolute.
    fifo: Path
    #: Its permission bits (never world-writable; the owner can read and write).
    mode: int = 0o600
    #: The pipe buffer asked for with F_SETPIPE_SZ, in bytes.
    pipe_size: int = 1 << 20
    #: The runsc binary, absolute; None when `binary` names one that is not on
    #: PATH (then no `runsc` CRI handler is registered).
    binary: str | None = None
    #: runsc's `--platform`; "" leaves the binary's own default.
    platform: str = ""
    #: Further runsc flags, put before the shim's own, in order.
    flags: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class CriSection:
    """`[cri]`: what containerd's CRI plugin does with pods in the generated config."""

    #: The runtime handler of pods that name none: `runc` or `runsc`.
    default_runtime: str = "runc"
    #: The pod sandbox ("pause") image; "" → the image the agent builds from
    #: `pause_binary` (`actors.images.pause`), or containerd's own default for its
    #: version when no pause binary is found.
    sandbox_image: str = ""
    #: The static pause binary the built-in sandbox image is made of, absolute; None
    #: when `[cri] pause_binary` names one that is not found (its default,
    #: `PAUSE_BINARY`, is looked up on PATH, then on `containerd.path`).
    pause_binary: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class CniSection:
    """`[cni]`: the network of pods that have their own network namespace (generated config).

    containerd's CRI plugin sets such a pod's network up with CNI: the first config
    file of `conf_dir` names the plugins, which are looked up in `bin_dirs`.
    """

    #: Where the CNI plugin binaries are, searched in order (absolute): Debian's
    #: `containernetworking-plugins` first, then the conventional directory, where
    #: upstream's tarball and most network add-ons put theirs. containerd before
    #: 2.1 reads one directory: the first of these that exists.
    bin_dirs: tuple[Path, ...] = (Path("/usr/lib/cni"), Path("/opt/cni/bin"))
    #: Where CRI reads the CNI config from (the first file by name wins), absolute.
    conf_dir: Path
    #: True when `conf_dir` is the agent's own (the key was left ""): the agent then
    #: writes its default network there while no other config is present. False
    #: when it names the operator's directory, which the agent never writes.
    write_default: bool = True
    #: The private IPv4 range of the default network's bridge, in CIDR notation:
    #: the bridge takes its first address, pods the others.
    subnet: str = "10.213.0.0/24"


@dataclass(frozen=True, slots=True, kw_only=True)
class PreseedSection:
    """`[preseed]`: OCI image tarballs imported into containerd at start-up."""

    #: Whether `root.containerd.preseed` imports anything at all.
    enabled: bool = True
    #: The tarballs, laid out as `<dir>/<namespace>/<file>`, absolute.
    dir: Path
    #: The import record (which tarballs were imported, by size, mtime and digest).
    record: Path
    #: Import every platform of an index, not only the host's.
    all_platforms: bool = False
    #: Skip blobs that the archive lacks (e.g. other platforms' layers).
    skip_missing: bool = False
    #: Labels set on every image imported (read-only mapping).
    labels: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    #: Keep watching the directory (inotify) and import tarballs copied in later.
    watch: bool = True
    #: Pin preseeded images (`io.cri-containerd.pinned`) and unpin them when their
    #: tarball is removed.
    pin: bool = True
    #: Unpack every image into CRI's snapshotter after importing it.
    unpack: bool = False
    #: Tarballs imported at once; 0 means the number of CPUs, at most 4.
    parallel: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class LogSection:
    """`[log]`: where the agent writes the log tree besides keeping it in memory."""

    #: Write log lines to the agent's stderr.
    stderr: bool = True
    #: Append every entry as one JSON object per line to this file, absolute; None: off.
    json_file: Path | None = None
    #: The lowest severity of leveled entries written to the sinks above (written in
    #: the file as one of `SEVERITY_NAMES`, any case). Raw lines are always written.
    min_severity: Severity = Severity.INFO
    #: DN pattern (the DN and its subtree, "" for all) -> how its raw lines are parsed
    #: (one of `PARSE_FORMATS`); the most specific pattern wins. The file's entries
    #: are merged over `DEFAULT_LOG_PARSE` (read-only mapping).
    parse: Mapping[str, str] = field(
        default_factory=lambda: MappingProxyType(dict(DEFAULT_LOG_PARSE))
    )
    #: Entries the in-memory log tree keeps per DN (the oldest go first); `logs` reads
    #: them. Bounds the root's memory: a full tree of the default profile is a few MB.
    keep: int = 8192


@dataclass(frozen=True, slots=True, kw_only=True)
class ControlSection:
    """`[control]`: the gRPC control socket that the CLI talks to."""

    #: The unix socket, absolute; created with mode 0600.
    socket: Path


@dataclass(frozen=True, slots=True, kw_only=True)
class MetricsSection:
    """`[metrics]`: the optional Prometheus endpoint."""

    #: Whether the endpoint is served at all.
    enabled: bool = False
    #: The address to listen on: an IP literal (IPv6 without brackets) or "localhost".
    host: str = "127.0.0.1"
    #: The TCP port; 0 lets the kernel pick a free one.
    port: int = 9464


#: How the supervisor starts a runnable's process (`[supervisor] spawn`).
SPAWN_MODES = ("zygote", "exec")


@dataclass(frozen=True, slots=True, kw_only=True)
class SupervisorSection:
    """`[supervisor]`: how the runnables' processes start."""

    #: "zygote": forked from one preloaded process (less memory, faster starts);
    #: "exec": each a fresh interpreter. Without a zygote (it died), exec.
    spawn: str = "zygote"


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentConfig:
    """A loaded, checked configuration: everything `run_agent` needs to start.

    Not hashable (`preseed.labels` is a mapping); compare with `==`.
    """

    #: The file it was read from, or `<default profile>`.
    source: str
    #: The state directory, absolute; every derived path lies under it.
    state_dir: Path
    containerd: ContainerdSection
    runsc: RunscSection
    preseed: PreseedSection
    log: LogSection
    control: ControlSection
    metrics: MetricsSection
    supervisor: SupervisorSection = field(default_factory=SupervisorSection)
    cri: CriSection = field(default_factory=CriSection)
    cni: CniSection
    #: The restart policy rules in cascade order: the default profile's first,
    #: then the file's, each in file order.
    policies: tuple[PolicyRule, ...] = ()

    def policy_set(self) -> PolicySet:
        """The restart policies as a `PolicySet` over Go's defaults."""
        return PolicySet(rules=self.policies)
