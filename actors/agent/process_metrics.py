"""Per-process figures for the metrics page: the agent's own processes and containerd.

What every exporter's `process_*` series say (resident memory, CPU seconds, open
descriptors, start time), for each process of the agent, labelled by the DN it runs
and by `process`: `supervisor` for the agent's root process (DN `root`), `zygote` for
the process the runnables are forked from (DN `root`, while one runs), `runnable` for
each node's host process, `containerd` for the daemon `root.containerd` runs. Read from
`/proc/<pid>/stat`, `/proc/<pid>/status` and `/proc/<pid>/fd` at scrape time; a
process that is gone between listing and reading is left out of that scrape.

The parsing (`parse_stat`, `parse_rss`) is pure; `ProcessCollector` does the reading.

===================================================  =======  ===============
name                                                 type     labels
===================================================  =======  ===============
`node_containerd_process_resident_memory_bytes`      gauge    `dn`, `process`
`node_containerd_process_cpu_seconds_total`          counter  `dn`, `process`
`node_containerd_process_open_fds`                   gauge    `dn`, `process`
`node_containerd_process_start_time_seconds`         gauge    `dn`, `process`
===================================================  =======  ===============
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from actors.containerd.core.dns import CONTAINERD_DN

__all__ = [
    "ProcStat",
    "ProcessCollector",
    "ProcessFigures",
    "agent_processes",
    "containerd_pid",
    "parse_rss",
    "parse_stat",
    "read_figures",
]

RSS = "node_containerd_process_resident_memory_bytes"
CPU = "node_containerd_process_cpu_seconds_total"
FDS = "node_containerd_process_open_fds"
START = "node_containerd_process_start_time_seconds"

#: The `comm` of the containerd daemon (`setpriv` execs it in place).
CONTAINERD_COMM = "containerd"

#: Lists the processes to report: `(dn, process, pid)` triples.
PidLister = Callable[[], list[tuple[str, str, int]]]


@dataclass(frozen=True, slots=True, kw_only=True)
class ProcStat:
    """The fields of `/proc/<pid>/stat` the figures need."""

    #: The executable's name (`comm`, at most 15 bytes).
    comm: str
    #: The parent's pid.
    ppid: int
    #: User plus system CPU time, in clock ticks.
    cpu_ticks: int
    #: Start time after boot, in clock ticks.
    start_ticks: int


@dataclass(frozen=True, slots=True, kw_only=True)
class ProcessFigures:
    """One process's figures, in base units."""

    #: Resident set size, in bytes.
    rss: float
    #: User plus system CPU time, in seconds.
    cpu: float
    #: Open file descriptors.
    fds: float
    #: Start time, in seconds since the Unix epoch.
    start: float


def parse_stat(text: str) -> ProcStat:
    """Reads `/proc/<pid>/stat`; `comm` may hold spaces and parentheses.

    Raises:
        ValueError: the text is not a stat line.
    """
    left, right = text.find("("), text.rfind(")")
    if left < 0 or right < left:
        raise ValueError(f"/proc stat line {text[:80]!r} has no (comm)")
    fields = text[right + 2 :].split()
    # fields[0] is field 3 (state): ppid is field 4, utime 14, stime 15, starttime 22.
    return ProcStat(
        comm=text[left + 1 : right],
        ppid=int(fields[1]),
        cpu_ticks=int(fields[11]) + int(fields[12]),
        start_ticks=int(fields[19]),
    )


def parse_rss(status: str) -> int:
    """Bytes of `VmRSS:` in `/proc/<pid>/status`; 0 when absent (a zombie)."""
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def _boot_time() -> float:
    with open("/proc/stat") as f:
        for line in f:
            if line.startswith("btime "):
                return float(line.split()[1])
    return 0.0


def read_figures(pid: int, boot_time: float, ticks: float) -> ProcessFigures | None:
    """The figures of `pid`, or None when it is gone (or not ours to read)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = parse_stat(f.read())
        with open(f"/proc/{pid}/status") as f:
            rss = parse_rss(f.read())
        fds = len(os.listdir(f"/proc/{pid}/fd"))
    except (OSError, ValueError, IndexError):
        return None
    return ProcessFigures(
        rss=float(rss),
        cpu=stat.cpu_ticks / ticks,
        fds=float(fds),
        start=boot_time + stat.start_ticks / ticks,
    )


def containerd_pid(parent: int) -> int | None:
    """The pid of the containerd daemon whose parent is `parent`, if one runs."""
    # A child belongs to the thread that started it: read every thread's list.
    children: list[int] = []
    try:
        for task in os.listdir(f"/proc/{parent}/task"):
            with open(f"/proc/{parent}/task/{task}/children") as f:
                children += [int(p) for p in f.read().split()]
    except OSError:
        return None
    for pid in children:
        try:
            with open(f"/proc/{pid}/stat") as f:
                if parse_stat(f.read()).comm == CONTAINERD_COMM:
                    return pid
        except (OSError, ValueError, IndexError):
            continue
    return None


class ProcessCollector(Collector):
    """The four per-process series for what `pids` lists at each scrape.

    Args:
        pids: lists `(dn, process, pid)`; called from the scraping thread.
    """

    def __init__(self, pids: PidLister) -> None:
        self._pids = pids
        self._ticks = float(os.sysconf("SC_CLK_TCK"))
        self._boot = _boot_time()

    def collect(self) -> Iterator[Metric]:
        labels = ["dn", "process"]
        rss = GaugeMetricFamily(RSS, "Resident memory of the process, in bytes", labels=labels)
        cpu = CounterMetricFamily(
            CPU.removesuffix("_total"), "User and system CPU time of the process", labels=labels
        )
        fds = GaugeMetricFamily(FDS, "Open file descriptors of the process", labels=labels)
        start = GaugeMetricFamily(
            START, "Start time of the process since the Unix epoch, in seconds", labels=labels
        )
        for dn, process, pid in self._pids():
            figures = read_figures(pid, self._boot, self._ticks)
            if figures is None:
                continue
            rss.add_metric([dn, process], figures.rss)
            cpu.add_metric([dn, process], figures.cpu)
            fds.add_metric([dn, process], figures.fds)
            start.add_metric([dn, process], figures.start)
        yield from (rss, cpu, fds, start)


def agent_processes(
    statuses: Iterable[tuple[str, int | None]], own_pid: int, *, zygote_pid: int | None = None
) -> list[tuple[str, str, int]]:
    """`(dn, process, pid)` for the agent: its own process (`supervisor`, DN `root`),
    the zygote (`zygote`, DN `root`), each running node's host (`runnable`), and
    containerd under `root.containerd`.

    Args:
        statuses: `(dn, pid)` of every node, pid None when it has no process.
        own_pid: the agent's root process.
        zygote_pid: the zygote's pid, None when none runs (`spawn = "exec"`, or dead).
    """
    out = [("root", "supervisor", own_pid)]
    if zygote_pid is not None:
        out.append(("root", "zygote", zygote_pid))
    for dn, pid in statuses:
        if pid is None:
            continue
        out.append((dn, "runnable", pid))
        if dn == CONTAINERD_DN:
            daemon = containerd_pid(pid)
            if daemon is not None:
                out.append((dn, "containerd", daemon))
    return out
