"""Benchmark: pod start latency through CRI, runc vs runsc (gVisor), side by side.

The real agent (`bin/node-containerd run`) with every image preseeded and none
unpacked. Three columns: runc; runsc, the system's (Debian 12's 20221219: ptrace
platform); runsc on the systrap platform with a newer runsc (trixie's 20240729,
`--runsc-systrap PATH`, by default where the containerd-versions fetch puts it in the
checkout's `.cache`; the column is left out, saying why, when it is not there), run
by a second agent. Per column and run (median of --runs, in ms):

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

Then, where a runsc pod's start goes that is not gVisor's (median of 200 calls, ms):

    launcher_ms_per_call  the runsc launcher's own time per call: the launcher run
                          with a stand-in runsc (`/bin/true`) minus the stand-in run
                          directly, over the calls a pod makes (sandbox create, start,
                          container create and start, state, kill, delete); shown
                          against a Python start per call (`python -IS`, the launcher
                          before it was a shell script)
    runsc_start_ms        runsc's own start per call (`runsc --version`): each call
                          of the shim pays it, whatever the launcher does

The last line printed is one JSON object:
`{"runc": {"sandbox_ms": …, "first_container_ms": …, "next_container_ms": …}, "runsc": {…},
"fresh": {"first_pod_ms": …, "preseeded_first_pod_ms": …}, "heal_ms": …, "reimported_ms": …,
"runsc_systrap": {…} (or {"skipped": "why"}), "launcher_ms_per_call": …}`.
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
from typing import Any

from actors.containerd.api.cri import CriError, PodRun
from actors.images.pause import write_pause_archive
from bench.pods_phases import PHASES, launcher_overhead, sandbox_phases
from messages.cri.runtime.v1 import api_pb2 as cri
from tests.support.agent import AgentUnderTest
from tests.support.images.tools import busybox_image
from tests.support.pods import PAUSE_REF, agent_for_pods, pause_image

HANDLERS = ("runc", "runsc")
#: The columns: (name, which agent, handler). The systrap column's agent is the second.
COLUMNS = (("runc", 0, "runc"), ("runsc", 0, "runsc"), ("runsc_systrap", 1, "runsc"))
#: Where the containerd-versions fetch puts trixie's runsc in the checkout.
TRIXIE_RUNSC = Path(__file__).resolve().parents[1] / ".cache/runsc/trixie/root/usr/bin/runsc"

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


def _systrap_agent(runsc: Path, images: list[Path]) -> AgentUnderTest:
    """A second agent whose runsc handler is `runsc` on the systrap platform, ready."""
    base = Path(tempfile.mkdtemp(prefix="nc-bench-systrap-", dir="/tmp"))
    agent = agent_for_pods(base, extra_config=f'binary = "{runsc}"\nplatform = "systrap"')
    agent.preseed(*images)
    agent.start()
    agent.wait_ready(timeout=300)
    return agent


def _print_tables(
    summary: dict[str, Any], columns: list[str], skipped: str, runs: int, fresh_runs: int
) -> None:
    print(f"pod start latency through CRI, median of {runs} (ms)")
    names = {"runc": "runc", "runsc": "runsc ptrace", "runsc_systrap": "runsc systrap"}
    print(f"{'':42}" + "".join(f"{names[c]:>15}" for c in columns))
    for key, label in ROWS:
        print(f"{label:42}" + "".join(f"{summary[c][key]:>15.1f}" for c in columns))
    ratio = summary["runsc"]["sandbox_ms"] / summary["runc"]["sandbox_ms"]
    print(f"{'runsc sandbox ready / runc (target ≤ 2.5)':42}{'':>15}{ratio:>15.2f}", end="")
    if "runsc_systrap" in columns:
        print(f"{summary['runsc_systrap']['sandbox_ms'] / summary['runc']['sandbox_ms']:>15.2f}")
    else:
        print()
    if skipped:
        print(f"(runsc systrap column left out: {skipped})")
    print()
    phases = summary["phases"]
    print(f"where a runsc sandbox's start goes, median of {len(phases) and runs} (ms)")
    print(f"{'':42}{'':>15}" + "".join(f"{names[c]:>15}" for c in phases))
    for key, label in PHASES:
        print(f"{label:42}{'':>15}" + "".join(f"{phases[c][key]:>15.1f}" for c in phases))
    print("(timed by a wrapper around runsc, on an agent of their own; the launcher's")
    print(" share of 'between' is its time per call below, once per create and start)")
    print()
    calls = summary["calls"]
    print("where a runsc call's time goes that is not gVisor's, median of 200 calls (ms)")
    print(f"{'':42}{'shell':>10}{'python':>10}")
    label = "launcher's own time per call (mean, pod)"
    print(f"{label:42}{calls['launcher_ms_per_call']:>10.2f}{calls['python_ms_per_call']:>10.2f}")
    label = f"launcher, slowest call ({calls['launcher_slowest_call']})"
    print(f"{label:42}{calls['launcher_max_ms']:>10.2f}")
    print(f"{'runsc binary start (runsc --version)':42}{calls['runsc_start_ms']:>10.1f}")
    print("(python: a `python -IS` start per call, as the launcher was before)")
    print()
    print(f"fresh state dir → first pod running (runc), median of {fresh_runs} (ms)")
    print(f"{'':42}{'built-in':>10}{'preseeded':>10}")
    first = summary["fresh"]
    label = "run → pod running (incl. sandbox image)"
    print(f"{label:42}{first['first_pod_ms']:>10.1f}{first['preseeded_first_pod_ms']:>10.1f}")
    print()
    print(f"image deleted with ctr images rm, median of {runs} (ms)")
    print(f"{'':42}{'agent':>10}{'before':>12}")
    print(f"{'→ imported again from its tarball':42}{summary['reimported_ms']:>10.1f}{'never':>12}")
    print(f"{'→ a container from it running (usable)':42}{summary['heal_ms']:>10.1f}{'never':>12}")
    print("(before: the image stayed deleted until the agent restarted)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10, help="runs per handler (default 10)")
    parser.add_argument(
        "--fresh-runs",
        type=int,
        default=5,
        help="fresh state directories per variant of the first pod (default 5)",
    )
    parser.add_argument(
        "--runsc-systrap",
        type=Path,
        default=TRIXIE_RUNSC,
        help="a runsc with the systrap platform (default: trixie's, fetched into .cache)",
    )
    args = parser.parse_args()
    skipped = ""
    if not os.access(args.runsc_systrap, os.X_OK):
        skipped = f"no runsc at {args.runsc_systrap} (scripts/containerd-versions fetches it)"
    columns = [c for c, _, _ in COLUMNS if c != "runsc_systrap" or not skipped]
    work = Path(tempfile.mkdtemp(prefix="nc-bench-img-", dir="/tmp"))
    agents = [agent_for_pods(Path(tempfile.mkdtemp(prefix="nc-bench-pods-", dir="/tmp")))]
    try:
        images = {
            (c, n): f"example.test/bench-{c}-{n}:1" for c in columns for n in range(args.runs)
        }
        tars = [pause_image(work)]
        tars += [
            busybox_image(work, ref, files={"/etc/bench-variant": ref.encode()})
            for ref in images.values()
        ]
        agents[0].preseed(*tars)
        agents[0].start()
        agents[0].wait_ready(timeout=300)
        if not skipped:
            agents.append(_systrap_agent(args.runsc_systrap, tars))
        run_on = {c: (agents[a], h) for c, a, h in COLUMNS if c in columns}
        # One pod per column first, so the first measured run does not pay for
        # runsc's or the shim's binaries coming into the page cache.
        for agent, handler in run_on.values():
            one_run(agent, handler, PAUSE_REF, -1)
        results: dict[str, dict[str, list[float]]] = {c: {k: [] for k, _ in ROWS} for c in columns}
        for n in range(args.runs):
            for column, (agent, handler) in run_on.items():
                for key, value in one_run(agent, handler, images[(column, n)], n).items():
                    results[column][key].append(value)
        heals: dict[str, list[float]] = {"reimported_ms": [], "heal_ms": []}
        for n in range(args.runs):
            for key, value in heal_run(agents[0], images[("runc", n)], n).items():
                heals[key].append(value)
    finally:
        for agent in agents:
            agent.cleanup()
        shutil.rmtree(work, ignore_errors=True)
    summary: dict[str, Any] = {
        c: {k: round(statistics.median(v), 1) for k, v in results[c].items()} for c in columns
    }
    summary.update({k: round(statistics.median(v), 1) for k, v in heals.items()})
    summary["fresh"] = fresh(args.fresh_runs)
    summary["calls"] = launcher_overhead()
    work = Path(tempfile.mkdtemp(prefix="nc-bench-img-", dir="/tmp"))
    try:
        pause = [pause_image(work)]
        summary["phases"] = {
            column: sandbox_phases(runsc, platform, pause, args.runs)
            for column, runsc, platform in (
                ("runsc", shutil.which("runsc") or "runsc", None),
                ("runsc_systrap", str(args.runsc_systrap), "systrap"),
            )
            if column in columns
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)
    _print_tables(summary, columns, skipped, args.runs, args.fresh_runs)
    calls = summary.pop("calls")
    for column, phases in summary.pop("phases").items():
        summary[column]["phases"] = phases
    if skipped:
        summary["runsc_systrap"] = {"skipped": skipped}
    summary["launcher_ms_per_call"] = calls["launcher_ms_per_call"]
    summary["launcher_calls"] = calls
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
