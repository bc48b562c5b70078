"""Deciding when a HEALTHY containerd has stopped answering: the liveness rule.

Heartbeats cover only the agent's own processes; a containerd that is stopped
(SIGSTOP) or deadlocked keeps its process and its socket but answers nothing.
`LivenessTracker` is the pure rule for one HEALTHY containerd (probe numbers and
times passed in, actions out):

* `ContainerdLifecycle` starts a Version probe every `interval` seconds, at a
  fixed rate (a probe still out does not delay the next), each giving up after
  `timeout` seconds, and tells the tracker with `started`.
* An answer resets the count of failures in a row; `failures` failures in a row
  fail the node with a reason naming the probe and its last error. With a fixed
  rate, a containerd stopped at any moment has its `failures`-th failed probe
  started within `interval × failures` and failed `timeout` later: it is failed
  within interval × failures + timeout. One that answers within `timeout`, however
  slowly, is never failed.
* Each result observes its seconds in the histogram `LIVENESS_DURATION` and adds
  one to `LIVENESS_PROBES` with the label `result` = `ok` or `fail`.
"""

from __future__ import annotations

from dataclasses import dataclass

from actors.containerd.core.events import (
    LIVENESS_DURATION,
    LIVENESS_PROBES,
    AddMetric,
    Log,
    ObserveMetric,
)
from actors.supervisor.core.severity import Severity

__all__ = ["LivenessTracker", "LivenessVerdict"]


@dataclass(frozen=True, slots=True)
class LivenessVerdict:
    """What one probe result means."""

    #: The metrics and log lines to emit.
    actions: list[AddMetric | ObserveMetric | Log]
    #: The reason to fail the node, or None to carry on.
    failure: str | None = None


class LivenessTracker:
    """The liveness rule while containerd is HEALTHY. Pure: no I/O, no clock.

    Args:
        address: containerd's gRPC socket (for messages).
        timeout: seconds one probe may take (for messages).
        failures: probes failed in a row that fail the node (>= 1).
    """

    def __init__(self, *, address: str, timeout: float, failures: int) -> None:
        self.failures_allowed = failures
        self.probe_text = f"the liveness probe (Version on {address!r}, timeout {timeout:g}s)"
        self._out: dict[int, float] = {}  # probe → monotonic start
        self._failures = 0

    @property
    def failures(self) -> int:
        """Probes failed in a row since the last answer."""
        return self._failures

    def owns(self, probe: int) -> bool:
        """Whether `probe` is a liveness probe still waiting for its result."""
        return probe in self._out

    def started(self, probe: int, now: float) -> None:
        """Probe number `probe` was started at `now`."""
        self._out[probe] = now

    def answered(self, probe: int, now: float) -> LivenessVerdict:
        """Probe `probe` (one this tracker `owns`) answered at `now`."""
        actions: list[AddMetric | ObserveMetric | Log] = self._metrics(probe, "ok", now)
        if self._failures:
            text = f"containerd answered the liveness probe again after {self._failures} failure(s)"
            actions.append(Log(Severity.INFO, text))
        self._failures = 0
        return LivenessVerdict(actions)

    def failed(self, probe: int, error: str, now: float) -> LivenessVerdict:
        """Probe `probe` (one this tracker `owns`) failed with `error` at `now`."""
        actions: list[AddMetric | ObserveMetric | Log] = self._metrics(probe, "fail", now)
        self._failures += 1
        if self._failures >= self.failures_allowed:
            reason = (
                f"containerd did not answer {self.probe_text} {self._failures} times in a row; "
                f"last error: {error}"
            )
            return LivenessVerdict(actions, reason)
        count = f"{self._failures} of {self.failures_allowed} in a row"
        text = f"containerd did not answer {self.probe_text} ({count}): {error}"
        return LivenessVerdict([*actions, Log(Severity.WARNING, text)])

    def _metrics(
        self, probe: int, result: str, now: float
    ) -> list[AddMetric | ObserveMetric | Log]:
        seconds = max(now - self._out.pop(probe), 0.0)
        return [
            ObserveMetric(LIVENESS_DURATION, seconds),
            AddMetric(LIVENESS_PROBES, 1, {"result": result}),
        ]
