"""The soak's recovery check: after a fault (or a chain of them), is the tree whole again?

`RecoveryCheck.wait(chain, writer)` waits until every node is HEALTHY or DONE
and each node a fault took down runs in a new process, then checks that
containerd answers and the last numbered line reached the JSON log, and books
each fault's recovery time against its bound: the backoff the supervisor drew
meanwhile, plus `start_bound_s`, plus the time to the chain's last fault. A fault
of the environment that is not the tree's failure (a freeze of the root, a refused
second agent, an interrupted check) must also have restarted no node, and what
its own checks found (`Fault.problems`) makes it unrecovered.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from bench.soak_agent import NodeRow
from bench.soak_lines import LineWriter
from bench.soak_model import DN, Fault, SoakSettings
from bench.soak_rig import SoakRig

__all__ = ["RecoveryCheck"]


class RecoveryCheck:
    """Waits for recoveries of the agent of `rig` and judges them; see the module doc."""

    def __init__(self, rig: SoakRig, settings: SoakSettings) -> None:
        self.rig = rig
        self.s = settings

    def _recovered(self, faults: list[Fault]) -> Callable[[list[NodeRow]], bool]:
        def accept(rows: list[NodeRow]) -> bool:
            for f in faults:
                if not f.restarts_node:
                    continue
                row = self.rig.row(rows, f.dn)
                if row is None or (row.pid is not None and row.pid == f.old_pid):
                    return False
                if row.pid is None and row.state != "DONE":
                    return False
            return True

        return accept

    def wait(self, chain: list[Fault], writer: LineWriter) -> None:
        """Waits for the tree to recover from `chain` and checks each fault's bound."""
        timeout = self.s.start_bound_s + 2 * self.s.backoff_max_s * len(chain) + 30.0
        rows, at = self.rig.status.wait_settled(timeout, self._recovered(chain))
        wall_at = time.time() - (time.monotonic() - at)
        if rows is None:
            for f in chain:
                f.note = (f.note + "; " if f.note else "") + f"not recovered within {timeout:.0f} s"
            return
        for r in rows:
            if r.pid is not None:
                self.rig.procs.remember(r.pid, r.dn)
        self.rig.remember_containerd(rows)
        last_line = writer.next_seq - 1
        answers = self.rig.containerd_answers()
        flowing = self.rig.follower.wait_for(last_line, 10.0)
        self.rig.follower.poll()
        self._check_deaths(chain)
        last_end = chain[-1].end
        for f in chain:
            f.recovery_s = at - f.end
            backoff = self.rig.follower.backoff_between(f.wall_start - 0.05, wall_at + 0.05)
            f.bound_s = backoff + self.s.start_bound_s + (last_end - f.end)
            problems = list(f.problems)
            for dn, pid in sorted(f.same_pids.items()):
                now = self.rig.row(rows, dn)
                if now is None or now.pid != pid:
                    shown = "gone" if now is None else f"pid {now.pid}"
                    problems.append(f"{dn} restarted (pid {pid} → {shown}) though not at fault")
            if not answers:
                problems.append("containerd does not answer")
            if not flowing:
                problems.append(f"line {last_line} never reached the log")
            if f.recovery_s > f.bound_s:
                why = sorted(
                    {
                        f"{dn}: {msg}"
                        for t, dn, msg in self.rig.follower.fatals
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
                for t, dn, msg in self.rig.follower.fatals
            )
            if not died:
                f.outcome, f.note = "missed", "no death logged (it had exited by itself)"
            elif f.dn == DN["preseed"] and f.note.endswith(".tar"):
                done = any(
                    t < f.wall_start and f"/{f.note}'" in m and "imported" in m
                    for t, m in self.rig.follower.watched
                )
                f.note = f"after importing {f.note}" if done else f"while importing {f.note}"
