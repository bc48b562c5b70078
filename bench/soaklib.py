"""The chaos soak: the agent under random kills and stops, and the invariants it must keep.

`run_soak(settings)` starts ``bin/node-containerd run`` on a config of its own (the
default profile with a short state directory, a JSON log sink and a faster backoff; see
`soak_agent.write_config`), with image tarballs to preseed, and a writer putting
numbered lines into the runsc FIFO at a steady rate. Then a driver, from a seeded random
source, injects one fault at a time at a random moment, through a pidfd (a recycled pid
is never hit):

====================  ==================================================================
kind                  what is done
====================  ==================================================================
kill root.containerd  SIGKILL of the root.containerd actor process (containerd follows)
kill containerd       SIGKILL of the containerd binary itself
kill runsc            SIGKILL of the log pump process
kill preseed          SIGKILL of the preseed process while it imports (a new tarball is
                      dropped into the preseed directory and preseed restarted to import
                      it; the kill comes at a random moment of that run)
stop <actor>          SIGSTOP, then SIGCONT after a random time: either short (under two
                      heartbeat intervals: the tree must not notice) or long (over three:
                      the heartbeat must catch it, and the supervisor kills and restarts
                      the node)
stop containerd       SIGSTOP/SIGCONT of the containerd binary (the agent does not watch
                      containerd once it answered, so it only has to resume)
restart runsc         ``node-containerd restart root.containerd.runsc``: a graceful restart
====================  ==================================================================

Now and then (``chain_p``) a kill comes while the tree is still recovering from the one
before. After every fault the driver waits until:

* ``status --json`` lists every node HEALTHY or DONE, and every node the fault killed
  runs in a new process (or is DONE again);
* containerd answers (``ctr version``), and the line written last before the recovery
  has arrived in the JSON log (the pump really pumps again).

Recovery time runs from the end of the fault (SIGKILL sent; SIGCONT sent; the stopped
process's death when the heartbeat caught it; the restart command's return) to that
status. The bound it is checked against is **the backoff the supervisor drew for the
restarts between the fault and the recovery** (read from its ``rescheduling supervised
node … with backoff D s`` log entries) **plus `start_bound_s`** (5 s by default: spawning
fresh Python processes for the restarted nodes, containerd's start until it answers, and
preseed re-checking or importing its tarballs, on a loaded 2-core machine), plus, for a
fault followed by another before it recovered, the time until that last fault.

At the end: every preseeded image must be complete (``ctr images check``); the root's
RSS must not grow with the faults (see below); every lost line must be charged to a
SIGKILL of the pump (or a stop the heartbeat caught) within the documented bound per
death, so graceful restarts and every other fault lose nothing; SIGTERM must end the
agent with exit code 0 and leave no process of ours and no containerd.

Memory. The RSS of the root is sampled after fault 20, every 20 faults, and after the
last. Two comparisons are printed: after fault 200 against after fault 20 (issue 7's
wording), and from the first sample at which every DN still logging has filled its
log retention (the tree keeps 8192 entries per DN; containerd's ~45 boot lines per
restart and preseed's one line per tarball per run fill theirs near fault 300 here) to
the last fault. Retention filling up is bounded growth, not a leak, so when the run goes on for
at least `STEADY_MIN_FAULTS` faults past that point (``--long``: 500 faults) the second
comparison is the one judged; otherwise the first (the short mode: fault 20 against the
last fault of its minute).

The result is a `SoakReport`; `render_table` prints it and `summary` is the last line's
JSON object.
"""

from __future__ import annotations

import os
import random
import re
import select
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
for _p in (REPO, REPO / "tests", REPO / "bench"):
    if str(_p) not in sys.path:
        sys.path.insert(0, str(_p))

from soak_agent import (
    NodeRow,
    ProcessTable,
    SoakAgent,
    containerd_pid,
    rss_mb,
    write_config,
)
from soak_lines import (
    DeathWindow,
    JsonLogFollower,
    LineWriter,
    LossReport,
    account_losses,
    loss_bound_lines,
)

from actors.containerd.logpump import READ_SIZE
from actors.logtree import DEFAULT_MAX_ENTRIES_PER_DN
from actors.supervisor.process.childlog import CHUNK_BYTES

__all__ = [
    "LONG",
    "SHORT",
    "RssVerdict",
    "SoakReport",
    "SoakSettings",
    "render_table",
    "rss_verdict",
    "run_soak",
    "summary",
]

