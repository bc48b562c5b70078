"""The agent's histograms: what each one measures, its buckets, and their collector.

A histogram is fed one observation at a time through `Metrics.observe` — from a
runnable's `observe_metric` (a `MetricAdd` of kind `histogram` on the wire), or from
the control socket's `ReportCheck` for `check`'s pods. Only the names of `HISTOGRAMS`
are accepted, each with its own label names: a histogram's buckets are a promise to
the dashboards, so a runnable cannot invent one.

Buckets (upper bounds; `+Inf` is added by the format), chosen for what each measures
on a node, with a bucket near every threshold an operator is likely to alert on:

* **liveness probe seconds** (`LIVENESS_DURATION`): a Version call over a local unix
  socket answers in about a millisecond; the probe gives up after
  `[containerd] liveness_timeout` (5 s by default, at most 60 s). Buckets from 1 ms
  to 10 s in 1-2.5-5 steps; a failed probe lands at its timeout.
* **preseed import seconds** (`PRESEED_IMPORT_SECONDS`): from a pause image (a
  tenth of a second) to a multi-gigabyte tarball on a slow disk (minutes): 0.1 s to
  30 min.
* **preseed import bytes** (`PRESEED_IMPORT_BYTES`): blob bytes one import sent to
  containerd, from a pause image (under 1 MiB) to a large model image: powers of 4
  from 256 KiB to 16 GiB. A re-import of content containerd already has sends little.
* **check sandbox start seconds** (`CHECK_SANDBOX_START`): CRI's RunPodSandbox,
  about 0.2 s under runc and 1-3 s under runsc (gVisor's sandbox boots): 50 ms to
  60 s, the CRI client's own timeout.
"""

from __future__ import annotations

import math
import threading
from bisect import bisect_left
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from prometheus_client.core import HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from actors.containerd.core.events import LIVENESS_DURATION

__all__ = [
    "CHECK_SANDBOX_START",
    "HISTOGRAMS",
    "LIVENESS_DURATION",
    "PRESEED_IMPORT_BYTES",
    "PRESEED_IMPORT_SECONDS",
    "HistogramCollector",
    "HistogramKind",
]

PRESEED_IMPORT_SECONDS = "node_containerd_preseed_import_duration_seconds"
PRESEED_IMPORT_BYTES = "node_containerd_preseed_import_bytes"
CHECK_SANDBOX_START = "node_containerd_check_sandbox_start_duration_seconds"

_MIB = 1 << 20


@dataclass(frozen=True, slots=True)
class HistogramKind:
    """One histogram the agent exports."""

    #: Its help text.
    help: str
    #: The names of its labels, in order; an observation must give exactly these.
    labels: tuple[str, ...]
    #: Upper bounds of its buckets, increasing (in the metric's unit).
    buckets: tuple[float, ...]


#: Every histogram, by name.
HISTOGRAMS: Mapping[str, HistogramKind] = {
    LIVENESS_DURATION: HistogramKind(
        "Seconds each liveness probe of containerd by root.containerd took (answered or failed)",
        (),
        (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
    ),
    PRESEED_IMPORT_SECONDS: HistogramKind(
        "Seconds each preseed import of a tarball took, by containerd namespace",
        ("namespace",),
        (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0),
    ),
    PRESEED_IMPORT_BYTES: HistogramKind(
        "Blob bytes each preseed import of a tarball sent to containerd, by namespace",
        ("namespace",),
        tuple(float(_MIB // 4 * 4**i) for i in range(9)),
    ),
    CHECK_SANDBOX_START: HistogramKind(
        "Seconds CRI's RunPodSandbox took in node-containerd check, by runtime handler",
        ("handler",),
        (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0),
    ),
}

#: Label sets one histogram keeps; more are refused (a handler or namespace is few).
MAX_HISTOGRAM_SERIES = 50


@dataclass(slots=True)
class _Series:
    """One label set's observations."""

    #: Observations per bucket (not cumulative), one more for `+Inf`.
    counts: list[int]
    #: Sum of the observations.
    total: float = 0.0


class HistogramCollector(Collector):
    """The histograms of `HISTOGRAMS`; `observe` from any thread, collected at scrape."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._series: dict[str, dict[tuple[str, ...], _Series]] = {n: {} for n in HISTOGRAMS}

    def observe(self, name: str, value: float, labels: Mapping[str, str]) -> None:
        """Records one observation.

        Raises:
            ValueError: `name` is not one of `HISTOGRAMS`, the labels are not its own,
                `value` is negative or not finite, or the histogram has
                `MAX_HISTOGRAM_SERIES` label sets and this is a new one.
            TypeError: a label value is not a string.
        """
        kind = HISTOGRAMS.get(name)
        if kind is None:
            raise ValueError(
                f"metric {name!r} is not a histogram: expected one of {sorted(HISTOGRAMS)}"
            )
        if sorted(labels) != sorted(kind.labels):
            raise ValueError(
                f"histogram {name!r} takes the labels {list(kind.labels)}, not {sorted(labels)}"
            )
        if not math.isfinite(value) or value < 0:
            raise ValueError(f"observation {value!r} of {name!r} is not a finite number >= 0")
        key = tuple(labels[label] for label in kind.labels)
        for label, text in zip(kind.labels, key, strict=True):
            if not isinstance(text, str):
                raise TypeError(f"label {label!r} of {name!r} has a non-string value {text!r}")
        with self._lock:
            series = self._series[name]
            one = series.get(key)
            if one is None:
                if len(series) >= MAX_HISTOGRAM_SERIES:
                    raise ValueError(f"histogram {name!r} has {len(series)} label sets already")
                one = series[key] = _Series([0] * (len(kind.buckets) + 1))
            one.counts[bisect_left(kind.buckets, value)] += 1
            one.total += value

    def collect(self) -> Iterator[Metric]:
        """Every histogram, each with all its series (none before an observation)."""
        with self._lock:
            copies = {
                name: sorted((key, list(s.counts), s.total) for key, s in series.items())
                for name, series in self._series.items()
            }
        for name in sorted(copies):
            kind = HISTOGRAMS[name]
            family = HistogramMetricFamily(name, kind.help, labels=list(kind.labels))
            for key, counts, total in copies[name]:
                cumulative, buckets = 0, []
                for bound, count in zip((*kind.buckets, math.inf), counts, strict=True):
                    cumulative += count
                    buckets.append((_bound(bound), float(cumulative)))
                family.add_metric(list(key), buckets, total)
            yield family


def _bound(bound: float) -> str:
    """A bucket's `le` as the exposition format spells it (`"0.005"`, `"+Inf"`)."""
    if math.isinf(bound):
        return "+Inf"
    return repr(bound)
