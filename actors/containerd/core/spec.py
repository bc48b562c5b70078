"""What `root.containerd` runs, and how: validated arguments, command line, env.

Pure: no I/O. `ContainerdSpec` holds the keyword arguments of
`actors.containerd.process:run` after validation; `containerd_command` and
`containerd_env` build exactly what is executed (the binary's own directory first
on `PATH`, so its own shims are found); `describe_exit` (from
`actors.exit_status`, re-exported) turns a `Popen.returncode` into the words
an error message uses.

The command runs containerd under `setpriv --pdeathsig KILL` when `setpriv`
(util-linux, always present on Debian) is available: the parent-death signal then
kills containerd if the process that started it dies without stopping it (the
normal paths — cancel, failure, the supervisor's SIGKILL of the process group —
stop it anyway). `setpriv` execs containerd, so the pid we hold and signal is
containerd's own.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass, field
from typing import Any

from actors.containerd.core.fifo_rules import (
    DEFAULT_FIFO_MODE,
    DEFAULT_PIPE_SIZE,
    FifoError,
    validate_fifo_mode,
)
from actors.containerd.core.readiness import MODES
from actors.exit_status import describe_returncode as describe_exit

__all__ = [
    "NOTIFY_SOCKET_NAME",
    "ContainerdSpec",
    "containerd_command",
    "containerd_env",
    "containerd_path",
    "describe_exit",
]

#: File name of the private notify socket inside `ContainerdSpec.notify_dir`.
NOTIFY_SOCKET_NAME = "containerd-notify.sock"


@dataclass(frozen=True, slots=True, kw_only=True)
class ContainerdSpec:
    """The arguments of `root.containerd`. Paths are absolute; times in seconds."""

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
    fifo_mode: int = DEFAULT_FIFO_MODE
    #: Wanted kernel buffer of the FIFO, in bytes.
    pipe_size: int = DEFAULT_PIPE_SIZE
    #: Seconds from spawn to ready before the node fails.
    ready_timeout: float = 30.0
    #: Seconds between SIGTERM and SIGKILL on cancel; keep it below the node's grace period so that
    #: containerd is killed by us, not by the supervisor's SIGKILL of the whole process group.
    stop_timeout: float = 4.0
    #: `"notify"` (READY=1 then Version) or `"version"` (Version only).
    readiness: str = "notify"
    #: Seconds between liveness probes (Version calls) while HEALTHY, or None for no liveness
    #: probing.
    liveness_interval: float | None = 5.0
    #: Seconds one liveness probe may take before it fails.
    liveness_timeout: float = 5.0
    #: Liveness probes failed in a row that fail the node.
    liveness_failures: int = 3
    #: Arguments of the preseed child, or None when preseeding is disabled.
    preseed: dict[str, Any] | None = field(default=None)

    def __post_init__(self) -> None:
        for name in ("binary", "config", "address", "tmpdir", "fifo", "notify_dir"):
            value = getattr(self, name)
            if not isinstance(value, str) or not posixpath.isabs(value):
                raise ValueError(
                    f"containerd argument {name}={value!r} is invalid: not an absolute path"
                )
        if not isinstance(self.path, str) or not self.path:
            raise ValueError(f"containerd argument path={self.path!r} is invalid: empty")
        try:
            validate_fifo_mode(self.fifo_mode)
        except FifoError as e:
            raise ValueError(f"containerd argument {e}") from e
        if not isinstance(self.pipe_size, int) or self.pipe_size <= 0:
            raise ValueError(f"containerd argument pipe_size={self.pipe_size!r} is invalid")
        for name in ("ready_timeout", "stop_timeout"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or value <= 0:
                raise ValueError(f"containerd argument {name}={value!r} is invalid: not positive")
        _check_liveness(self)
        if self.readiness not in MODES:
            raise ValueError(
                f"containerd argument readiness={self.readiness!r} is invalid: "
                f"expected one of {MODES!r}"
            )

    @property
    def notify_socket(self) -> str:
        """Path of the private notify socket."""
        return posixpath.join(self.notify_dir, NOTIFY_SOCKET_NAME)

    @property
    def preseed_enabled(self) -> bool:
        """Whether the preseed child imports anything (`enabled: false` disables it)."""
        return self.preseed is not None and self.preseed.get("enabled", True) is not False


def _check_liveness(spec: ContainerdSpec) -> None:
    interval = spec.liveness_interval
    if interval is not None and (not isinstance(interval, (int, float)) or interval <= 0):
        raise ValueError(
            f"containerd argument liveness_interval={interval!r} is invalid: "
            "not positive (None turns liveness off)"
        )
    timeout = spec.liveness_timeout
    if not isinstance(timeout, (int, float)) or timeout <= 0:
        raise ValueError(
            f"containerd argument liveness_timeout={timeout!r} is invalid: not positive"
        )
    failures = spec.liveness_failures
    if isinstance(failures, bool) or not isinstance(failures, int) or failures < 1:
        raise ValueError(
            f"containerd argument liveness_failures={failures!r} is invalid: not an integer >= 1"
        )


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
