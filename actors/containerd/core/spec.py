"""What `root.containerd` and its children run: their typed specs, command line, env.

Pure: no I/O. One frozen dataclass per runnable of containerd's wing, built by the
agent from its config (`actors.agent.root`), sent across the link with
`messages.specs.spec_to_wire` and rebuilt by the runnable with `spec_from_wire`:

- `ContainerdSpec`: `root.containerd` (`actors.containerd.process:run`), holding its
  children's specs: `LogPumpSpec` is derived from it (`logpump_spec`), and
  `PreseedSpec` rides along, None when preseeding is off;
- `PreseedSpec`: `root.containerd.preseed` (`actors.preseed.service.runnable:run`),
  holding `BuiltImageSpec`, the sandbox image the agent built itself, when it did.

Specs have no defaults and check no values: the config schema is the one place of
defaults and `actors.config` the one place of checks; the wire codec checks types.

`containerd_command` and `containerd_env` build exactly what is executed (the
binary's own directory first on `PATH`, so its own shims are found);
`describe_exit` (from `actors.exit_status`, re-exported) turns a
`Popen.returncode` into the words an error message uses.

The command runs containerd under `setpriv --pdeathsig KILL` when `setpriv`
(util-linux, always present on Debian) is available: the parent-death signal then
kills containerd if the process that started it dies without stopping it (the
normal paths — cancel, failure, the supervisor's SIGKILL of the process group —
stop it anyway). `setpriv` execs containerd, so the pid we hold and signal is
containerd's own.
"""

from __future__ import annotations

import posixpath
from collections.abc import Mapping
from dataclasses import dataclass

from actors.exit_status import describe_returncode as describe_exit

__all__ = [
    "NOTIFY_SOCKET_NAME",
    "BuiltImageSpec",
    "ContainerdSpec",
    "LogPumpSpec",
    "PreseedSpec",
    "containerd_command",
    "containerd_env",
    "containerd_path",
    "describe_exit",
    "logpump_spec",
]

#: File name of the private notify socket inside `ContainerdSpec.notify_dir`.
NOTIFY_SOCKET_NAME = "containerd-notify.sock"


@dataclass(frozen=True, slots=True, kw_only=True)
class BuiltImageSpec:
    """An image the agent built itself before the tree started: the sandbox image."""

    #: Its name (`localhost/node-containerd/pause:0.1.7`).
    name: str
    #: Its OCI tarball in the state directory.
    archive: str
    #: The digest of its manifest: an image of that name with this target is left as it is.
    digest: str


@dataclass(frozen=True, slots=True, kw_only=True)
class PreseedSpec:
    """What `root.containerd.preseed` imports, and how. Paths are absolute."""

    #: containerd's gRPC socket.
    address: str
    #: The preseed directory (`<directory>/<namespace>/<file>`).
    dir: str
    #: The import record file in the agent's state directory.
    record: str
    #: Import every platform of an index, not only the host's.
    all_platforms: bool
    #: Leave out blobs an archive lacks instead of failing.
    skip_missing: bool
    #: Labels set on every image imported.
    labels: Mapping[str, str]
    #: Seconds to wait for containerd to answer before the node fails.
    ready_timeout: float
    #: Keep importing tarballs copied in later (inotify).
    watch: bool
    #: Pin every preseeded image; release the pins of removed tarballs.
    pin: bool
    #: Unpack every image into `snapshotter` after importing it.
    unpack: bool
    #: Imports at once; 0: the CPUs this process may use, at most 4.
    parallel: int
    #: The snapshotter CRI unpacks into.
    snapshotter: str
    #: CRI's sandbox image (imported first, always pinned; one WARNING after the
    #: initial pass if it is missing); None when unknown (the user's own config).
    sandbox_image: str | None
    #: The sandbox image the agent built (`sandbox_image` is then its name): imported
    #: into `k8s.io` and pinned before the preseed directory, unless it is there with
    #: the same target; None when CRI's sandbox image is another one.
    built_sandbox: BuiltImageSpec | None
    #: True when `sandbox_image` is containerd's default only because no pause binary
    #: was found (`[cri] pause_binary`): the missing-sandbox warning names what to install.
    pause_missing: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class LogPumpSpec:
    """What `root.containerd.runsc` pumps: derived from `ContainerdSpec` by `logpump_spec`."""

    #: The runsc log FIFO, made by `root.containerd`.
    fifo: str
    #: Wanted kernel buffer of the FIFO, in bytes.
    pipe_size: int


