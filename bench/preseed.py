"""Benchmark: our importer against `ctr images import --no-unpack`, same containerd, same files.

Cases (random, incompressible layer data generated at run time in a temporary directory):

    small_5        a 5 MB single-layer OCI archive
    single_300     a 300 MB single-layer OCI archive
    layers40_300   a 300 MB OCI archive in 40 layers
    docker_300     a 300 MB `docker save` archive (5 layers)
    reimport_300   single_300 imported again, images NOT deleted in between

For first imports both clients import into an empty namespace whose images are then
deleted with `ctr images rm --sync` (containerd's GC removes the blobs before the next
run: containerd shares blobs across namespaces, so a blob left over would be "imported"
for free). Rounds alternate which client goes first; the table shows the median of the
rounds. One private containerd (tests/containerd_daemon.py) serves every run.

The last line of output is one JSON object: per case {"ours_s": …, "ctr_s": …}.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[0:1] = [str(ROOT), str(ROOT / "tests")]  # not bench/: it holds a preseed.py

from containerd_daemon import ContainerdDaemon
from preseed.fixtures import (
    BlobStore,
    layer_tar,
    named,
    random_file,
    write_docker_archive,
    write_oci_archive,
)

from actors.preseed import ContainerdClient, import_archive

MB = 1_000_000


def _oci(work: Path, name: str, sizes: list[int]) -> Path:
    store = BlobStore(work)
    layers = []
    for i, size in enumerate(sizes):
        data = random_file(work / f"{name}-{i}.bin", size)
        layers.append(layer_tar(work / f"{name}-{i}.tar", {"data.bin": data}))
        data.unlink()
    archive = write_oci_archive(
        work / f"{name}.tar", store, [named(store.image(layers), f"docker.io/bench/{name}:1", "1")]
    )
    for layer in layers:
        layer.unlink()
    return archive


def _docker(work: Path, name: str, sizes: list[int]) -> Path:
    layers = []
    for i, size in enumerate(sizes):
        data = random_file(work / f"{name}-{i}.bin", size)
        layers.append(layer_tar(work / f"{name}-{i}.tar", {"data.bin": data}))
        data.unlink()
    archive = write_docker_archive(work / f"{name}.tar", [([f"bench/{name}:1"], layers, "amd64")])
    for layer in layers:
        layer.unlink()
    return archive


class Bench:
    def __init__(self, daemon: ContainerdDaemon) -> None:
        self.daemon = daemon
        self.client = ContainerdClient(daemon.address, timeout=120)

    def clear(self, namespace: str) -> None:
        names = self.daemon.ctr("images", "ls", "-q", namespace=namespace).split()
        if names:
            self.daemon.ctr("images", "rm", "--sync", *names, namespace=namespace)

    def ctr(self, path: Path, namespace: str) -> float:
        start = time.monotonic()
        self.daemon.ctr("images", "import", "--no-unpack", str(path), namespace=namespace)
        return time.monotonic() - start

    def ours(self, path: Path, namespace: str) -> float:
        start = time.monotonic()
        import_archive(self.client, path, namespace=namespace)
        return time.monotonic() - start

    def first_imports(self, path: Path, rounds: int) -> tuple[list[float], list[float]]:
        ours: list[float] = []
        ctr: list[float] = []
        for i in range(rounds):
            order: list[tuple[Callable[[Path, str], float], list[float], str]] = [
                (self.ctr, ctr, "ctr"),
                (self.ours, ours, "ours"),
            ]
            for run, times, namespace in order if i % 2 == 0 else order[::-1]:
                times.append(run(path, namespace))
                self.clear(namespace)
        return ours, ctr

    def reimports(self, path: Path, rounds: int) -> tuple[list[float], list[float]]:
        self.ctr(path, "ctr")
        self.ours(path, "ours")
        ours = [self.ours(path, "ours") for _ in range(rounds)]
        ctr = [self.ctr(path, "ctr") for _ in range(rounds)]
        self.clear("ctr")
        self.clear("ours")
        return ours, ctr


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=3, help="runs per case (median shown)")
    parser.add_argument(
        "--scale",
        type=float,
        default=1.0,
        help="multiply every size by this (e.g. 0.1 for a quick run)",
    )
    args = parser.parse_args()
    size = int(300 * MB * args.scale)
    with tempfile.TemporaryDirectory(prefix="nc-bench-", dir="/tmp") as tmp:
        work = Path(tmp)
        print("generating archives ...", file=sys.stderr)
        files = {
            "small_5": _oci(work, "small", [int(5 * MB * args.scale)]),
            "single_300": _oci(work, "single", [size]),
            "layers40_300": _oci(work, "layers40", [size // 40] * 40),
            "docker_300": _docker(work, "docker", [size // 5] * 5),
        }
        daemon = ContainerdDaemon(work / "ctd")
        daemon.start()
        results: dict[str, dict[str, float]] = {}
        try:
            bench = Bench(daemon)
            version = bench.client.version()
            for key, path in files.items():
                ours, ctr = bench.first_imports(path, args.rounds)
                results[key] = {"ours_s": statistics.median(ours), "ctr_s": statistics.median(ctr)}
                print(f"{key}: ours {ours} ctr {ctr}", file=sys.stderr)
            ours, ctr = bench.reimports(files["single_300"], args.rounds)
            results["reimport_300"] = {
                "ours_s": statistics.median(ours),
                "ctr_s": statistics.median(ctr),
            }
            print(f"reimport_300: ours {ours} ctr {ctr}", file=sys.stderr)
            bench.client.close()
        finally:
            daemon.stop()
        sizes = {k: os.path.getsize(p) for k, p in files.items()}
    sizes["reimport_300"] = sizes["single_300"]
    print(
        f"containerd {version}, {os.cpu_count()} CPUs, median of {args.rounds} rounds; "
        "reimport_300: images not deleted before the re-import"
    )
    print(
        f"{'case':<14}{'MB':>8}{'ours s':>9}{'ctr s':>9}{'ours/ctr':>10}{'ours MB/s':>11}"
        f"{'ctr MB/s':>10}"
    )
    for key, r in results.items():
        mb = sizes[key] / MB
        print(
            f"{key:<14}{mb:>8.1f}{r['ours_s']:>9.3f}{r['ctr_s']:>9.3f}"
            f"{r['ours_s'] / r['ctr_s']:>10.3f}{mb / r['ours_s']:>11.0f}{mb / r['ctr_s']:>10.0f}"
        )
    print(
        json.dumps(
            {
                k: {"ours_s": round(v["ours_s"], 3), "ctr_s": round(v["ctr_s"], 3)}
                for k, v in results.items()
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
