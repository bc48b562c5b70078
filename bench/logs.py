#!/usr/bin/env python3
"""Raw log throughput end to end: a child process writes -> entries stored in the root.

For 100-byte lines and for 64 KiB lines, each written in 64 KiB chunks, next to
the same child writing the same bytes to /dev/null. Reports MB/s, lines/s and
the root's CPU time per MB. The last line is one JSON object.

Usage: bench/logs [--mb N]
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from actors.logtree import LogTree, RawEntry  # noqa: E402
from actors.supervisor.core.events import RunnableSpec  # noqa: E402
from actors.supervisor.runtime.actor import Supervisor  # noqa: E402
from actors.supervisor.testing.kit import Probe, StateRecorder  # noqa: E402

TK = "actors.supervisor.testing.kit:"


def cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def one_run(total: int, line: int, devnull: bool) -> tuple[float, float, int]:
    """Seconds from the child's first byte to DONE in the root, root CPU s, lines stored."""
    d = tempfile.mkdtemp(prefix="nc-bench-", dir="/tmp")
    probe = Probe(d)
    rec = StateRecorder()
    tree = LogTree()
    child = [
        TK + "blast",
        {
            "events": probe.events_path,
            "total": total,
            "line": line,
            "chunk": 65536,
            "devnull": devnull,
        },
    ]
    root = RunnableSpec(
        target=TK + "group", args={"events": probe.events_path, "children": {"w": child}}
    )
    sup = Supervisor(root, log_tree=tree, observers=[rec])
    stored = 0
    try:
        sup.start()
        t0, _ = probe.wait_for("root.w", "started", timeout=30)
        c0 = cpu()
        t1 = rec.wait_for("root.w", "DONE", timeout=300)
        c1 = cpu()
        if not devnull:
            # Every line was stored: the newest kept entry is the last line written.
            last = tree.read("root.w", backlog=1, leveled=False).backlog
            assert last and isinstance(last[0], RawEntry), "lines were not stored"
            assert len(last[0].data) == min(line - 1, 1024), "lines were not stored"
            stored = total // line
    finally:
        sup.stop(timeout=30)
        probe.close()
        shutil.rmtree(d, ignore_errors=True)
    return t1 - t0, c1 - c0, stored


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--mb", type=int, default=256, help="MiB written per case")
    args = ap.parse_args()
    total = args.mb * 2**20
    rows = {}
    print(
        f"{'case':<26} {'ours MB/s':>10} {'lines/s':>12} {'root CPU s/MB':>14}   "
        f"{'/dev/null MB/s':>14}"
    )
    for name, line in (("100-byte lines", 100), ("64 KiB lines", 65536)):
        secs, cpu_s, _ = one_run(total, line, devnull=False)
        ref_secs, _, _ = one_run(total, line, devnull=True)
        mb = total / 2**20
        rows[name] = (mb / secs, (total // line) / secs, cpu_s / mb, mb / ref_secs)
        r = rows[name]
        print(f"{name:<26} {r[0]:>10.1f} {r[1]:>12,.0f} {r[2]:>14.5f}   {r[3]:>14.1f}")
    short, long = rows["100-byte lines"], rows["64 KiB lines"]
    print(
        json.dumps(
            {
                "raw_mb_s": round(long[0], 1),
                "lines_per_s": round(short[1]),
                "short_lines_mb_s": round(short[0], 1),
                "devnull_mb_s": round(long[3], 1),
                "devnull_short_mb_s": round(short[3], 1),
                "root_cpu_s_per_mb_short": round(short[2], 5),
                "root_cpu_s_per_mb_long": round(long[2], 5),
                "mb": args.mb,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
