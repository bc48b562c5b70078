#!/usr/bin/env python3
"""Log throughput end to end: a child process writes -> entries stored in the root.

Raw: 100-byte lines and 64 KiB lines, each written in 64 KiB chunks, next to the
same child writing the same bytes to /dev/null.

Parsed: real captured lines (runsc's glog debug output of `runsc do` and of two pods,
one run beside the other; containerd 1.6's and 2.1's logrus text; tests/logtree/data),
written in 64 KiB chunks, once with the node's lines sent raw (parse format "raw") and
once parsed in the child ("glog" / "logrus") and stored as leveled entries. runsc's
glog lines are also attributed to their sandboxes, as the runsc pump does
(`actors.logtree.parse.runsc`).

Then the root's own work per MB (decode and store the frames a child sends, in one
process, best of 5) for the captured lines raw and parsed: the end-to-end root CPU
also counts a wake-up per frame, and parsed frames arrive at the child's slower pace.

Reports MB/s, lines/s and the root's CPU time per MB; the parsed cases and their
raw twins run --repeat times, alternating, and show their best run. The last line
is one JSON object.

Usage: bench/logs [--mb N] [--repeat N]
"""

from __future__ import annotations

import argparse
import gzip
import json
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import cast

import msgpack

from actors.logtree import LogTree, ParsedEntry, ParseFormat, RawEntry
from actors.logtree.parse import StreamParser
from actors.logtree.parse.runsc import RunscAttribution
from actors.supervisor.core.events import RunnableSpec
from actors.supervisor.runtime.actor import Supervisor
from actors.supervisor.runtime.switching import use_fast_switching
from actors.supervisor.testing.harness import KIT
from actors.supervisor.testing.kit import Probe, StateRecorder
from bench.logs_replay import workload
from messages.framing import encode_frame
from messages.wire import CHILD_TO_ROOT, ParsedBatch, RawChunk, decode

DATA = Path(__file__).resolve().parents[1] / "tests" / "logtree" / "data"
#: The captures replayed, and the format each is parsed in.
SAMPLES = [
    (DATA / "runsc-do-debug.log", ParseFormat.GLOG),
    (DATA / "runsc-pod-beside-pod.log.gz", ParseFormat.GLOG),
    (DATA / "containerd-1.6.log", ParseFormat.LOGRUS),
    (DATA / "containerd-2.1.log", ParseFormat.LOGRUS),
]


def _name(sample: Path) -> str:
    return sample.name.removesuffix(".gz").removesuffix(".log")


def _unpacked(sample: Path, into: Path) -> Path:
    """`sample` as plain lines: a `.gz` one decompressed into `into`."""
    if sample.suffix != ".gz":
        return sample
    plain = into / sample.name.removesuffix(".gz")
    plain.write_bytes(gzip.decompress(sample.read_bytes()))
    return plain


