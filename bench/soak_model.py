"""The soak's vocabulary: its settings, the faults it injects, and what it reports.

Plain data and constants, no behaviour: `SoakSettings` (one run, with the
`SHORT` and `LONG` modes), `KINDS` (the faults and their weights), `Fault`
(one injected fault and what came of it) and `SoakReport` (everything a run
measured). The contract is in `soaklib`'s module doc.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from bench.soak_lines import DeathWindow, LossReport

__all__ = [
    "CONTAINERD_DN",
    "DN",
    "HEARTBEAT_S",
    "HOSTILE_ACTIONS",
    "KINDS",
    "LONG",
    "MISSED_HEARTBEATS",
    "NAMESPACE",
    "SHORT",
    "Fault",
    "SoakAbort",
    "SoakReport",
    "SoakSettings",
]

NAMESPACE = "k8s.io"
CONTAINERD_DN = "root.containerd"
DN = {
    "root.containerd": CONTAINERD_DN,
    "containerd": CONTAINERD_DN,
    "runsc": "root.containerd.runsc",
    "preseed": "root.containerd.preseed",
    # The faults of the environment (`soak_hostile`) are about the whole agent.
    "root": "root",
    "state": "root",
    "agent": "root",
    "check": "root",
}
#: (action, target) → relative weight.
KINDS: dict[tuple[str, str], int] = {
    ("kill", "root.containerd"): 2,
    ("kill", "containerd"): 2,
    ("kill", "runsc"): 2,
    ("kill", "preseed"): 1,
    ("stop", "root.containerd"): 1,
    ("stop", "containerd"): 1,
    ("stop", "runsc"): 1,
    ("stop", "preseed"): 1,
    ("restart", "runsc"): 1,
    ("freeze", "root"): 1,
    ("readonly", "state"): 1,
    ("full", "state"): 1,
    ("second", "agent"): 1,
    ("interrupt", "check"): 1,
}
#: The actions `soak_hostile` carries out (the others are signals to one process).
HOSTILE_ACTIONS = frozenset({"freeze", "readonly", "full", "second", "interrupt"})
#: Heartbeat interval of every node in the default profile, seconds.
HEARTBEAT_S = 1.0
#: The tree fails a node after this many intervals without a heartbeat.
MISSED_HEARTBEATS = 3


@dataclass(frozen=True, slots=True, kw_only=True)
class SoakSettings:
    """One soak run. Times in seconds."""

    #: "short" or "long" (only shown; the numbers below make the difference).
    mode: str
    #: Seed of every random choice of the driver.
    seed: int = 1
    #: Stop injecting after this many faults ...
    faults: int
    #: ... or once the fault phase has lasted this long.
    budget_s: float
    #: Lines per second written into the FIFO, and the length of each line in bytes.
    line_rate: int = 500
    line_bytes: int = 100
    #: Tarballs in the preseed directory at start, and the layer size of each image.
    initial_images: int = 3
    image_bytes: int = 32 << 20
    #: Layer size of the image each preseed fault drops in (its import is the target).
    fault_image_bytes: int = 48 << 20
    #: backoff_max of every node (backoff_initial is 100 ms, ×1.5, jitter ±50 %).
    backoff_max_s: float = 1.0
    #: The allowance, on top of the drawn backoff, for a restarted subtree to be up.
    start_bound_s: float = 5.0
    #: Pause before each fault, drawn uniformly from this range.
    gap_s: tuple[float, float] = (0.1, 0.8)
    #: Chance that a kill is followed by another before the tree recovered.
    chain_p: float = 0.15
    #: The RSS of the root is compared between after this fault and after the last.
    rss_mid_fault: int = 20
    rss_tolerance_pct: float = 10.0
    #: The RSS is also sampled every this many faults (the curve in the table).
    rss_every: int = 20
    #: `[log] keep` of the agent under soak: entries its log tree keeps per DN. Smaller than
    #: the default (8192) so that every DN's retention is full within the first faults and
    #: the memory comparison after that point covers most of the run.
    log_keep: int = 1024
    #: Preseed images (False only while developing without the importer).
    preseed: bool = True
    #: Where to work (default: a fresh directory under /tmp), and whether to keep it.
    workdir: Path | None = None
    keep: bool = False


SHORT = SoakSettings(mode="short", faults=60, budget_s=70.0)
LONG = SoakSettings(mode="long", faults=500, budget_s=3 * 3600.0)


@dataclass(slots=True)
class Fault:
    """One injected fault and what came of it."""

    n: int
    kind: str
    dn: str
    #: "killed", "caught" (a stop the heartbeat caught), "resumed", "restarted",
    #: "thawed" (the root after a freeze), "restored" (the state dir writable again),
    #: "refused" (a second agent), "interrupted" (a check), or "missed" (the target was
    #: gone before the signal).
    outcome: str = ""
    wall_start: float = 0.0
    wall_end: float = 0.0
    end: float = 0.0
    stop_s: float | None = None
    detect_s: float | None = None
    #: The pid the fault took down, to be replaced by a new one.
    old_pid: int | None = None
    recovered: bool = False
    recovery_s: float | None = None
    bound_s: float | None = None
    note: str = ""
    #: DN → pid of every node that must not have restarted (a freeze of the root, a
    #: refused second agent, a check: none of them is the tree's failure).
    same_pids: dict[str, int] = field(default_factory=dict)
    #: What the fault's own checks found wrong (a second agent not refused, a check that
    #: left a pod): each makes the fault unrecovered.
    problems: list[str] = field(default_factory=list)

    @property
    def restarts_node(self) -> bool:
        return self.outcome in ("killed", "caught", "restarted")


@dataclass(slots=True)
class SoakReport:
    """Everything the soak measured."""

    settings: SoakSettings
    faults: list[Fault] = field(default_factory=list)
    missed: int = 0
    #: Why each missed fault missed: "kind: reason" → count.
    missed_why: dict[str, int] = field(default_factory=dict)
    #: Fault actions this run could not inject, and why (no root for a mount, no umoci).
    left_out: dict[str, str] = field(default_factory=dict)
    fault_phase_s: float = 0.0
    rss: dict[str, float] = field(default_factory=dict)
    rss_mid_after: int = 0
    rss_end_after: int = 0
    #: (fault, RSS MB, every DN's log retention full) every `rss_every` faults.
    rss_samples: list[tuple[int, float, bool]] = field(default_factory=list)
    #: Every SIGKILL the pump got (from us, or from the supervisor for a caught stop).
    pump_deaths: list[DeathWindow] = field(default_factory=list)
    #: Entries each DN logged over the run (the tree keeps the newest 8192 of each).
    entries_per_dn: dict[str, int] = field(default_factory=dict)
    lines: LossReport | None = None
    images_expected: list[str] = field(default_factory=list)
    images_complete: list[str] = field(default_factory=list)
    leases_left: int = 0
    ingests_left: int = 0
    exit_code: int | None = None
    shutdown_s: float = 0.0
    leftovers: list[str] = field(default_factory=list)
    processes_seen: int = 0
    violations: list[str] = field(default_factory=list)
    workdir: str = ""

    @property
    def ok(self) -> bool:
        return not self.violations


class SoakAbort(Exception):
    """The soak cannot go on (the agent died, the tree never came up)."""
