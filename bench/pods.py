"""Benchmark: pod start latency through CRI, runc vs runsc (gVisor), side by side.

The real agent (`bin/node-containerd run`) with every image preseeded and none
unpacked. Per handler and run (median of --runs, in ms):

    sandbox_ms            RunPodSandbox (host network) → it returned and the
                          sandbox is SANDBOX_READY
    first_container_ms    CreateContainer + StartContainer → CONTAINER_RUNNING, from an
                          image preseeded but never unpacked (each run has an image
                          with a layer of its own, so CRI unpacks it on this start)
    next_container_ms     the same, for a second container from the same image in
                          the same pod (already unpacked)

Then, on fresh state directories (median of --fresh-runs, in ms, under runc):

    first_pod_ms              `node-containerd run` started on an empty state
                              directory with nothing preseeded → a pod's sandbox
                              is ready and a container of the sandbox image runs:
                              includes building the node's own sandbox image from
                              catatonit and importing it
    preseeded_first_pod_ms    the same, with that image's tarball preseeded
                              instead (`[cri] sandbox_image` names it): what an
                              operator-supplied pause tarball costs

Then, healing (runc, median of --runs): a preseeded image is deleted with
`ctr images rm`, as another client would, and the agent imports it again from its
tarball (it hears of the deletion in containerd's event stream):

    reimported_ms         `ctr images rm` returned → CRI's ImageStatus finds the image
    heal_ms               `ctr images rm` returned → a container from the image is
                          CONTAINER_RUNNING in a pod started before (usable again)

Before the heal, such an image stayed deleted until the agent restarted.

The last line printed is one JSON object:
`{"runc": {"sandbox_ms": …, "first_container_ms": …, "next_container_ms": …}, "runsc": {…},
"fresh": {"first_pod_ms": …, "preseeded_first_pod_ms": …}, "heal_ms": …, "reimported_ms": …}`.
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

from actors.containerd.api.cri import CriError, PodRun
from actors.images.pause import write_pause_archive
from messages.cri.runtime.v1 import api_pb2 as cri
from tests.support.agent import AgentUnderTest
from tests.support.images.tools import busybox_image
from tests.support.pods import PAUSE_REF, agent_for_pods, pause_image

HANDLERS = ("runc", "runsc")
ROWS = (
    ("sandbox_ms", "RunPodSandbox → ready"),
    ("first_container_ms", "Create+Start → running, first (unpacks)"),
    ("next_container_ms", "Create+Start → running, next"),
)


def _ms(start: float) -> float:
    return (time.monotonic() - start) * 1000.0


def one_run(agent: AgentUnderTest, handler: str, image: str, n: int) -> dict[str, float]:
    pod = PodRun(client=agent.client, handler=handler, log_dir=agent.base / "logs" / f"{n}")
    try:
        start = time.monotonic()
        sandbox = pod.start_sandbox()
        assert agent.client.sandbox_ready(sandbox)
        sandbox_ms = _ms(start)
        times = []
        for name in ("first", "next"):
            start = time.monotonic()
            pod.start_container(image, ["/bin/sleep", "600"], name=name)
            pod.wait_state((cri.CONTAINER_RUNNING,), timeout=120)
            times.append(_ms(start))
    finally:
        pod.remove()
    return {"sandbox_ms": sandbox_ms, "first_container_ms": times[0], "next_container_ms": times[1]}


def first_pod(image: str, tarball: Path | None) -> float:
    """A fresh agent (nothing preseeded, or `tarball` as its sandbox image) → first pod running.

    The clock starts as `node-containerd run` is spawned; the image is polled for every
    10 ms through CRI, and the pod started as soon as it is there.
    """
    base = Path(tempfile.mkdtemp(prefix="nc-bench-fresh-", dir="/tmp"))
    os.chmod(base, 0o711)  # gVisor's sandbox user must search the state dir's ancestors
    agent = AgentUnderTest(base, config=base / "agent.toml")
    assert agent.config is not None
    config = f'state_dir = "{agent.state}"\n'
    if tarball is not None:
        agent.preseed(tarball)
        config += f'[cri]\nsandbox_image = "{image}"\n'
    agent.config.write_text(config)
    pod = PodRun(client=agent.client, handler="runc", log_dir=agent.base / "logs")
    try:
        start = time.monotonic()
        agent.start()
        deadline = start + 120
        while True:
            try:
                if agent.client.image_present(image):
                    break
            except CriError:
                pass
            assert time.monotonic() < deadline, agent.stderr()
            time.sleep(0.01)
        assert agent.client.sandbox_ready(pod.start_sandbox())
        pod.start_container(image, None)
        pod.wait_state((cri.CONTAINER_RUNNING,), timeout=60)
        elapsed = _ms(start)
        pod.remove()
    finally:
        agent.cleanup()
    return elapsed


def fresh(runs: int) -> dict[str, float]:
    """Medians of `first_pod` with the node's own sandbox image and with it preseeded."""
    catatonit = shutil.which("catatonit")
    assert catatonit is not None, "catatonit: run scripts/setup"
    work = Path(tempfile.mkdtemp(prefix="nc-bench-pause-", dir="/tmp"))
    try:
        tarball = work / "pause.tar"
        image = write_pause_archive(Path(catatonit), tarball).name
        built, preseeded = [], []
        for _ in range(runs):  # alternated, so that a busy moment of the machine hits both
            built.append(first_pod(image, None))
            preseeded.append(first_pod(image, tarball))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return {
        "first_pod_ms": round(statistics.median(built), 1),
        "preseeded_first_pod_ms": round(statistics.median(preseeded), 1),
    }


