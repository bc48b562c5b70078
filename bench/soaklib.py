"""The chaos soak: the agent under random kills and stops, and the invariants it must keep.

`run_soak(settings)` starts `bin/node-containerd run` on a config of its own (the
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
restart runsc         `node-containerd restart root.containerd.runsc`: a graceful restart
freeze root           SIGSTOP of the agent's root for 1 to 10 s: no node may restart
readonly state        the state dir remounted read-only for 1 to 5 s (bind mount, root)
full state            the state dir's file system full to the last byte for 1 to 5 s
                      (the state dir on an ext4 file system of its own, root)
second agent          a second `run` on the same config: refused, nothing written
interrupt check       a `check` signalled (INT, TERM or HUP) once its pod exists: exit
                      128 + the signal, no pod and no run dir left
====================  ==================================================================

The last five are `soak_hostile`'s (the module doc says what each must keep). Every
kind is drawn once before any is drawn by weight, and the fault phase goes on past
its budget until each was, so that even the short mode covers every kind.

Now and then (`chain_p`) a kill comes while the tree is still recovering from the one
before. After every fault the driver waits until:

* `status --json` lists every node HEALTHY or DONE, and every node the fault killed
  runs in a new process (or is DONE again);
* containerd answers (`ctr version`), and the line written last before the recovery
  has arrived in the JSON log (the pump really pumps again).

Recovery time runs from the end of the fault (SIGKILL sent; SIGCONT sent; the stopped
process's death when the heartbeat caught it; the restart command's return) to that
status. The bound it is checked against is **the backoff the supervisor drew for the
restarts between the fault and the recovery** (read from its ``rescheduling supervised
node … with backoff D s`` log entries) **plus `start_bound_s`** (5 s by default: spawning
fresh Python processes for the restarted nodes, containerd's start until it answers, and
preseed re-checking or importing its tarballs, on a loaded 2-core machine), plus, for a
fault followed by another before it recovered, the time until that last fault.

At the end: every preseeded image must be complete (`ctr images check`); the root's
RSS must not grow with the faults (see below); every lost line must be charged to a
SIGKILL of the pump (or a stop the heartbeat caught) within the documented bound per
death, so graceful restarts and every other fault lose nothing; SIGTERM must end the
agent with exit code 0 and leave no process of ours and no containerd.

Memory. The RSS of the root is sampled after fault 20, every 20 faults, and after the
last. Two comparisons are printed: after fault 200 against after fault 20 (issue 7's
wording), and from the first sample at which every DN still logging has filled its
log retention (the soak's agent keeps `SoakSettings.log_keep` entries per DN, 1024, where
the default profile keeps 8192: at 8192, containerd's ~45 boot lines per restart and
preseed's one line per tarball per run fill theirs only after fault 300 or later) to
the last fault. Retention filling up is bounded growth, not a leak, so when the run goes on for
at least `STEADY_MIN_FAULTS` faults past that point (`--long`: 500 faults) the second
comparison is the one judged; otherwise the first (the short mode: fault 20 against the
last fault of its minute).

The result is a `SoakReport`; `render_table` prints it and `summary` is the last line's
JSON object.

The modules: `soak_model` (settings, faults, the report), `soak_rig` (the agent under
soak and its world), `soak_faults` (choosing and injecting faults), `soak_recovery`
(waiting for and judging each recovery), `soak_verdict` (the invariants, the table, the
JSON line), with `soak_agent` and `soak_lines` below them. This module runs the phases.
"""

from __future__ import annotations

import random
import re
import shutil
import time

from actors.containerd.logpump import READ_SIZE
from actors.supervisor.process.childlog import CHUNK_BYTES
from bench.soak_agent import rss_mb
from bench.soak_faults import FaultDriver
from bench.soak_hostile import HostileFaults
from bench.soak_lines import LineWriter, account_losses, loss_bound_lines
from bench.soak_model import LONG, SHORT, Fault, SoakAbort, SoakReport, SoakSettings
from bench.soak_recovery import RecoveryCheck
from bench.soak_rig import SoakRig
from bench.soak_verdict import RssVerdict, judge, render_table, rss_verdict, summary

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


