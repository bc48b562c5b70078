"""The soak's fault driver: which fault comes next, and injecting it.

`FaultDriver.choose` draws a fault kind from `KINDS` with the seeded random
source; `FaultDriver.inject` carries it out through a pidfd (a recycled pid is
never hit) and returns the `Fault` with its outcome: a kill, a stop (short,
which the tree must not notice, or long, which the heartbeat must catch), or
a graceful restart through the CLI. A SIGKILL of the pump is booked as a
`DeathWindow`, against which lost lines are charged later. The faults of the
environment (a frozen root, a read-only state dir, a second agent, an
interrupted check) are `soak_hostile`'s; a kind this run cannot inject (no
bind mount without root, no pause image without umoci) is left out.
"""

from __future__ import annotations

import os
import random
import select
import signal
import time

from bench.soak_agent import NodeRow, containerd_pid
from bench.soak_hostile import HostileFaults
from bench.soak_lines import DeathWindow
from bench.soak_model import (
    DN,
    HEARTBEAT_S,
    HOSTILE_ACTIONS,
    KINDS,
    MISSED_HEARTBEATS,
    Fault,
    SoakReport,
    SoakSettings,
)
from bench.soak_rig import SoakRig

__all__ = ["FaultDriver"]


class FaultDriver:
    """Chooses and injects faults into the agent of `rig`; see the module doc."""

    def __init__(
        self,
        rig: SoakRig,
        settings: SoakSettings,
        rng: random.Random,
        report: SoakReport,
        hostile: HostileFaults,
    ) -> None:
        self.rig = rig
        self.s = settings
        self.rng = rng
        self.report = report
        self.hostile = hostile
        #: Fault kinds still to be drawn once each before drawing by weight.
        self._deck: list[tuple[str, str]] | None = None
        #: Kinds put back into the deck because they missed, and how often.
        self._again: dict[tuple[str, str], int] = {}

    def missed(self, kind: str) -> None:
        """A fault of `kind` ("action target") missed: draw it again (at most 3 times)."""
        action, target = kind.split(" ", 1)
        key = (action, target)
        if self._deck is not None and self._again.get(key, 0) < 3:
            self._again[key] = self._again.get(key, 0) + 1
            self._deck.insert(0, key)

    @property
    def deck_left(self) -> bool:
        """Whether some kind has not been drawn yet (the soak goes on until each was)."""
        return self._deck is None or bool(self._deck)

    def choose(self, kills_only: bool = False) -> tuple[str, str]:
        """The next (action, target): each kind once, then by weight; kills only when chaining."""
        kinds = [
            k
            for k in KINDS
            if (self.s.preseed or k[1] != "preseed") and self.hostile.available(k[0])
        ]
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
        row = self.rig.row(self.rig.rows(), DN["preseed"])
        old = row.pid if row is not None else None
        tarball = self.rig.make_image(self.s.fault_image_bytes).name
        asked = time.time()
        r = self.rig.cli("restart", DN["preseed"])
        if r.returncode != 0:
            self.report.violations.append(f"restart {DN['preseed']} failed: {r.stderr.strip()}")
            return None, tarball
        row = self.rig.wait_pid(DN["preseed"], old, 10.0)
        if row is not None and not self.rig.follower.wait_watched("preseeding from", asked, 10.0):
            return None, tarball
        return row, tarball

    def inject(self, n: int, action: str, target: str) -> Fault:
        """Injects fault number `n`; returns it with its outcome."""
        fault = Fault(n=n, kind=f"{action} {target}", dn=DN[target])
        if action in HOSTILE_ACTIONS:
            return self.hostile.inject(fault, action)
        rows = self.rig.rows()
        if action == "restart":
            old = self.rig.row(rows, fault.dn)
            fault.old_pid = old.pid if old is not None else None
            fault.wall_start = time.time()
            r = self.rig.cli("restart", fault.dn)
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
            row = self.rig.row(rows, fault.dn)
        pid = row.pid if row is not None else None
        fault.old_pid = pid
        if target == "containerd" and pid is not None:
            pid = containerd_pid(pid)
            if pid is not None:
                self.rig.procs.remember(pid, "containerd")
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