@dataclass(frozen=True, slots=True, kw_only=True)
class ContainerdSpec:
    """What `root.containerd` runs. Paths are absolute; times in seconds."""

    #: The containerd executable.
    binary: str
    #: Containerd's config file, passed as `--config`.
    config: str
    #: Containerd's gRPC socket (as in the config), for the Version call.
    address: str
    #: `PATH` of containerd's environment.
    path: str
    #: `TMPDIR` of containerd's environment.
    tmpdir: str
    #: The runsc log FIFO.
    fifo: str
    #: Directory (private to the agent) for the notify socket.
    notify_dir: str
    #: Permission bits of the FIFO; never world-writable.
    fifo_mode: int
    #: Wanted kernel buffer of the FIFO, in bytes.
    pipe_size: int
    #: Seconds from spawn to ready before the node fails.
    ready_timeout: float
    #: Seconds between SIGTERM and SIGKILL on cancel; below the node's grace period, so
    #: that containerd is killed by us, not by the supervisor's SIGKILL of the group.
    stop_timeout: float
    #: `"notify"` (READY=1 then Version) or `"version"` (Version only); see `readiness`.
    readiness: str
    #: Seconds between liveness probes (Version calls) while HEALTHY; None: no probing.
    liveness_interval: float | None
    #: Seconds one liveness probe may take before it fails.
    liveness_timeout: float
    #: Liveness probes failed in a row that fail the node.
    liveness_failures: int
    #: The preseed child's spec; None when preseeding is disabled.
    preseed: PreseedSpec | None

    @property
    def notify_socket(self) -> str:
        """Path of the private notify socket."""
        return posixpath.join(self.notify_dir, NOTIFY_SOCKET_NAME)


def logpump_spec(spec: ContainerdSpec) -> LogPumpSpec:
    """The spec of `root.containerd.runsc`: the FIFO `root.containerd` holds open."""
    return LogPumpSpec(fifo=spec.fifo, pipe_size=spec.pipe_size)


def containerd_command(spec: ContainerdSpec, setpriv: str | None) -> list[str]:
    """The argv that starts containerd, under `setpriv --pdeathsig KILL` if given."""
    command = [spec.binary, "--config", spec.config]
    if setpriv is None:
        return command
    return [setpriv, "--pdeathsig", "KILL", "--", *command]


def containerd_path(spec: ContainerdSpec) -> str:
    """`PATH` for containerd: the directory of `spec.binary` first, then `spec.path`.

    containerd looks its shims (`containerd-shim-runc-v2`) up on `PATH` and falls
    back to its own directory only when they are not found there. A containerd that
    is not the system's (`/opt/ctd-2.1/bin/containerd`) must run the shims of its
    own release, not the older ones of `/usr/bin`: its directory comes first.
    """
    own = posixpath.dirname(spec.binary)
    rest = [d for d in spec.path.split(":") if d != own]
    return ":".join([own, *rest])


def containerd_env(spec: ContainerdSpec) -> dict[str, str]:
    """containerd's whole environment: `PATH` (`containerd_path`), `TMPDIR`, notify socket."""
    return {
        "PATH": containerd_path(spec),
        "TMPDIR": spec.tmpdir,
        "NOTIFY_SOCKET": spec.notify_socket,
    }
