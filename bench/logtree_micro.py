"""Micro-benchmark of the log tree's raw write path, in-process.

Feeds `LogTree.write_raw` from one thread with 64 KiB chunks and prints lines/s and
MB/s stored:

* `short`: 100-byte lines (99 bytes + `\\n`), 655 per chunk;
* `short+stream`: the same, with one stream reader subscribed and drained in between;
* `short+sink`: the same, with a StderrSink writing to /dev/null in its own thread
  (it competes for the GIL; its `sink %` column is the share of lines it wrote, the
  rest it missed, as designed);
* `crlf`: 100-byte CRLF lines;
* `long`: 64 KiB chunks of 8 KiB lines (each cut to 1024 bytes);
* `one-line`: a single endless line in 64 KiB chunks (no newline at all);
* `leveled`: `write_leveled` of one-line entries, for scale.

Usage: `.venv/bin/python -m bench.logtree_micro [seconds per case]` from the checkout.
The last line printed is a JSON object with the numbers.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable

from actors.logtree import LeveledEntry, LogTree, Severity, StderrSink

CHUNK = 64 * 1024

#: Lines/s, MB/s, share of lines a sink wrote (None without sink).
Result = tuple[float, float, float | None]


def _chunk_of(line: bytes) -> bytes:
    return line * (CHUNK // len(line))


def _run_raw(chunk: bytes, seconds: float, *, stream: bool = False, sink: bool = False) -> Result:
    tree = LogTree()
    reader = tree.read("root", subtree=True, stream=True, buffer=1 << 30) if stream else None
    with open(os.devnull, "w") as devnull:
        stderr_sink = StderrSink(tree, devnull) if sink else None
        lines_per_chunk = chunk.count(b"\n")
        chunks = 0
        start = time.perf_counter()
        deadline = start + seconds
        while True:
            for _ in range(64):
                tree.write_raw("root.bench", chunk)
            chunks += 64
            if reader is not None:
                reader.get_many(1 << 30, timeout=0)
            if time.perf_counter() >= deadline:
                break
        elapsed = time.perf_counter() - start
        if reader is not None:
            reader.close()
        share = None
        if stderr_sink is not None:
            stderr_sink.stop()
            total = stderr_sink.missed + stderr_sink.written
            share = stderr_sink.written / total if total else 0.0
    lines = chunks * lines_per_chunk
    return lines / elapsed, chunks * len(chunk) / elapsed / 1e6, share


def _run_leveled(seconds: float) -> Result:
    tree = LogTree()
    entry = LeveledEntry(
        dn="root.bench",
        severity=Severity.INFO,
        lines=("x" * 80,),
        timestamp=0.0,
        file="bench.py",
        line=1,
    )
    count = 0
    start = time.perf_counter()
    deadline = start + seconds
    while time.perf_counter() < deadline:
        for _ in range(1000):
            tree.write_leveled(entry)
        count += 1000
    elapsed = time.perf_counter() - start
    return count / elapsed, count * 80 / elapsed / 1e6, None


def main() -> None:
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 1.0
    short = _chunk_of(b"x" * 99 + b"\n")
    cases: dict[str, Callable[[], Result]] = {
        "short": lambda: _run_raw(short, seconds),
        "short+stream": lambda: _run_raw(short, seconds, stream=True),
        "short+sink": lambda: _run_raw(short, seconds, sink=True),
        "crlf": lambda: _run_raw(_chunk_of(b"x" * 98 + b"\r\n"), seconds),
        "long": lambda: _run_raw(_chunk_of(b"y" * 8191 + b"\n"), seconds),
        "one-line": lambda: _run_raw(b"z" * CHUNK, seconds),
        "leveled": lambda: _run_leveled(seconds),
    }
    results = {}
    print(f"{'case':<14} {'lines/s':>12} {'MB/s':>9} {'sink %':>7}")
    for name, case in cases.items():
        lines_s, mb_s, share = case()
        results[name] = {"lines_per_s": round(lines_s), "mb_s": round(mb_s, 1)}
        shown = "" if share is None else f"{share * 100:.1f}"
        if share is not None:
            results[name]["sink_share"] = round(share, 3)
        print(f"{name:<14} {lines_s:>12,.0f} {mb_s:>9.1f} {shown:>7}")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
