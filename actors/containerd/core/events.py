"""The vocabulary of `ContainerdLifecycle`: events in, actions out, the outcome.

Events are past-tense facts the shell (`ContainerdProcessActor`) observed; actions
are imperatives it carries out. All are frozen dataclasses, compared whole in the
tests. Pure: no I/O.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from actors.containerd.core.notify import NotifyDatagram
from actors.containerd.core.version import VersionInfo
from actors.supervisor.core.severity import Severity

__all__ = [
    "LIVENESS_DURATION",
    "LIVENESS_PROBES",
    "Action",
    "AddMetric",
    "CancelRequested",
    "ChildrenFailed",
    "DisarmTimer",
    "Event",
    "Exited",
    "Kill",
    "Log",
    "Notified",
    "ObserveMetric",
    "NotifyBroken",
    "ContainerdOutcome",
    "OutputClosed",
    "ProbeAnswered",
    "ProbeFailed",
    "Report",
    "ArmTimer",
    "SetupFailed",
    "SetupSucceeded",
    "SignalHealthy",
    "Spawn",
    "SpawnFailed",
    "Spawned",
    "StartChildren",
    "StartProbe",
    "Terminate",
    "Timer",
    "TimerExpired",
]

#: Histogram: seconds each liveness probe took (answered or failed).
LIVENESS_DURATION = "node_containerd_containerd_liveness_probe_duration_seconds"

#: Counter: liveness probes made, by label `result` (`ok` or `fail`).
LIVENESS_PROBES = "node_containerd_containerd_liveness_probes_total"


@dataclass(frozen=True, slots=True, kw_only=True)
class ContainerdOutcome:
    """How a run of containerd ended."""

    #: It was stopped because the node was cancelled.
    canceled: bool = False
    #: Why it failed, or None.
    error: str | None = None


class Timer(enum.Enum):
    """The timers of one run; at most one of each is armed at a time."""

    #: `ready_timeout` after the spawn: not ready by then fails the node.
    READY = "ready"
    #: `stop_timeout` after SIGTERM: still running then gets SIGKILL.
    STOP = "stop"
    #: `DRAIN_TIMEOUT` after the exit: stop waiting for containerd's last output.
    DRAIN = "drain"
    #: `liveness_interval` while HEALTHY: time for the next liveness probe.
    LIVENESS = "liveness"


# ---------------------------------------------------------------- events


@dataclass(frozen=True, slots=True)
class SetupSucceeded:
    """The FIFO and the notify socket are in place: containerd may start."""


@dataclass(frozen=True, slots=True)
class SetupFailed:
    """Setting up failed (bad binary, socket in use, FIFO error)."""

    #: The whole message, naming the file at fault.
    error: str


@dataclass(frozen=True, slots=True)
class ChildrenFailed:
    """The node's children (the log pump, the preseed) could not be started."""

    #: The supervisor's refusal, as it said it.
    error: str


@dataclass(frozen=True, slots=True)
class Spawned:
    """containerd's process exists."""

    #: Its pid.
    pid: int


@dataclass(frozen=True, slots=True)
class SpawnFailed:
    """containerd's process could not be started."""

    #: The OS error's text.
    error: str


@dataclass(frozen=True, slots=True)
class Exited:
    """containerd exited and was reaped."""

    #: `Popen.returncode` (negative: killed by that signal).
    returncode: int


@dataclass(frozen=True, slots=True)
class OutputClosed:
    """containerd's output pipe reached end of file: its last words are in the log."""


@dataclass(frozen=True, slots=True)
class Notified:
    """A datagram arrived on the notify socket."""

    #: The sender's pid and the parsed message.
    datagram: NotifyDatagram


@dataclass(frozen=True, slots=True)
class NotifyBroken:
    """The notify socket failed; nothing more will arrive on it."""

    #: The OS error's text.
    error: str


@dataclass(frozen=True, slots=True)
class ProbeAnswered:
    """A Version probe answered."""

    #: The `StartProbe.probe` it answers.
    probe: int
    #: What containerd said.
    info: VersionInfo


@dataclass(frozen=True, slots=True)
class ProbeFailed:
    """A Version probe failed, its deadline included."""

    #: The `StartProbe.probe` that failed.
    probe: int
    #: Why, e.g. `deadline_exceeded: Deadline Exceeded`.
    error: str


@dataclass(frozen=True, slots=True)
class TimerExpired:
    """A timer set by `ArmTimer` expired."""

    #: Which one.
    timer: Timer
    #: The `ArmTimer.token` it was set with (a stale firing is ignored).
    token: int


@dataclass(frozen=True, slots=True)
class CancelRequested:
    """The node was cancelled."""

    #: Why, as the supervisor said, or None.
    reason: str | None


Event = (
    SetupSucceeded
    | SetupFailed
    | ChildrenFailed
    | Spawned
    | SpawnFailed
    | Exited
    | OutputClosed
    | Notified
    | NotifyBroken
    | ProbeAnswered
    | ProbeFailed
    | TimerExpired
    | CancelRequested
)

# ---------------------------------------------------------------- actions


@dataclass(frozen=True, slots=True)
class Spawn:
    """Start containerd's process."""


@dataclass(frozen=True, slots=True)
class StartChildren:
    """Start the node's children (`ChildrenFailed` if the supervisor refuses)."""


@dataclass(frozen=True, slots=True)
class StartProbe:
    """Make one Version call (`actors.containerd.api.version.version_call`)."""

    #: Its number, echoed by `ProbeAnswered` or `ProbeFailed`.
    probe: int
    #: Seconds before it gives up.
    timeout: float


@dataclass(frozen=True, slots=True)
class ArmTimer:
    """Arm `timer`; when it expires, feed `TimerExpired(timer, token)`."""

    #: Which one (replaces an armed one of the same kind).
    timer: Timer
    #: Tells this arming from earlier ones.
    token: int
    #: Seconds from now.
    delay: float


@dataclass(frozen=True, slots=True)
class DisarmTimer:
    """Disarm `timer` (a firing already on its way is ignored by its token)."""

    #: Which one.
    timer: Timer


@dataclass(frozen=True, slots=True)
class Terminate:
    """Send containerd SIGTERM."""


@dataclass(frozen=True, slots=True)
class Kill:
    """Send containerd SIGKILL."""


@dataclass(frozen=True, slots=True)
class SignalHealthy:
    """Signal HEALTHY on the node."""


@dataclass(frozen=True, slots=True)
class Log:
    """Write a line in the node's log."""

    #: Its severity (its value is the `logging` module's level).
    severity: Severity
    #: The text.
    message: str


@dataclass(frozen=True, slots=True)
class AddMetric:
    """Add `value` to the agent's counter `name` (a `MetricAdd` message)."""

    #: The counter, e.g. `LIVENESS_PROBES`.
    name: str
    #: What to add (a count, or seconds).
    value: float
    #: The series' labels.
    labels: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ObserveMetric:
    """Observe `value` in the agent's histogram `name` (a `MetricAdd` of kind histogram)."""

    #: The histogram, e.g. `LIVENESS_DURATION`.
    name: str
    #: The observation (seconds).
    value: float
    #: The series' labels.
    labels: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Report:
    """containerd is gone and its output is in: clean up and hand over `outcome`."""

    #: How the run ended.
    outcome: ContainerdOutcome


Action = (
    Spawn
    | StartChildren
    | StartProbe
    | ArmTimer
    | DisarmTimer
    | Terminate
    | Kill
    | SignalHealthy
    | Log
    | AddMetric
    | ObserveMetric
    | Report
)