NAMESPACE = "k8s.io"
CONTAINERD_DN = "root.containerd"
DN = {
    "root.containerd": CONTAINERD_DN,
    "containerd": CONTAINERD_DN,
    "runsc": "root.containerd.runsc",
    "preseed": "root.containerd.preseed",
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
}
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
    #: Preseed images (False only while developing without the importer).
    preseed: bool = True
    #: Where to work (default: a fresh directory under /tmp), and whether to keep it.
    workdir: Path | None = None
    keep: bool = False


SHORT = SoakSettings(mode="short", faults=60, budget_s=42.0)
LONG = SoakSettings(mode="long", faults=500, budget_s=3 * 3600.0)


@dataclass(slots=True)
class Fault:
    """One injected fault and what came of it."""

    n: int
    kind: str
    dn: str
    #: "killed", "caught" (a stop the heartbeat caught), "resumed", "restarted",
    #: or "missed" (the target was gone before the signal).
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


class _Abort(Exception):
    """The soak cannot go on (the agent died, the tree never came up)."""


class Soak:
    """One run of the soak; see the module doc."""

    def __init__(self, settings: SoakSettings) -> None:
        self.s = settings
        self.rng = random.Random(settings.seed)
        base = settings.workdir or Path(tempfile.mkdtemp(prefix="ncsoak-", dir="/tmp"))
        self.work = base
        self.state = base / "st"
        self.preseed_dir = self.state / "preseed" / NAMESPACE
        self.json_log = base / "log.jsonl"
        self.config = base / "agent.toml"
        self.socket = self.state / "containerd" / "containerd.sock"
        self.agent = SoakAgent(self.config, self.state / "control.sock", base)
        self.procs = ProcessTable(self.state)
        self.follower = JsonLogFollower(self.json_log)
        self.writer: LineWriter | None = None
        self.report = SoakReport(settings=settings, workdir=str(base))
        self.images: list[str] = []
        self._image_seq = 0
        #: Fault kinds still to be drawn once each before drawing by weight.
        self._deck: list[tuple[str, str]] | None = None

    # ------------------------------------------------------------ set-up

    def _make_image(self, size: int | None = None) -> Path:
        """Writes one new tarball into the preseed directory (atomically, by rename)."""
        from imagegen import ImageSpec, random_layer, write_oci_archive

        i = self._image_seq
        self._image_seq += 1
        name = f"soak.local/img{i}:v1"
        spool = self.work / "spool"
        size = self.s.image_bytes if size is None else size
        layer = random_layer(size, seed=self.s.seed * 1000 + i, spool_dir=spool)
        staged = self.work / f"img{i}.tar"
        write_oci_archive(staged, [ImageSpec(name, (layer,))])
        assert layer.path is not None
        layer.path.unlink()
        final = self.preseed_dir / f"img{i}.tar"
        os.replace(staged, final)
        self.images.append(name)
        return final

    def _setup(self) -> None:
        self.state.mkdir(parents=True, exist_ok=True)
        write_config(
            self.config,
            state_dir=self.state,
            json_log=self.json_log,
            backoff_max_s=self.s.backoff_max_s,
        )
        if not self.s.preseed:
            with open(self.config, "a") as f:
                f.write("[preseed]\nenabled = false\n")
        self.preseed_dir.mkdir(parents=True, exist_ok=True)
        if self.s.preseed:
            for _ in range(self.s.initial_images):
                self._make_image()

    # ------------------------------------------------------------ helpers

    def _rows(self) -> list[NodeRow]:
        rows = self.agent.status()
        if rows is None:
            raise _Abort(f"no status from the agent (exit code {self.agent.exited()})")
        for r in rows:
            if r.pid is not None:
                self.procs.remember(r.pid, r.dn)
        return rows

    @staticmethod
    def _row(rows: list[NodeRow], dn: str) -> NodeRow | None:
        return next((r for r in rows if r.dn == dn), None)

    def _remember_containerd(self, rows: list[NodeRow]) -> None:
        node = self._row(rows, CONTAINERD_DN)
        if node is not None and node.pid is not None:
            pid = containerd_pid(node.pid)
            if pid is not None:
                self.procs.remember(pid, "containerd")

    def _containerd_answers(self) -> bool:
        try:
            r = subprocess.run(
                ["ctr", "-a", str(self.socket), "version"],
                capture_output=True,
                timeout=10,
                check=False,
            )
        except subprocess.TimeoutExpired:
            return False
        return r.returncode == 0

    def _wait_pid(self, dn: str, not_pid: int | None, timeout: float) -> NodeRow | None:
        """Polls status until `dn` runs in a process other than `not_pid`."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            row = self._row(self._rows(), dn)
            if row is not None and row.pid is not None and row.pid != not_pid:
                return row
            time.sleep(0.005)
        return None

    # ------------------------------------------------------------ faults

    def _choose(self, kills_only: bool = False) -> tuple[str, str]:
        kinds = [k for k in KINDS if self.s.preseed or k[1] != "preseed"]
        if kills_only:
            kinds = [k for k in kinds if k[0] == "kill" and k[1] != "preseed"]
            return self.rng.choices(kinds, weights=[KINDS[k] for k in kinds])[0]
        # Every kind once first (in a random order), so that even a short run covers
        # each, whatever the faults' durations do to the draws; then by weight.
        if self._deck is None:
            self._deck = self.rng.sample(kinds, len(kinds))
        if self._deck:
            return self._deck.pop()
        return self.rng.choices(kinds, weights=[KINDS[k] for k in kinds])[0]

    def _start_preseed_run(self) -> tuple[NodeRow | None, str]:
        """Drops a new tarball and restarts preseed, which then imports it.

        Returns preseed's row once its new process has begun to import (it logged
        that containerd answers), and the new tarball's name.
        """
        row = self._row(self._rows(), DN["preseed"])
        old = row.pid if row is not None else None
        tarball = self._make_image(self.s.fault_image_bytes).name
        asked = time.time()
        r = self.agent.cli("restart", DN["preseed"])
        if r.returncode != 0:
            self.report.violations.append(f"restart {DN['preseed']} failed: {r.stderr.strip()}")
            return None, tarball
        row = self._wait_pid(DN["preseed"], old, 10.0)
        if row is not None and not self.follower.wait_watched("preseeding from", asked, 10.0):
            return None, tarball
        return row, tarball

    def _inject(self, n: int, action: str, target: str) -> Fault:
        fault = Fault(n=n, kind=f"{action} {target}", dn=DN[target])
        rows = self._rows()
        if action == "restart":
            old = self._row(rows, fault.dn)
            fault.old_pid = old.pid if old is not None else None
            fault.wall_start = time.time()
            r = self.agent.cli("restart", fault.dn)
            fault.end, fault.wall_end = time.monotonic(), time.time()
            fault.outcome = "restarted" if r.returncode == 0 else "missed"
            fault.note = r.stderr.strip()
            return fault
        if target == "preseed":
            row, tarball = self._start_preseed_run()
            if row is not None:
                # A random moment of the import (about 0.6 s for one image here).
                time.sleep(self.rng.uniform(0.0, 0.4))
                fault.note = tarball
        else:
            row = self._row(rows, fault.dn)
        pid = row.pid if row is not None else None
        fault.old_pid = pid
        if target == "containerd" and pid is not None:
            pid = containerd_pid(pid)
            if pid is not None:
                self.procs.remember(pid, "containerd")
        if pid is None:
            fault.outcome, fault.note = "missed", "no process to signal"
            return fault
        try:
            pidfd = os.pidfd_open(pid)
        except ProcessLookupError:
            fault.outcome, fault.note = "missed", f"pid {pid} already gone"
            return fault
        try:
            return self._signal(fault, pidfd, action, target)
        finally:
            os.close(pidfd)

    def _signal(self, fault: Fault, pidfd: int, action: str, target: str) -> Fault:
        fault.wall_start = time.time()
        start = time.monotonic()
        try:
            if action == "kill":
                signal.pidfd_send_signal(pidfd, signal.SIGKILL)
                fault.outcome = "killed"
                fault.end, fault.wall_end = start, fault.wall_start
                self._note_pump_death(fault)
                return fault
            window = MISSED_HEARTBEATS * HEARTBEAT_S
            if target == "containerd" or self.rng.random() < 0.5:
                fault.stop_s = self.rng.uniform(0.2, min(1.5, window - HEARTBEAT_S - 0.3))
            else:
                fault.stop_s = self.rng.uniform(window + 0.6, window + 1.5)
            signal.pidfd_send_signal(pidfd, signal.SIGSTOP)
            poller = select.poll()
            poller.register(pidfd, select.POLLIN)
            if poller.poll(int(fault.stop_s * 1000)):
                fault.outcome = "caught"
                fault.detect_s = time.monotonic() - start
                fault.wall_end = time.time()
                self._note_pump_death(fault)
            else:
                signal.pidfd_send_signal(pidfd, signal.SIGCONT)
                fault.outcome = "resumed"
        except ProcessLookupError:
            fault.outcome, fault.note = "missed", "exited before the signal"
        fault.end, fault.wall_end = time.monotonic(), time.time()
        return fault

    def _note_pump_death(self, fault: Fault) -> None:
        """Books a SIGKILL of the pump (ours, or the supervisor's for a caught stop)."""
        if fault.dn == DN["runsc"]:
            self.report.pump_deaths.append(
                DeathWindow(
                    fault.wall_start,
                    fault.wall_end + 0.1,
                    f"{fault.n} {fault.kind} ({fault.outcome})",
                )
            )

    def _recovered(self, faults: list[Fault]) -> Any:
        def accept(rows: list[NodeRow]) -> bool:
            for f in faults:
                if not f.restarts_node:
                    continue
                row = self._row(rows, f.dn)
                if row is None or (row.pid is not None and row.pid == f.old_pid):
                    return False
                if row.pid is None and row.state != "DONE":
                    return False
            return True

        return accept

    def _recover(self, chain: list[Fault]) -> None:
        """Waits for the tree to recover from `chain` and checks each fault's bound."""
        timeout = self.s.start_bound_s + 2 * self.s.backoff_max_s * len(chain) + 30.0
        rows, at = self.agent.wait_settled(timeout, self._recovered(chain))
        wall_at = time.time() - (time.monotonic() - at)
        if rows is None:
            for f in chain:
                f.note = (f.note + "; " if f.note else "") + f"not recovered within {timeout:.0f} s"
            return
        for r in rows:
            if r.pid is not None:
                self.procs.remember(r.pid, r.dn)
        self._remember_containerd(rows)
        assert self.writer is not None
        last_line = self.writer.next_seq - 1
        answers = self._containerd_answers()
        flowing = self.follower.wait_for(last_line, 10.0)
        self.follower.poll()
        self._check_deaths(chain)
        last_end = chain[-1].end
        for f in chain:
            f.recovery_s = at - f.end
            backoff = self.follower.backoff_between(f.wall_start - 0.05, wall_at + 0.05)
            f.bound_s = backoff + self.s.start_bound_s + (last_end - f.end)
            problems = []
            if not answers:
                problems.append("containerd does not answer")
            if not flowing:
                problems.append(f"line {last_line} never reached the log")
            if f.recovery_s > f.bound_s:
                why = sorted(
                    {
                        f"{dn}: {msg}"
                        for t, dn, msg in self.follower.fatals
                        if f.wall_start - 0.05 <= t <= wall_at
                    }
                )
                problems.append(
                    f"recovery {f.recovery_s:.2f} s over its bound {f.bound_s:.2f} s"
                    f" (FATAL meanwhile: {why})"
                )
            f.recovered = not problems
            if problems:
                f.note = (f.note + "; " if f.note else "") + ", ".join(problems)

    def _check_deaths(self, chain: list[Fault]) -> None:
        """A kill must have been seen as a death of its node (a FATAL on its DN)."""
        for f in chain:
            if f.outcome not in ("killed", "caught"):
                continue
            died = any(
                dn == f.dn and t >= f.wall_start - 0.05 and "died" in msg
                for t, dn, msg in self.follower.fatals
            )
            if not died:
                f.outcome, f.note = "missed", "no death logged (it had exited by itself)"
            elif f.dn == DN["preseed"] and f.note.endswith(".tar"):
                done = any(
                    t < f.wall_start and f"/{f.note}'" in m and "imported" in m
                    for t, m in self.follower.watched
                )
                f.note = f"after importing {f.note}" if done else f"while importing {f.note}"

    def _count_missed(self, fault: Fault) -> None:
        self.report.missed += 1
        why = f"{fault.kind}: {fault.note.split(';')[0]}"
        why = re.sub(r"pid \d+", "the pid", why)
        self.report.missed_why[why] = self.report.missed_why.get(why, 0) + 1

    def _fault_phase(self) -> None:
        began = time.monotonic()
        n = 0
        last_counts: dict[str, int] = {}
        while n < self.s.faults and time.monotonic() - began < self.s.budget_s:
            time.sleep(self.rng.uniform(*self.s.gap_s))  # a random moment: the chaos schedule
            chain: list[Fault] = []
            action, target = self._choose()
            while True:
                fault = self._inject(n + 1, action, target)
                if fault.outcome == "missed":
                    self._count_missed(fault)
                    break
                n += 1
                chain.append(fault)
                if fault.outcome != "killed" or self.rng.random() >= self.s.chain_p:
                    break
                time.sleep(self.rng.uniform(0.05, 0.5))  # the next kill mid-recovery
                action, target = self._choose(kills_only=True)
            if not chain:
                continue
            self._recover(chain)
            for fault in chain:
                if fault.outcome == "missed":  # it had exited by itself: no fault at all
                    n -= 1
                    self._count_missed(fault)
                else:
                    self.report.faults.append(fault)
            if self.agent.exited() is not None:
                raise _Abort(f"the agent exited with {self.agent.exited()} during the soak")
            if "mid" not in self.report.rss and n >= self.s.rss_mid_fault:
                self.report.rss["mid"] = rss_mb(self.agent.pid)
                self.report.rss_mid_after = n
            samples = self.report.rss_samples
            if n // self.s.rss_every > (samples[-1][0] if samples else 0) // self.s.rss_every:
                self.follower.poll()
                counts = dict(self.follower.per_dn)
                # Full: every DN still logging keeps 8192 entries, so no longer grows.
                full = all(
                    c >= DEFAULT_MAX_ENTRIES_PER_DN
                    for dn, c in counts.items()
                    if c > last_counts.get(dn, 0)
                )
                last_counts = counts
                samples.append((n, rss_mb(self.agent.pid), full))
        self.report.fault_phase_s = time.monotonic() - began
        self.report.rss["end"] = rss_mb(self.agent.pid)
        self.report.rss_end_after = n
        self.follower.poll()
        self.report.entries_per_dn = dict(sorted(self.follower.per_dn.items()))

    # ------------------------------------------------------------ end checks

    def _check_images(self) -> None:
        self.report.images_expected = list(self.images)
        ctr = ["ctr", "-a", str(self.socket), "-n", NAMESPACE]
        out = subprocess.run(
            [*ctr, "images", "check"], capture_output=True, text=True, timeout=60, check=False
        )
        status = {}
        for line in out.stdout.splitlines()[1:]:
            cols = line.split()
            if len(cols) >= 4:
                status[cols[0]] = cols[3]
        self.report.images_complete = [i for i in self.images if status.get(i) == "complete"]
        for what, args in (("leases", ["leases", "ls"]), ("ingests", ["content", "active"])):
            r = subprocess.run(
                [*ctr, *args], capture_output=True, text=True, timeout=30, check=False
            )
            count = len([x for x in r.stdout.splitlines()[1:] if x.strip()])
            setattr(self.report, f"{what}_left", count)

    def _shutdown(self) -> None:
        began = time.monotonic()
        self.report.exit_code = self.agent.terminate(timeout=60.0)
        self.report.shutdown_s = time.monotonic() - began
        deadline = time.monotonic() + 2.0
        while True:
            left = self.procs.leftovers(self.agent.pid)
            if not left or time.monotonic() >= deadline:
                break
            time.sleep(0.05)
        self.report.leftovers = left
        self.report.processes_seen = self.procs.seen

    def _judge(self) -> None:
        r, s, v = self.report, self.s, self.report.violations
        window = MISSED_HEARTBEATS * HEARTBEAT_S
        for f in r.faults:
            if not f.recovered:
                v.append(f"fault {f.n} ({f.kind}, {f.outcome}) not recovered: {f.note}")
            if f.outcome == "caught" and f.detect_s is not None and f.detect_s > window + 0.5:
                v.append(f"fault {f.n} ({f.kind}): stop caught only after {f.detect_s:.2f} s")
        for f in r.faults:
            long_stop = f.stop_s is not None and f.stop_s > window
            if long_stop and f.kind != "stop containerd" and f.outcome == "resumed":
                v.append(f"fault {f.n} ({f.kind}): stopped {f.stop_s:.1f} s, heartbeat missed it")
        if s.preseed and r.images_complete != r.images_expected:
            missing = sorted(set(r.images_expected) - set(r.images_complete))
            v.append(f"images not complete: {missing}")
        rss = rss_verdict(r)
        if not rss.ok:
            a, b = rss.steady_between if rss.judged == "steady" else rss.literal_between
            pct = rss.steady_pct if rss.judged == "steady" else rss.literal_pct
            v.append(f"root RSS grew {pct:.1f} % between fault {a} and fault {b}")
        lines = r.lines
        if lines is not None:
            if lines.unexplained:
                v.append(f"lines lost that no pump death explains: {lines.unexplained[:10]}")
            if lines.worst_per_death > lines.bound_per_death:
                v.append(
                    f"a pump death lost {lines.worst_per_death} lines, "
                    f"over the bound of {lines.bound_per_death}"
                )
            if lines.duplicates or lines.out_of_order:
                v.append(
                    f"{lines.duplicates} duplicate and {lines.out_of_order} out-of-order lines"
                )
            if self.follower.sink_missed:
                v.append(f"the JSON sink missed {self.follower.sink_missed} entries")
        if r.exit_code != 0:
            v.append(f"agent exit code after SIGTERM: {r.exit_code}")
        if r.leftovers:
            v.append(f"{len(r.leftovers)} processes left: {r.leftovers}")

    # ------------------------------------------------------------ the run

    def run(self) -> SoakReport:
        self._setup()
        self.agent.start()
        self.procs.remember(self.agent.pid, "agent")
        try:
            self._run_started()
        except _Abort as e:
            self.report.violations.append(str(e))
        finally:
            if self.writer is not None:
                self.writer.stop()
            if self.report.exit_code is None and self.agent.proc is not None:
                if self.agent.exited() is None:
                    self._shutdown()
                else:
                    self.report.exit_code = self.agent.exited()
                    self.report.leftovers = self.procs.leftovers(self.agent.pid)
            self.agent.kill()
            self.follower.poll()
        self._account()
        self._judge()
        if self.report.ok and not self.s.keep:
            shutil.rmtree(self.work, ignore_errors=True)
        return self.report

    def _run_started(self) -> None:
        rows, _ = self.agent.wait_settled(60.0)
        if rows is None:
            raise _Abort(f"the tree did not come up within 60 s: {self.agent.status()}")
        self._rows()
        self._remember_containerd(rows)
        self.writer = LineWriter(
            self.state / "runsc" / "logs.fifo", rate=self.s.line_rate, line_bytes=self.s.line_bytes
        )
        self.writer.start()
        if not self.follower.wait_for(0, 10.0):
            raise _Abort("the first numbered line never reached the JSON log")
        self.report.rss["start"] = rss_mb(self.agent.pid)
        self._fault_phase()
        self.writer.stop()
        if self.writer.error:
            self.report.violations.append(self.writer.error)
        if not self.follower.wait_for(self.writer.next_seq - 1, 15.0):
            self.report.violations.append("the last numbered line never reached the JSON log")
        cli = self.agent.cli("status", "--json")
        if cli.returncode != 0:
            self.report.violations.append(f"status --json failed: {cli.stderr.strip()}")
        if self.s.preseed:
            self._check_images()
        self._shutdown()

    def _account(self) -> None:
        if self.writer is None:
            return
        bound = loss_bound_lines(self.s.line_bytes, READ_SIZE, CHUNK_BYTES)
        self.report.lines = account_losses(
            self.follower, self.writer, self.report.pump_deaths, bound
        )


def run_soak(settings: SoakSettings) -> SoakReport:
    """Runs the soak; see the module doc."""
    return Soak(settings).run()


# ---------------------------------------------------------------- output


@dataclass(frozen=True, slots=True)
class RssVerdict:
    """The root's memory over the faults, as judged.

    Attributes:
        literal_pct: growth from after fault 20 to after fault 200 (the first sample at
            or past it; the last fault in a shorter run), percent.
        literal_between: the two fault numbers compared.
        steady_pct: growth from the first sample at which every DN still logging had
            filled its log retention (8192 entries) to the last fault, percent.
        steady_between: the two fault numbers compared.
        judged: "steady" when that window spans at least `STEADY_MIN_FAULTS` faults
            (bounded retention filling up is not a leak), else "literal".
        ok: the judged growth is within the tolerance.
    """

    literal_pct: float | None
    literal_between: tuple[int, int]
    steady_pct: float | None
    steady_between: tuple[int, int]
    judged: str
    ok: bool


#: The fewest faults after every log retention is full for the steady comparison.
STEADY_MIN_FAULTS = 100


def rss_verdict(r: SoakReport) -> RssVerdict:
    """Compares the root's RSS across the faults; see `RssVerdict`."""
    literal_pct, literal_between = None, (r.rss_mid_after, r.rss_end_after)
    if "mid" in r.rss and "end" in r.rss:
        at, mb = next(((n, m) for n, m, _ in r.rss_samples if n >= 200), (None, None))
        if at is None or mb is None:
            at, mb = r.rss_end_after, r.rss["end"]
        literal_between = (r.rss_mid_after, at)
        literal_pct = round((mb - r.rss["mid"]) / r.rss["mid"] * 100, 2)
    full = next(((n, m) for n, m, f in r.rss_samples if f), None)
    steady_pct, steady_between = None, (0, 0)
    if full is not None and "end" in r.rss and full[0] < r.rss_end_after:
        steady_between = (full[0], r.rss_end_after)
        steady_pct = round((r.rss["end"] - full[1]) / full[1] * 100, 2)
    tolerance = r.settings.rss_tolerance_pct
    if steady_pct is not None and steady_between[1] - steady_between[0] >= STEADY_MIN_FAULTS:
        return RssVerdict(
            literal_pct,
            literal_between,
            steady_pct,
            steady_between,
            "steady",
            steady_pct <= tolerance,
        )
    ok = literal_pct is None or literal_pct <= tolerance
    return RssVerdict(literal_pct, literal_between, steady_pct, steady_between, "literal", ok)


def summary(r: SoakReport) -> dict[str, Any]:
    """The last line's JSON object."""
    rec = [f.recovery_s for f in r.faults if f.recovery_s is not None]
    by_kind: dict[str, int] = {}
    for f in r.faults:
        by_kind[f.kind] = by_kind.get(f.kind, 0) + 1
    rss = rss_verdict(r)
    lines = r.lines
    return {
        "mode": r.settings.mode,
        "seed": r.settings.seed,
        "faults": len(r.faults),
        "faults_by_kind": by_kind,
        "missed_targets": r.missed,
        "recovered": sum(f.recovered for f in r.faults),
        "recovery_s_p50": round(statistics.median(rec), 3) if rec else None,
        "recovery_s_max": round(max(rec), 3) if rec else None,
        "stops_caught": sum(f.outcome == "caught" for f in r.faults),
        "lines_written": lines.written if lines else 0,
        "lines_received": lines.received if lines else 0,
        "lines_lost": lines.lost if lines else 0,
        "lines_lost_unexplained": lines.unexplained_lines if lines else 0,
        "loss_bound_per_pump_kill": lines.bound_per_death if lines else 0,
        "pump_kills": len(r.pump_deaths),
        "rss_mb_start": round(r.rss.get("start", 0.0), 1),
        "rss_mb_mid": round(r.rss.get("mid", 0.0), 1),
        "rss_mb_end": round(r.rss.get("end", 0.0), 1),
        "rss_compared": "after fault {} vs after fault {}".format(*rss.literal_between),
        "rss_growth_pct": rss.literal_pct,
        "rss_mb_every_20_faults": [round(m, 1) for _, m, _ in r.rss_samples],
        "rss_growth_after_retention_full_pct": rss.steady_pct,
        "rss_steady_compared": (
            "after fault {} vs after fault {}".format(*rss.steady_between)
            if rss.steady_pct is not None
            else None
        ),
        "rss_judged": rss.judged,
        "images_expected": len(r.images_expected),
        "images_complete": len(r.images_complete),
        "preseed": r.settings.preseed,
        "exit_code": r.exit_code,
        "leftover_processes": len(r.leftovers),
        "ok": r.ok,
        "violations": r.violations,
    }


def render_table(r: SoakReport) -> str:
    """The soak's table (without the JSON line)."""
    out = []
    s = r.settings
    out.append(
        f"chaos soak, {s.mode} mode, seed {s.seed}: {len(r.faults)} faults in "
        f"{r.fault_phase_s:.0f} s ({r.missed} targets gone before the signal, not counted)"
    )
    out.append(
        f"recovery bound per fault = backoff drawn + {s.start_bound_s:g} s "
        "(+ time to the next fault of a chain)"
    )
    head = (
        f"{'fault':<22}{'n':>4}{'outcome':>22}{'recovered':>10}"
        f"{'p50 s':>8}{'max s':>8}{'bound s':>9}"
    )
    out.append(head)
    out.append("-" * len(head))
    kinds = sorted(
        {f.kind for f in r.faults}, key=lambda k: list(KINDS).index(tuple(k.split(" ", 1)))
    )  # type: ignore[arg-type]
    for kind in [*kinds, "all"]:
        fs = [f for f in r.faults if kind in ("all", f.kind)]
        rec = [f.recovery_s for f in fs if f.recovery_s is not None]
        outcomes: dict[str, int] = {}
        for f in fs:
            outcomes[f.outcome] = outcomes.get(f.outcome, 0) + 1
        shown = " ".join(f"{k}:{v}" for k, v in sorted(outcomes.items())) if kind != "all" else ""
        tight = min(((f.bound_s or 0) for f in fs if f.recovery_s is not None), default=0.0)
        out.append(
            f"{kind:<22}{len(fs):>4}{shown:>22}{sum(f.recovered for f in fs):>10}"
            f"{(statistics.median(rec) if rec else 0):>8.2f}{(max(rec) if rec else 0):>8.2f}"
            f"{tight:>9.2f}"
        )
    for why, count in sorted(r.missed_why.items()):
        out.append(f"not counted ({count}×): {why}")
    caught = [f.detect_s for f in r.faults if f.outcome == "caught" and f.detect_s]
    if caught:
        window = MISSED_HEARTBEATS * HEARTBEAT_S
        out.append(
            f"stops caught by the heartbeat: {len(caught)}, SIGSTOP→killed in "
            f"{min(caught):.2f}–{max(caught):.2f} s (window {window:g} s)"
        )
    ln = r.lines
    pump_kills = len(r.pump_deaths)
    mid_import = sum(f.note.startswith("while importing") for f in r.faults)
    if s.preseed:
        out.append(f"preseed kills/stops that hit an import under way: {mid_import}")
    if ln is not None:
        out.append(
            f"lines: written {ln.written}, received {ln.received}, lost {ln.lost} "
            f"({pump_kills} pump kills, {len(ln.charged)} of them lost lines, worst "
            f"{ln.worst_per_death}, bound {ln.bound_per_death} per kill; "
            f"unexplained {ln.unexplained_lines}; "
            f"spoilt {ln.spoilt}; duplicates {ln.duplicates}; out of order {ln.out_of_order})"
        )
    mid = (
        f"after fault {r.rss_mid_after} {r.rss['mid']:.1f}"
        if "mid" in r.rss
        else f"fault {s.rss_mid_fault} not reached"
    )
    out.append(
        f"root RSS MB: start {r.rss.get('start', 0):.1f}, {mid}, after fault "
        f"{r.rss_end_after} {r.rss.get('end', 0):.1f}"
        + ("" if r.rss_end_after >= 200 else "  (short run: 200-vs-20 needs --long)")
    )
    if r.rss_samples:
        curve = " ".join(f"{m:.1f}{'*' if f else ''}" for _, m, f in r.rss_samples)
        out.append(
            f"root RSS MB every {s.rss_every} faults: {curve}  (*: the log retention "
            f"({DEFAULT_MAX_ENTRIES_PER_DN} entries) of every DN still logging is full)"
        )
    entries = ", ".join(f"{dn} {c}" for dn, c in r.entries_per_dn.items())
    if entries:
        out.append(
            f"log entries per DN over the run (the tree keeps the newest "
            f"{DEFAULT_MAX_ENTRIES_PER_DN} of each): {entries}"
        )
    rss = rss_verdict(r)
    if rss.literal_pct is not None:
        a, b = rss.literal_between
        out.append(
            f"root RSS growth after fault {b} vs after fault {a}: {rss.literal_pct:+.1f} %"
            + ("  (judged)" if rss.judged == "literal" else "")
        )
    if rss.steady_pct is not None:
        a, b = rss.steady_between
        out.append(
            f"root RSS growth once every log retention was full, fault {a} → {b}: "
            f"{rss.steady_pct:+.1f} %"
            + (
                "  (judged)"
                if rss.judged == "steady"
                else f"  (not judged: under {STEADY_MIN_FAULTS} faults)"
            )
        )
    if s.preseed:
        out.append(
            f"images: {len(r.images_complete)}/{len(r.images_expected)} complete "
            f"(ctr images check); leases left {r.leases_left}, ingests left {r.ingests_left}"
        )
    else:
        out.append("images: preseed disabled (development run): not checked")
    out.append(
        f"shutdown: SIGTERM → exit {r.exit_code} in {r.shutdown_s:.1f} s; leftover processes "
        f"{len(r.leftovers)} (of {r.processes_seen} seen)"
    )
    for line in r.leftovers:
        out.append(f"  left: {line}")
    out.append("violations: " + ("none" if r.ok else ""))
    for v in r.violations:
        out.append(f"  - {v}")
    if not r.ok or s.keep:
        out.append(f"work directory kept: {r.workdir}")
    return "\n".join(out)
