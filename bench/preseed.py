"""Benchmark: our importer against `ctr images import` (--no-unpack unless said), same containerd.

Cases (random, incompressible layer data generated at run time in a temporary directory):

    small_5        a 5 MB single-layer OCI archive
    single_300     a 300 MB single-layer OCI archive
    layers40_300   a 300 MB OCI archive in 40 layers
    docker_300     a 300 MB `docker save` archive (5 layers)
    reimport_300   single_300 imported again, images NOT deleted in between
    unpack_300     single_300 imported and unpacked into overlayfs (`import_archive`
                   with unpack) against `ctr images import` (which unpacks by default)
    many_20x15     20 OCI archives of 15 MB each: the preseed walk with the default
                   parallelism (CPUs, at most 4) against `ctr images import` of
                   each file one after another
    many_20x15_seq the same walk with one import at a time (to choose the default)
    first_start_300 what unpack buys: `ctr run --rm` of /bin/true (busybox) from a
                   300 MB image, right after our import with unpack ("ours") against
                   right after our import without it ("ctr" column: ctr run then
                   unpacks first, as CRI does for a container's first start)

For first imports both clients import into an empty namespace whose images are then
deleted with `ctr images rm --sync` (containerd's GC removes the blobs before the next
run: containerd shares blobs across namespaces, so a blob left over would be "imported"
for free). Rounds alternate which client goes first; the table shows the median of the
rounds. One private containerd (`tests.support.containerd_daemon`) serves every run: the
system's, or with `--containerd SUITE` (default `$NC_CONTAINERD`) Debian's containerd of
that suite (bookworm, trixie, sid), fetched into the project's cache if needed, with its
own `ctr`.

The last line of output is one JSON object: per case {"ours_s": …, "ctr_s": …}.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from actors.preseed import ContainerdClient, ImportOptions, import_archive, preseed_dir
from actors.preseed.service.runnable import default_parallel
from scripts.containerd_versions import SUITES, FetchError, fetch, put_first_on_path
from tests.support.containerd_daemon import ContainerdDaemon
from tests.support.images.blob_store import (
    BlobStore,
    layer_tar,
    named,
    random_file,
    write_docker_save,
    write_store_archive,
)

MB = 1_000_000


def _oci(work: Path, name: str, sizes: list[int]) -> Path:
    store = BlobStore(work)
    layers = []
    for i, size in enumerate(sizes):
        data = random_file(work / f"{name}-{i}.bin", size)
        layers.append(layer_tar(work / f"{name}-{i}.tar", {"data.bin": data}))
        data.unlink()
    archive = write_store_archive(
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
    archive = write_docker_save(work / f"{name}.tar", [([f"bench/{name}:1"], layers, "amd64")])
    for layer in layers:
        layer.unlink()
    return archive


def _runnable(work: Path, name: str, size: int) -> Path:
    """An image whose /bin/true is busybox, over a layer of `size` random bytes."""
    store = BlobStore(work)
    tool = work / f"{name}-tool.tar"
    with tarfile.open(tool, "w", format=tarfile.PAX_FORMAT) as tar:
        info = tar.gettarinfo(shutil.which("busybox") or "/bin/busybox", arcname="bin/true")
        info.mode, info.uid, info.gid, info.uname, info.gname = 0o755, 0, 0, "", ""
        with open(shutil.which("busybox") or "/bin/busybox", "rb") as f:
            tar.addfile(info, f)
    data = random_file(work / f"{name}.bin", size)
    bulk = layer_tar(work / f"{name}-bulk.tar", {"data.bin": data})
    data.unlink()
    manifest = store.image([tool, bulk])
    archive = write_store_archive(
        work / f"{name}.tar", store, [named(manifest, f"docker.io/bench/{name}:1", "1")]
    )
    tool.unlink()
    bulk.unlink()
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
        if path.is_dir():
            for file in sorted(path.iterdir()):
                self.daemon.ctr("images", "import", "--no-unpack", str(file), namespace=namespace)
        else:
            self.daemon.ctr("images", "import", "--no-unpack", str(path), namespace=namespace)
        return time.monotonic() - start

    def ctr_unpack(self, path: Path, namespace: str) -> float:
        start = time.monotonic()
        self.daemon.ctr("images", "import", str(path), namespace=namespace)
        return time.monotonic() - start

    def ours(self, path: Path, namespace: str) -> float:
        start = time.monotonic()
        import_archive(self.client, path, namespace=namespace)
        return time.monotonic() - start

    def ours_unpack(self, path: Path, namespace: str) -> float:
        start = time.monotonic()
        import_archive(self.client, path, namespace=namespace, options=ImportOptions(unpack=True))
        return time.monotonic() - start

    def first_start(self, path: Path, namespace: str, unpack: bool) -> float:
        """Import (with or without unpack), then time `ctr run --rm` of the image."""
        result = import_archive(
            self.client, path, namespace=namespace, options=ImportOptions(unpack=unpack)
        )
        image = result.images[0].name
        start = time.monotonic()
        self.daemon.ctr("run", "--rm", image, f"first-{namespace}", namespace=namespace)
        return time.monotonic() - start

    def walk(self, path: Path, namespace: str, parallel: int) -> float:
        """The preseed walk over a directory whose one namespace directory is `path`."""
        root = path.parent / f"root-{namespace}"
        (root / namespace).mkdir(parents=True, exist_ok=True)
        for file in path.iterdir():
            target = root / namespace / file.name
            if not target.exists():
                os.link(file, target)
        start = time.monotonic()
        report = preseed_dir(self.client, root, parallel=parallel)
        assert report.ok, report.failures
        return time.monotonic() - start

    def first_imports(
        self,
        path: Path,
        rounds: int,
        ours_run: Callable[[Path, str], float] | None = None,
        ctr_run: Callable[[Path, str], float] | None = None,
    ) -> tuple[list[float], list[float]]:
        ours: list[float] = []
        ctr: list[float] = []
        for i in range(rounds):
            order: list[tuple[Callable[[Path, str], float], list[float], str]] = [
                (ctr_run or self.ctr, ctr, "ctr"),
                (ours_run or self.ours, ours, "ours"),
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
    parser.add_argument(
        "--cases",
        default="all",
        help="comma-separated cases to run (default: all), e.g. unpack_300,many_20x15",
    )
    parser.add_argument(
        "--containerd",
        choices=["system", *SUITES],
        default=os.environ.get("NC_CONTAINERD") or "system",
        help="which containerd (and ctr) to run: the system's, or a Debian suite's "
        "(default: $NC_CONTAINERD, else system)",
    )
    args = parser.parse_args()
    wanted = set(args.cases.split(",")) if args.cases != "all" else None
    if args.containerd != "system":
        try:
            fetch(args.containerd)
            put_first_on_path(args.containerd, os.environ)
        except FetchError as e:
            parser.error(f"--containerd {args.containerd}: {e}")
    size = int(300 * MB * args.scale)
    with tempfile.TemporaryDirectory(prefix="nc-bench-", dir="/tmp") as tmp:
        work = Path(tmp)
        print("generating archives ...", file=sys.stderr)
        makers: dict[str, Callable[[], Path]] = {
            "small_5": lambda: _oci(work, "small", [int(5 * MB * args.scale)]),
            "single_300": lambda: _oci(work, "single", [size]),
            "layers40_300": lambda: _oci(work, "layers40", [size // 40] * 40),
            "docker_300": lambda: _docker(work, "docker", [size // 5] * 5),
        }
        needs_single = wanted is None or {"reimport_300", "unpack_300"} & wanted
        files = {
            k: make()
            for k, make in makers.items()
            if wanted is None or k in wanted or (k == "single_300" and needs_single)
        }
        many = None
        if wanted is None or {"many_20x15", "many_20x15_seq"} & wanted:
            many = work / "many"
            many.mkdir()
            for i in range(20):
                os.rename(
                    _oci(work, f"many{i:02}", [int(15 * MB * args.scale)]), many / f"{i:02}.tar"
                )
        runnable = None
        if wanted is None or "first_start_300" in wanted:
            runnable = _runnable(work, "runnable", size)
        daemon = ContainerdDaemon(work / "ctd")
        daemon.start()
        results: dict[str, dict[str, float]] = {}
        try:
            bench = Bench(daemon)
            version = bench.client.version()
            for key, path in files.items():
                if wanted is not None and key not in wanted:
                    continue
                ours, ctr = bench.first_imports(path, args.rounds)
                results[key] = {"ours_s": statistics.median(ours), "ctr_s": statistics.median(ctr)}
                print(f"{key}: ours {ours} ctr {ctr}", file=sys.stderr)
            if wanted is None or "reimport_300" in wanted:
                ours, ctr = bench.reimports(files["single_300"], args.rounds)
                results["reimport_300"] = {
                    "ours_s": statistics.median(ours),
                    "ctr_s": statistics.median(ctr),
                }
                print(f"reimport_300: ours {ours} ctr {ctr}", file=sys.stderr)
            if wanted is None or "unpack_300" in wanted:
                ours, ctr = bench.first_imports(
                    files["single_300"], args.rounds, bench.ours_unpack, bench.ctr_unpack
                )
                results["unpack_300"] = {
                    "ours_s": statistics.median(ours),
                    "ctr_s": statistics.median(ctr),
                }
                print(f"unpack_300: ours {ours} ctr {ctr}", file=sys.stderr)
            if many is not None:
                for key, parallel in (("many_20x15", default_parallel()), ("many_20x15_seq", 1)):
                    if wanted is not None and key not in wanted:
                        continue
                    ours, ctr = bench.first_imports(
                        many, args.rounds, lambda p, ns, n=parallel: bench.walk(p, ns, n)
                    )
                    results[key] = {
                        "ours_s": statistics.median(ours),
                        "ctr_s": statistics.median(ctr),
                    }
                    print(f"{key} (parallel {parallel}): ours {ours} ctr {ctr}", file=sys.stderr)
            if runnable is not None:
                ours, ctr = bench.first_imports(
                    runnable,
                    args.rounds,
                    lambda p, ns: bench.first_start(p, ns, True),
                    lambda p, ns: bench.first_start(p, ns, False),
                )
                results["first_start_300"] = {
                    "ours_s": statistics.median(ours),
                    "ctr_s": statistics.median(ctr),
                }
                print(f"first_start_300: ours {ours} ctr {ctr}", file=sys.stderr)
            bench.client.close()
        finally:
            daemon.stop()
        sizes = {k: os.path.getsize(p) for k, p in files.items()}
        if runnable is not None:
            sizes["first_start_300"] = runnable.stat().st_size
        if many is not None:
            sizes["many_20x15"] = sum(f.stat().st_size for f in many.iterdir())
            sizes["many_20x15_seq"] = sizes["many_20x15"]
    if "single_300" in sizes:
        sizes["reimport_300"] = sizes["unpack_300"] = sizes["single_300"]
    print(
        f"containerd {version} ({args.containerd}; ctr imports through "
        f"{'the Transfer API' if daemon.version.major >= 2 else 'client.Import'}), "
        f"{os.cpu_count()} CPUs, median of {args.rounds} rounds; "
        f"reimport_300: images not deleted before the re-import; many_20x15: "
        f"{default_parallel()} imports at once"
    )
    print(
        f"{'case':<17}{'MB':>8}{'ours s':>9}{'ctr s':>9}{'ours/ctr':>10}{'ours MB/s':>11}"
        f"{'ctr MB/s':>10}"
    )
    for key, r in results.items():
        mb = sizes[key] / MB
        print(
            f"{key:<17}{mb:>8.1f}{r['ours_s']:>9.3f}{r['ctr_s']:>9.3f}"
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
