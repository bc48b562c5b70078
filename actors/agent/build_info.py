"""`node_containerd_build_info`: which agent, containerd and runsc a node runs.

A gauge of value 1 whose labels are the versions, as every exporter's `*_build_info`:
join on it to break any series down by version. The versions are asked once, when
the agent starts (`build_info_labels`): the agent's own package version, the version
word of `containerd --version` as printed (`1.6.20~ds1`), and `runsc --version`'s;
"" for a binary that is missing or does not answer.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

__all__ = [
    "BUILD_INFO",
    "BuildInfoCollector",
    "build_info_labels",
    "containerd_version",
    "runsc_version",
]

BUILD_INFO = "node_containerd_build_info"
#: Seconds a binary may take to print its version.
VERSION_TIMEOUT = 10.0


def _first_line_words(binary: str | None) -> list[str]:
    if binary is None:
        return []
    try:
        out = subprocess.run(
            [binary, "--version"], capture_output=True, text=True, timeout=VERSION_TIMEOUT
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return out.splitlines()[0].split() if out.strip() else []


def runsc_version(binary: str | None) -> str:
    """The last word of `runsc --version`'s first line (`runsc version X`), or ""."""
    words = _first_line_words(binary)
    return words[-1] if words else ""


def containerd_version(binary: str) -> str:
    """The third word of `containerd --version` (`containerd MODULE VERSION REVISION`)."""
    words = _first_line_words(binary)
    return words[2] if len(words) >= 3 else ""


def build_info_labels(containerd_binary: str, runsc_binary: str | None) -> dict[str, str]:
    """The labels of `BUILD_INFO`: `version`, `containerd_version`, `runsc_version`."""
    from actors.agent.control.wire import agent_version

    return {
        "version": agent_version(),
        "containerd_version": containerd_version(containerd_binary),
        "runsc_version": runsc_version(runsc_binary),
    }


class BuildInfoCollector(Collector):
    """One series of value 1 labelled with the versions.

    Args:
        labels: `build_info_labels`'s answer.
    """

    def __init__(self, labels: dict[str, str]) -> None:
        self._labels = dict(sorted(labels.items()))

    def collect(self) -> Iterator[Metric]:
        family = GaugeMetricFamily(
            BUILD_INFO,
            "Versions of the agent, containerd and runsc this node runs (value 1)",
            labels=list(self._labels),
        )
        family.add_metric(list(self._labels.values()), 1.0)
        yield family
