#!/usr/bin/env python3
"""CLI benchmark: the operator's commands against a running agent, next to the floors.

Starts the agent (`node-containerd run`, default profile, a fresh state directory),
waits until its tree is up, then times, each `--rounds` times (medians):

  * `status`, `logs -n 20 root.containerd` and `restart root.containerd.runsc`, the
    program an operator runs (`bin/node-containerd`), against a bare interpreter's
    start (`python -c pass`, the same interpreter): target ≤ 2×;
  * bytecode is cached (outside the checkout) as an installed program's is;
  * `import` of a small tarball (one 1 MB layer, OCI layout, no unpack) into the
    agent's containerd (no `--address`: the running agent imports it), against
    `ctr images import --no-unpack` of the same file: target ≤ 2×. Each import
    starts from a namespace without the image.

Usage: bench/cli [--rounds N]. The last line is one JSON object:
`{"status_ms", "logs_ms", "restart_ms", "python_start_ms", "import_small_s",
"ctr_import_small_s", ...}`.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.support.agent import AgentUnderTest
from tests.support.images.blob_store import (
    BlobStore,
    layer_tar,
    named,
    random_file,
    write_store_archive,
)
from tests.support.project import CLI, python_env


def _timed(argv: list[str], env: dict[str, str], cwd: Path) -> float:
    """Seconds `argv` took; it must exit 0."""
    start = time.monotonic()
    subprocess.run(argv, env=env, cwd=cwd, check=True, stdout=subprocess.DEVNULL)
    return time.monotonic() - start


def _small_tarball(work: Path) -> Path:
    store = BlobStore(work)
    data = random_file(work / "small.bin", 1_000_000)
    layer = layer_tar(work / "small-layer.tar", {"data.bin": data})
    data.unlink()
    manifest = store.image([layer])
    archive = write_store_archive(
        work / "small.tar", store, [named(manifest, "docker.io/bench/small:1", "1")]
    )
    layer.unlink()
    return archive


def _clear(address: str, namespace: str) -> None:
    ctr = ["ctr", "-a", address, "-n", namespace]
    names = subprocess.run([*ctr, "images", "ls", "-q"], capture_output=True, text=True).stdout
    if names.split():
        rm = [*ctr, "images", "rm", "--sync", *names.split()]
        subprocess.run(rm, check=True, stdout=subprocess.DEVNULL)


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--rounds", type=int, default=15)
    args = ap.parse_args()
    base = Path(tempfile.mkdtemp(prefix="nc-bcli-", dir="/tmp"))
    agent = AgentUnderTest(base)
    agent.env = python_env(agent.env)
    # An installed program has its bytecode compiled (pip does it at install), and the
    # bare interpreter's standard library has its own: let the checkout's be cached
    # too, outside the checkout, or every run compiles our modules from source.
    agent.env.pop("PYTHONDONTWRITEBYTECODE", None)
    agent.env["PYTHONPYCACHEPREFIX"] = str(base / "pycache")
    env, cwd = agent.env, agent.cwd
    times: dict[str, list[float]] = {k: [] for k in ("python", "status", "logs", "restart")}
    imports: dict[str, list[float]] = {"ours": [], "ctr": []}
    try:
        agent.start()
        agent.wait_ready()
        address = str(agent.state / "containerd" / "containerd.sock")
        tarball = _small_tarball(base)
        subprocess.run([*CLI, "status"], env=env, cwd=cwd, check=True, stdout=subprocess.DEVNULL)
        for _ in range(args.rounds):
            times["python"].append(_timed([sys.executable, "-c", "pass"], env, cwd))
            times["status"].append(_timed([*CLI, "status"], env, cwd))
            times["logs"].append(_timed([*CLI, "logs", "-n", "20", "root.containerd"], env, cwd))
            times["restart"].append(_timed([*CLI, "restart", "root.containerd.runsc"], env, cwd))
            for who, namespace in (("ours", "bench_ours"), ("ctr", "bench_ctr")):
                _clear(address, namespace)
                if who == "ours":
                    argv = [*CLI, "import", "--namespace", namespace]
                else:
                    argv = ["ctr", "-a", address, "-n", namespace, "images", "import"]
                    argv.append("--no-unpack")
                imports[who].append(_timed([*argv, str(tarball)], env, cwd))
    finally:
        agent.terminate()
        agent.cleanup()
        shutil.rmtree(base, ignore_errors=True)

    def ms(key: str) -> float:
        return statistics.median(times[key]) * 1000

    py = ms("python")
    print(f"{'command':<34} {'ours p50':>10}   {'reference':<34} {'ref p50':>10}   target")
    for key, what in (("status", "status"), ("logs", "logs -n 20"), ("restart", "restart")):
        print(f"{what:<34} {ms(key):>8.1f}ms   {'python -c pass':<34} {py:>8.1f}ms   ≤ 2×")
    ours_s, ctr_s = statistics.median(imports["ours"]), statistics.median(imports["ctr"])
    print(
        f"{'import small.tar (1 MB)':<34} {ours_s:>9.3f}s   "
        f"{'ctr images import --no-unpack':<34} {ctr_s:>9.3f}s   ≤ 2×"
    )
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(
        json.dumps(
            {
                "status_ms": round(ms("status"), 1),
                "logs_ms": round(ms("logs"), 1),
                "restart_ms": round(ms("restart"), 1),
                "python_start_ms": round(py, 1),
                "import_small_s": round(ours_s, 4),
                "ctr_import_small_s": round(ctr_s, 4),
                "rounds": args.rounds,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