CHUNK = 65536


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
        "bench.workloads:blast",
        {
            "events": probe.events_path,
            "total": total,
            "line": line,
            "chunk": 65536,
            "devnull": devnull,
        },
    ]
    root = RunnableSpec(
        target=KIT + "group", args={"events": probe.events_path, "children": {"w": child}}
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


def one_replay(total: int, sample: Path, fmt: ParseFormat) -> tuple[float, float, int, int]:
    """Seconds, root CPU s, bytes and lines of replaying `sample` with `fmt` parsing."""
    _, round_bytes, round_lines = workload(str(sample), CHUNK)
    rounds = max(1, total // round_bytes)
    d = tempfile.mkdtemp(prefix="nc-bench-", dir="/tmp")
    probe = Probe(d)
    rec = StateRecorder()
    tree = LogTree()
    tree.set_parse("root.w", fmt)
    child = [
        "bench.logs_replay:replay",
        {
            "events": probe.events_path,
            "sample": str(sample),
            "rounds": rounds,
            "chunk": CHUNK,
            "attribute": fmt is ParseFormat.GLOG,
        },
    ]
    root = RunnableSpec(
        target=KIT + "group", args={"events": probe.events_path, "children": {"w": child}}
    )
    sup = Supervisor(root, log_tree=tree, observers=[rec])
    try:
        sup.start()
        t0, _ = probe.wait_for("root.w", "started", timeout=30)
        c0 = cpu()
        t1 = rec.wait_for("root.w", "DONE", timeout=600)
        c1 = cpu()
        last = tree.read("root.w", backlog=1).backlog
        want = ParsedEntry if fmt is not ParseFormat.RAW else RawEntry
        assert last and isinstance(last[0], want), f"{fmt} lines were not stored as {want}"
    finally:
        sup.stop(timeout=30)
        probe.close()
        shutil.rmtree(d, ignore_errors=True)
    return t1 - t0, c1 - c0, rounds * round_bytes, rounds * round_lines


def root_work(sample: Path, fmt: ParseFormat, mb: int) -> float:
    """The root's CPU seconds per MB to decode and store `sample`'s frames, in one process.

    The frames are what the child sends (raw chunks, or parsed batches), made
    beforehand; the best of 5 runs, so that neither the child nor the socket nor a
    loaded machine is counted.
    """
    blocks, size, _ = workload(str(sample), CHUNK)
    frames: list[bytes] = []
    if fmt is ParseFormat.RAW:
        frames = [encode_frame(RawChunk(data=b).to_wire()) for b in blocks]
    else:
        attribution = RunscAttribution() if fmt is ParseFormat.GLOG else None
        parser = StreamParser(
            fmt,
            attribute=attribution.annotate if attribution else None,
            hold=attribution.hold_back if attribution else None,
        )
        for block in blocks:
            parser.feed(block, time.time())
            batch = parser.take()
            if batch is not None:
                frames.append(encode_frame(ParsedBatch(**batch.columns()).to_wire()))
    rounds = max(1, mb * 2**20 // size)
    best = float("inf")
    for _ in range(5):
        tree = LogTree()
        started = time.process_time()
        for _ in range(rounds):
            for frame in frames:
                msg = decode(msgpack.unpackb(frame[4:], raw=False), CHILD_TO_ROOT)
                if isinstance(msg, RawChunk):
                    tree.write_raw("root.w", msg.data)
                else:
                    tree.write_parsed("root.w", cast(ParsedBatch, msg))
        best = min(best, time.process_time() - started)
    return best / (rounds * size / 2**20)


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--mb", type=int, default=256, help="MiB written per case")
    ap.add_argument(
        "--repeat", type=int, default=3, help="runs of each parsed/raw case; the best is shown"
    )
    args = ap.parse_args()
    use_fast_switching()  # as the agent's `run` does
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
    parsed: dict[str, tuple[float, float, float]] = {}
    plain = Path(tempfile.mkdtemp(prefix="nc-bench-", dir="/tmp"))
    samples = [(_unpacked(sample, plain), parse) for sample, parse in SAMPLES]
    for sample, parse in samples:
        runs: dict[str, list[tuple[float, float, float]]] = {}
        for _ in range(args.repeat):  # raw and parsed alternate, so load hits both alike
            for fmt in (ParseFormat.RAW, parse):
                secs, cpu_s, size, lines = one_replay(total, sample, fmt)
                mb = size / 2**20
                runs.setdefault(f"{_name(sample)} {fmt.value}", []).append(
                    (mb / secs, lines / secs, cpu_s / mb)
                )
        for case, results in runs.items():
            # Best of the runs: the most MB/s and lines/s, the least root CPU per MB.
            r = parsed[case] = (
                max(x[0] for x in results),
                max(x[1] for x in results),
                min(x[2] for x in results),
            )
            print(f"{case:<26} {r[0]:>10.1f} {r[1]:>12,.0f} {r[2]:>14.5f}")
    print()
    print(f"{'root work, one process':<26} {'CPU s/MB':>10}")
    work: dict[str, float] = {}
    for sample, parse in samples:
        for fmt in (ParseFormat.RAW, parse):
            case = f"{_name(sample)} {fmt.value}"
            work[case] = root_work(sample, fmt, min(args.mb, 64))
            print(f"{case:<26} {work[case]:>10.5f}")
    shutil.rmtree(plain, ignore_errors=True)
    glog, glog_raw = parsed["runsc-do-debug glog"], parsed["runsc-do-debug raw"]
    pods = parsed["runsc-pod-beside-pod glog"]
    logrus, logrus_raw = parsed["containerd-1.6 logrus"], parsed["containerd-1.6 raw"]
    logrus_2x = parsed["containerd-2.1 logrus"]
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
                "glog_lines_per_s": round(glog[1]),
                "glog_mb_s": round(glog[0], 1),
                "glog_pods_lines_per_s": round(pods[1]),
                "glog_pods_mb_s": round(pods[0], 1),
                "logrus_lines_per_s": round(logrus[1]),
                "logrus_mb_s": round(logrus[0], 1),
                "logrus_2x_lines_per_s": round(logrus_2x[1]),
                "logrus_2x_mb_s": round(logrus_2x[0], 1),
                "glog_root_cpu_s_per_mb": round(glog[2], 5),
                "glog_raw_root_cpu_s_per_mb": round(glog_raw[2], 5),
                "logrus_root_cpu_s_per_mb": round(logrus[2], 5),
                "logrus_raw_root_cpu_s_per_mb": round(logrus_raw[2], 5),
                "root_work_s_per_mb": {case: round(value, 5) for case, value in work.items()},
                "mb": args.mb,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
