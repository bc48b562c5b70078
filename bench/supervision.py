#!/usr/bin/env python3
"""Supervision benchmark: death detection, restart latency, memory.

Side by side with the raw mechanisms on this machine:
  * detect: SIGKILL of a child runnable -> the core has its exit (state DEAD),
    next to SIGKILL of a bare `sleep` -> waitpid returns in the killing process;
  * restart: SIGKILL -> the node HEALTHY again with backoff 0, next to the
    start of a bare `python -c 'import pykka, msgpack'`;
  * RSS of the root process and of one idle runnable process.

Usage: bench/supervision [--rounds N]. The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

from actors.supervisor.core.events import RunnableSpec
from actors.supervisor.core.policy import PolicyRule, PolicySet
from actors.supervisor.runtime.actor import Supervisor
from actors.supervisor.runtime.switching import use_fast_switching
from actors.supervisor.testing.harness import KIT
from actors.supervisor.testing.kit import Probe, StateRecorder


def rss_mb(pid: int | str = "self") -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def raw_waitpid_ms(rounds: int) -> list[float]:
    out = []
    for _ in range(rounds):
        p = subprocess.Popen(["sleep", "60"])
        time.sleep(0.01)
        t0 = time.monotonic()
        os.kill(p.pid, signal.SIGKILL)
        os.waitpid(p.pid, 0)
        out.append((time.monotonic() - t0) * 1000)
        p.returncode = -9
    return out


_IDLE_INTERPRETER = (
    "import pykka, msgpack, logging, socket, threading, time\n"
    "threading.Thread(target=time.sleep, args=(100,), daemon=True).start()\n"
    "print('ready', flush=True)\n"
    "time.sleep(100)\n"
)


def raw_interpreter_kill_ms(rounds: int) -> list[float]:
    """SIGKILL of an idle interpreter with our imports and a thread -> waitpid returns."""
    out = []
    for _ in range(rounds):
        p = subprocess.Popen([sys.executable, "-c", _IDLE_INTERPRETER], stdout=subprocess.PIPE)
        assert p.stdout is not None
        p.stdout.readline()
        time.sleep(0.02)
        t0 = time.monotonic()
        os.kill(p.pid, signal.SIGKILL)
        os.waitpid(p.pid, 0)
        out.append((time.monotonic() - t0) * 1000)
        p.returncode = -9
        p.stdout.close()
    return out


def raw_python_start_ms(rounds: int) -> list[float]:
    out = []
    for _ in range(rounds):
        t0 = time.monotonic()
        subprocess.run([sys.executable, "-c", "import pykka, msgpack"], check=True)
        out.append((time.monotonic() - t0) * 1000)
    return out


def ours(rounds: int) -> tuple[list[float], list[float], float, float]:
    d = tempfile.mkdtemp(prefix="nc-bench-", dir="/tmp")
    probe = Probe(d)
    rec = StateRecorder()
    root = RunnableSpec(
        target=KIT + "group",
        args={
            "events": probe.events_path,
            "children": {"one": [KIT + "becomes_healthy", {"events": probe.events_path}]},
        },
    )
    policies = PolicySet(rules=[PolicyRule("*", {"backoff_initial": 0.0, "backoff_jitter": 0.0})])
    sup = Supervisor(root, policies=policies, observers=[rec])
    sup.start()
    detect, restart = [], []
    try:
        rec.wait_for("root.one", "HEALTHY", timeout=30)
        time.sleep(0.3)
        child_pid = {n.dn: n.pid for n in sup.snapshot()}["root.one"]
        assert child_pid is not None
        child_rss = rss_mb(child_pid)
        for i in range(1, rounds + 1):
            _, pid = probe.wait_for("root.one", "started", count=i, timeout=30)
            time.sleep(0.05)
            t0 = time.monotonic()
            os.kill(pid, signal.SIGKILL)
            dead = rec.wait_for("root.one", "DEAD", count=i, timeout=30)
            healthy = rec.wait_for("root.one", "HEALTHY", count=i + 1, timeout=30)
            detect.append((dead - t0) * 1000)
            restart.append((healthy - t0) * 1000)
        root_rss = rss_mb()
    finally:
        sup.stop(timeout=30)
        probe.close()
        shutil.rmtree(d, ignore_errors=True)
    return detect, restart, root_rss, child_rss


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--rounds", type=int, default=30)
    args = ap.parse_args()
    use_fast_switching()  # as the agent's `run` does
    detect, restart, root_rss, child_rss = ours(args.rounds)
    raw_wait = raw_waitpid_ms(args.rounds)
    raw_interp = raw_interpreter_kill_ms(args.rounds)
    raw_start = raw_python_start_ms(min(args.rounds, 15))

    def row(name: str, ours_v: list[float], ref_name: str, ref_v: list[float], target: str) -> None:
        print(
            f"{name:<28} {statistics.median(ours_v):>9.2f} {max(ours_v):>9.2f}   "
            f"{ref_name:<34} {statistics.median(ref_v):>9.2f}   {target}"
        )

    print(
        f"{'measure (ms)':<28} {'ours p50':>9} {'ours max':>9}   "
        f"{'reference':<34} {'ref p50':>9}   target"
    )
    row("kill -> detected (DEAD)", detect, "kill sleep -> waitpid returns", raw_wait, "< 2 ms")
    row("", detect, "kill idle python -> waitpid returns", raw_interp, "")
    row(
        "kill -> HEALTHY (backoff 0)",
        restart,
        "python -c 'import pykka, msgpack'",
        raw_start,
        "< 250 ms",
    )
    print(f"{'RSS root process (MB)':<28} {root_rss:>9.1f}")
    print(f"{'RSS idle runnable (MB)':<28} {child_rss:>9.1f}{'':<50}< 30 MB")
    print(
        json.dumps(
            {
                "detect_ms_p50": round(statistics.median(detect), 3),
                "detect_ms_max": round(max(detect), 3),
                "restart_ms_p50": round(statistics.median(restart), 3),
                "raw_waitpid_ms_p50": round(statistics.median(raw_wait), 3),
                "raw_interpreter_kill_ms_p50": round(statistics.median(raw_interp), 3),
                "raw_python_start_ms_p50": round(statistics.median(raw_start), 3),
                "rss_root_mb": round(root_rss, 1),
                "rss_child_mb": round(child_rss, 1),
                "rounds": args.rounds,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
