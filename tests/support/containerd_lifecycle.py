"""Shared pieces of the pure ContainerdLifecycle tests: a spec, and runs brought to a phase."""

from __future__ import annotations

from actors.containerd.core.events import (
    Log,
    Notified,
    ProbeAnswered,
    SetupSucceeded,
    Spawn,
    Spawned,
    StartChildren,
)
from actors.containerd.core.lifecycle import ContainerdLifecycle, ContainerdPhase
from actors.containerd.core.notify import NotifyDatagram, NotifyMessage
from actors.containerd.core.spec import ContainerdSpec
from actors.containerd.core.version import VersionInfo
from actors.supervisor.core.severity import Severity
from tests.support.specs import containerd_spec_in

PID = 4242
BINARY = "/usr/bin/containerd"
ADDRESS = "/s/containerd.sock"
NOTIFY = "/s/containerd-notify.sock"
INFO = VersionInfo(version="1.6.20~ds1", revision="1.6.20~ds1-1+deb12u3")
READY = NotifyDatagram(pid=PID, message=NotifyMessage(ready=True, fields=(("READY", "1"),)))
STOPPING = NotifyDatagram(
    pid=PID, message=NotifyMessage(stopping=True, fields=(("STOPPING", "1"),))
)
STARTED = Log(Severity.INFO, f"started containerd {BINARY!r} (pid {PID})")
PROBE = f"the liveness probe (Version on {ADDRESS!r}, timeout 5s)"
DEADLINE = "deadline_exceeded: Deadline Exceeded"


def make_spec(**overrides: object) -> ContainerdSpec:
    """The spec of these tests: everything under `/s` (nothing there is touched)."""
    fields: dict[str, object] = {
        "binary": BINARY,
        "path": "/usr/bin",
        "ready_timeout": 20.0,
        "stop_timeout": 4.0,
        "liveness_interval": 5.0,
        "liveness_timeout": 5.0,
        "liveness_failures": 3,
        **overrides,
    }
    return containerd_spec_in("/s", **fields)


def spawned(**overrides: object) -> ContainerdLifecycle:
    """A lifecycle whose containerd was spawned at t=100 (READY timer token 1)."""
    lc = ContainerdLifecycle(make_spec(**overrides))
    assert lc.handle(SetupSucceeded(), 99.0) == [Spawn(), StartChildren()]
    lc.handle(Spawned(PID), 100.0)
    return lc


def healthy(**overrides: object) -> ContainerdLifecycle:
    """A lifecycle HEALTHY at t=100.5: probe 2 answered; LIVENESS armed with token 3."""
    lc = spawned(**overrides)
    lc.handle(Notified(READY), 100.25)
    lc.handle(ProbeAnswered(2, INFO), 100.5)
    assert lc.phase is ContainerdPhase.HEALTHY
    return lc


def ready_line(ms: int) -> Log:
    return Log(
        Severity.INFO, f"containerd {INFO.version} ({INFO.revision}) is ready, {ms} ms after spawn"
    )