def heal_run(agent: AgentUnderTest, image: str, n: int) -> dict[str, float]:
    """Delete a preseeded image behind the agent's back; until it is back, and running."""
    sock = str(agent.state / "containerd" / "containerd.sock")
    pod = PodRun(client=agent.client, handler="runc", log_dir=agent.base / "logs" / f"heal{n}")
    try:
        pod.start_sandbox()
        subprocess.run(
            ["ctr", "-a", sock, "-n", "k8s.io", "images", "rm", image],
            check=True,
            capture_output=True,
            timeout=30,
        )
        start = time.monotonic()
        while not agent.client.image_present(image):
            if time.monotonic() - start > 30:
                raise AssertionError(f"{image} was not imported again within 30 s")
            time.sleep(0.002)
        reimported_ms = _ms(start)
        pod.start_container(image, ["/bin/sleep", "600"], name="healed")
        pod.wait_state((cri.CONTAINER_RUNNING,), timeout=120)
        heal_ms = _ms(start)
    finally:
        pod.remove()
    return {"reimported_ms": reimported_ms, "heal_ms": heal_ms}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10, help="runs per handler (default 10)")
    parser.add_argument(
        "--fresh-runs",
        type=int,
        default=5,
        help="fresh state directories per variant of the first pod (default 5)",
    )
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="nc-bench-img-", dir="/tmp"))
    agent = agent_for_pods(Path(tempfile.mkdtemp(prefix="nc-bench-pods-", dir="/tmp")))
    try:
        images = {
            (h, n): f"example.test/bench-{h}-{n}:1" for h in HANDLERS for n in range(args.runs)
        }
        tars = [pause_image(work)]
        tars += [
            busybox_image(work, ref, files={"/etc/bench-variant": ref.encode()})
            for ref in images.values()
        ]
        agent.preseed(*tars)
        agent.start()
        agent.wait_ready(timeout=300)
        # One pod per handler first, so the first measured run does not pay for
        # runsc's or the shim's binaries coming into the page cache.
        for handler in HANDLERS:
            one_run(agent, handler, PAUSE_REF, -1)
        results: dict[str, dict[str, list[float]]] = {h: {k: [] for k, _ in ROWS} for h in HANDLERS}
        for n in range(args.runs):
            for handler in HANDLERS:
                for key, value in one_run(agent, handler, images[(handler, n)], n).items():
                    results[handler][key].append(value)
        heals: dict[str, list[float]] = {"reimported_ms": [], "heal_ms": []}
        for n in range(args.runs):
            for key, value in heal_run(agent, images[("runc", n)], n).items():
                heals[key].append(value)
    finally:
        agent.cleanup()
        shutil.rmtree(work, ignore_errors=True)
    summary: dict[str, dict[str, float]] = {
        h: {k: round(statistics.median(v), 1) for k, v in results[h].items()} for h in HANDLERS
    }
    healed = {k: round(statistics.median(v), 1) for k, v in heals.items()}
    summary["fresh"] = fresh(args.fresh_runs)
    print(f"pod start latency through CRI, median of {args.runs} (ms)")
    print(f"{'':42}{'runc':>10}{'runsc':>10}")
    for key, label in ROWS:
        print(f"{label:42}{summary['runc'][key]:>10.1f}{summary['runsc'][key]:>10.1f}")
    print()
    print(f"fresh state dir → first pod running (runc), median of {args.fresh_runs} (ms)")
    print(f"{'':42}{'built-in':>10}{'preseeded':>10}")
    first = summary["fresh"]
    label = "run → pod running (incl. sandbox image)"
    print(f"{label:42}{first['first_pod_ms']:>10.1f}{first['preseeded_first_pod_ms']:>10.1f}")
    print()
    print(f"image deleted with ctr images rm, median of {args.runs} (ms)")
    print(f"{'':42}{'agent':>10}{'before':>12}")
    print(f"{'→ imported again from its tarball':42}{healed['reimported_ms']:>10.1f}{'never':>12}")
    print(f"{'→ a container from it running (usable)':42}{healed['heal_ms']:>10.1f}{'never':>12}")
    print("(before: the image stayed deleted until the agent restarted)")
    print(json.dumps({**summary, **healed}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
