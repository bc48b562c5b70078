"""Chaos soak of node-containerd: random kills, stops and faults of its world, then the invariants.

Starts `bin/node-containerd run` with images to preseed and a writer putting numbered
lines into the runsc FIFO, SIGKILLs / SIGSTOPs+SIGCONTs the actor processes and the
containerd binary at random (seeded) moments, measures every recovery against the drawn
backoff plus a stated bound, and at the end checks images, memory, lost lines and that
nothing is left after SIGTERM. See bench/soaklib.py for the whole contract. Runs as
`bench/soak` (this module with the project's virtualenv, `python -m bench.soak`).

Usage:
    bench/soak --short            about two minutes (what CI runs, via tests/soak)
    bench/soak --long             500 faults, about 17 minutes on 2 cores
    bench/soak --faults N --budget S --seed K --keep

Exit status 0 when every invariant held. The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

from bench.soaklib import LONG, SHORT, render_table, run_soak, summary


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--short", action="store_true", help="about two minutes (default)")
    mode.add_argument("--long", action="store_true", help="500 faults, about 17 minutes")
    ap.add_argument("--faults", type=int, help="stop after N faults")
    ap.add_argument("--budget", type=float, help="stop injecting after S seconds")
    ap.add_argument("--seed", type=int, default=1, help="seed of the driver (default 1)")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    ap.add_argument("--workdir", type=Path, help="work here instead of a fresh /tmp dir")
    ap.add_argument(
        "--no-preseed",
        action="store_true",
        help="development only: run without preseeding (images are not checked)",
    )
    args = ap.parse_args()
    settings = LONG if args.long else SHORT
    changes: dict[str, object] = {"seed": args.seed, "keep": args.keep}
    if args.faults is not None:
        changes["faults"] = args.faults
    if args.budget is not None:
        changes["budget_s"] = args.budget
    if args.workdir is not None:
        changes["workdir"] = args.workdir
    if args.no_preseed:
        changes["preseed"] = False
    settings = dataclasses.replace(settings, **changes)  # type: ignore[arg-type]
    report = run_soak(settings)
    print(render_table(report))
    print(json.dumps(summary(report)))
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