class Soak:
    """One run of the soak: the phases, in order; see the module doc."""

    def __init__(self, settings: SoakSettings) -> None:
        self.s = settings
        #: The one seeded random source of every choice (faults, gaps, chains).
        self.rng = random.Random(settings.seed)
        self.rig = SoakRig(settings)
        self.report = SoakReport(settings=settings, workdir=str(self.rig.work))
        self.hostile = HostileFaults(self.rig, settings, self.rng)
        self.faults = FaultDriver(self.rig, settings, self.rng, self.report, self.hostile)
        self.recovery = RecoveryCheck(self.rig, settings)
        self.writer: LineWriter | None = None

    def run(self) -> SoakReport:
        """Sets up, starts the agent, runs every phase, and judges the run."""
        self.rig.setup()
        try:
            self.hostile.setup()
            self.rig.agent.start()
            self.rig.procs.remember(self.rig.agent.pid, "agent")
            self._run_started()
        except SoakAbort as e:
            self.report.violations.append(str(e))
        finally:
            if self.writer is not None:
                self.writer.stop()
            if self.report.exit_code is None and self.rig.agent.proc is not None:
                if self.rig.agent.exited() is None:
                    self.rig.shutdown(self.report)
                else:
                    self.report.exit_code = self.rig.agent.exited()
                    self.report.leftovers = self.rig.procs.leftovers(self.rig.agent.pid)
            self.rig.agent.kill()
            self.rig.follower.poll()
            self.hostile.teardown()
            self.report.left_out = dict(self.hostile.unavailable)
        self._account()
        judge(self.report, self.rig.follower.sink_missed)
        if self.report.ok and not self.s.keep:
            shutil.rmtree(self.rig.work, ignore_errors=True)
        return self.report

    def _run_started(self) -> None:
        rows, _ = self.rig.status.wait_settled(60.0)
        if rows is None:
            raise SoakAbort(f"the tree did not come up within 60 s: {self.rig.status.status()}")
        self.rig.rows()
        self.rig.remember_containerd(rows)
        self.writer = LineWriter(
            self.rig.state / "runsc" / "logs.fifo",
            rate=self.s.line_rate,
            line_bytes=self.s.line_bytes,
        )
        self.writer.start()
        if not self.rig.follower.wait_for(0, 10.0):
            raise SoakAbort("the first numbered line never reached the JSON log")
        self.report.rss["start"] = rss_mb(self.rig.agent.pid)
        self._fault_phase()
        self.writer.stop()
        if self.writer.error:
            self.report.violations.append(self.writer.error)
        if not self.rig.follower.wait_for(self.writer.next_seq - 1, 15.0):
            self.report.violations.append("the last numbered line never reached the JSON log")
        cli = self.rig.cli("status", "--json")
        if cli.returncode != 0:
            self.report.violations.append(f"status --json failed: {cli.stderr.strip()}")
        if self.s.preseed:
            self.rig.check_images(self.report)
        self.rig.shutdown(self.report)

    def _fault_phase(self) -> None:
        """Injects faults until the count or the time budget is reached."""
        writer = self.writer
        assert writer is not None
        began = time.monotonic()
        n = 0
        last_counts: dict[str, int] = {}
        while (
            n < self.s.faults and time.monotonic() - began < self.s.budget_s
        ) or self.faults.deck_left:
            time.sleep(self.rng.uniform(*self.s.gap_s))  # a random moment: the chaos schedule
            chain: list[Fault] = []
            action, target = self.faults.choose()
            while True:
                fault = self.faults.inject(n + 1, action, target)
                if fault.outcome == "missed":
                    self._count_missed(fault)
                    break
                n += 1
                chain.append(fault)
                if fault.outcome != "killed" or self.rng.random() >= self.s.chain_p:
                    break
                time.sleep(self.rng.uniform(0.05, 0.5))  # the next kill mid-recovery
                action, target = self.faults.choose(kills_only=True)
            if not chain:
                continue
            self.recovery.wait(chain, writer)
            for fault in chain:
                if fault.outcome == "missed":  # it had exited by itself: no fault at all
                    n -= 1
                    self._count_missed(fault)
                else:
                    self.report.faults.append(fault)
            if self.rig.agent.exited() is not None:
                raise SoakAbort(f"the agent exited with {self.rig.agent.exited()} during the soak")
            if "mid" not in self.report.rss and n >= self.s.rss_mid_fault:
                self.report.rss["mid"] = rss_mb(self.rig.agent.pid)
                self.report.rss_mid_after = n
            samples = self.report.rss_samples
            if n // self.s.rss_every > (samples[-1][0] if samples else 0) // self.s.rss_every:
                self.rig.follower.poll()
                counts = dict(self.rig.follower.per_dn)
                # Full: every DN still logging keeps its `[log] keep`, so no longer grows.
                full = all(
                    c >= self.s.log_keep for dn, c in counts.items() if c > last_counts.get(dn, 0)
                )
                last_counts = counts
                samples.append((n, rss_mb(self.rig.agent.pid), full))
        self.report.fault_phase_s = time.monotonic() - began
        self.report.rss["end"] = rss_mb(self.rig.agent.pid)
        self.report.rss_end_after = n
        self.rig.follower.poll()
        self.report.entries_per_dn = dict(sorted(self.rig.follower.per_dn.items()))

    def _count_missed(self, fault: Fault) -> None:
        self.faults.missed(fault.kind)
        self.report.missed += 1
        why = f"{fault.kind}: {fault.note.split(';')[0]}"
        why = re.sub(r"pid \d+", "the pid", why)
        self.report.missed_why[why] = self.report.missed_why.get(why, 0) + 1

    def _account(self) -> None:
        if self.writer is None:
            return
        bound = loss_bound_lines(self.s.line_bytes, READ_SIZE, CHUNK_BYTES)
        self.report.lines = account_losses(
            self.rig.follower, self.writer, self.report.pump_deaths, bound
        )


def run_soak(settings: SoakSettings) -> SoakReport:
    """Runs the soak; see the module doc."""
    return Soak(settings).run()
