"""Where a runsc pod's start goes that `bench/pods` shows as one number.

Two measurements `bench.pods` prints beside its latency table:

* `launcher_overhead`: the runsc launcher's own time per call. The launcher is
  rendered with a stand-in runsc (`/bin/true`) and run as the shim runs it for
  one pod (sandbox create and start, a joining container's create, state, start
  with the stdio its waiter kept, kills, deletes); each call's time minus the
  stand-in's run directly, the two in turn, is its own time. Beside it: a
  `python -IS` start per call (what the launcher cost when it was a Python
  script) and runsc's own start (`runsc --version`), which every call pays
  whatever the launcher does.
* `sandbox_phases`: an agent whose `[runsc] binary` is a timing wrapper (bash,
  `$EPOCHREALTIME`, no process of its own) around the real runsc, so that each
  `runsc create` and `runsc start` of a sandbox is timed from RunPodSandbox's
  call: before create (containerd: snapshot, shim, spec), runsc create (gofer
  and sandbox processes, gVisor's kernel booting), between (the shim; the
  launcher), runsc start (the pause process started in the sandbox), and after
  (the shim and CRI until RunPodSandbox returns). A separate agent, so that the
  wrapper's cost (a bash start per call) is in none of the headline numbers.
"""

from __future__ import annotations

import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from actors.containerd.api.cri import PodRun
from actors.containerd.runtimes.runsc.launcher import (
    helper_path,
    render_helper,
    render_launcher,
    write_launcher,
)
from tests.support.pods import agent_for_pods

__all__ = ["PHASES", "launcher_overhead", "sandbox_phases"]

_TYPE = "io.kubernetes.cri.container-type"
_LOG_DIR = "io.kubernetes.cri.sandbox-log-directory"
#: The phases of a runsc sandbox's start, in order, with their labels.
PHASES = (
    ("before_create_ms", "  containerd, shim, launcher → create"),
    ("create_ms", "  runsc create (gofer, gVisor boot)"),
    ("between_ms", "  shim + launcher, create → start"),
    ("start_ms", "  runsc start"),
    ("after_ms", "  shim + CRI after start"),
)
#: The timing wrapper: runs the real runsc, appends `command start end` to a file.
_WRAPPER = """#!/bin/bash
t0=$EPOCHREALTIME
{runsc} "$@"
rc=$?
t1=$EPOCHREALTIME
for a; do case $a in create|start) echo "$a $t0 $t1" >> {times}; break;; esac; done
exit $rc
"""


def _ms(start: float) -> float:
    return (time.monotonic() - start) * 1000.0


def _once_ms(argv: list[str]) -> float:
    start = time.monotonic()
    subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, check=False)
    return _ms(start)


def _extra_ms(argv: list[str], baseline: list[str], calls: int) -> float:
    """Median of (`argv`'s wall time − `baseline`'s), the two run in turn, in ms.

    Paired, so that a busy moment of the machine weighs on both sides of a difference.
    """
    return statistics.median(_once_ms(argv) - _once_ms(baseline) for _ in range(calls))


def _spec(bundle: Path, annotations: dict[str, str]) -> None:
    """A compact spec, as containerd writes one, with `annotations`."""
    bundle.mkdir(parents=True)
    namespaces = [{"type": "pid"}, {"type": "mount"}]
    spec = {"ociVersion": "1.0.2", "annotations": annotations, "linux": {"namespaces": namespaces}}
    (bundle / "config.json").write_text(json.dumps(spec, separators=(",", ":")))


def launcher_overhead(calls: int = 200) -> dict[str, Any]:
    """The launcher's own ms per call over a pod's calls, a Python start's, runsc's start."""
    work = Path(tempfile.mkdtemp(prefix="nc-bench-launcher-", dir="/tmp"))
    try:
        stand_in, root, logs = "/bin/true", work / "root", work / "logs"
        helper = helper_path(work / "launcher")
        flags = ["--debug", f"--debug-log={work / 'fifo'}"]
        write_launcher(helper, render_helper(runsc=stand_in, flags=flags, tmpdir=work))
        launcher = work / "launcher"
        write_launcher(
            launcher, render_launcher(runsc=stand_in, flags=flags, tmpdir=work, helper=helper)
        )
        _spec(work / "sandbox", {_TYPE: "sandbox", _LOG_DIR: str(logs)})
        _spec(work / "container", {_TYPE: "container"})
        glob = ["--root", str(root), "--log", str(work / "log.json"), "--log-format", "json"]
        pid = ["--pid-file", str(work / "pid")]
        pod_calls = {
            "sandbox create": [*glob, "create", "--bundle", str(work / "sandbox"), *pid, "s1"],
            "sandbox start": [*glob, "start", "s1"],
            "joining create": [*glob, "create", "--bundle", str(work / "container"), *pid, "c1"],
            "state": [*glob, "state", "c1"],
            "joining start": [*glob, "start", "c1"],
            "kill": [*glob, "kill", "c1", "15"],
            "delete": [*glob, "delete", "c1"],
            "sandbox kill": [*glob, "kill", "s1", "9"],
            "sandbox delete": [*glob, "delete", "s1"],
        }
        shell = {}
        # The joining start reopens the stdio its waiter kept: a process holding fds 3-5
        # stands in for the waiter (the stand-in runsc's waiters end at once).
        waiter = subprocess.Popen(
            ["sh", "-c", "exec sleep 600 3</dev/null 4>/dev/null 5>/dev/null"]
        )
        try:
            for name, args in pod_calls.items():
                if name == "joining create":  # started: its waiter `runsc wait`s at once
                    (root / "c1.started").touch()
                if name == "joining start":
                    (root / "c1.waiter").write_text(str(waiter.pid))
                shell[name] = _extra_ms([str(launcher), *args], [stand_in], calls)
        finally:
            waiter.kill()
            waiter.wait()
        python_start = [sys.executable, "-IS", "-c", "import json, subprocess"]
        python = _extra_ms(python_start, [stand_in], calls)
        runsc = shutil.which("runsc")
        runsc_start = _extra_ms([runsc, "--version"], [stand_in], calls // 4) if runsc else 0.0
    finally:
        shutil.rmtree(work, ignore_errors=True)
    slowest = max(shell, key=lambda k: shell[k])
    return {
        "launcher_ms_per_call": round(statistics.mean(shell.values()), 2),
        "launcher_max_ms": round(shell[slowest], 2),
        "launcher_slowest_call": slowest,
        "python_ms_per_call": round(python, 2),
        "runsc_start_ms": round(runsc_start, 1),
    }


def sandbox_phases(
    runsc: str, platform: str | None, images: list[Path], runs: int
) -> dict[str, float]:
    """Medians of a runsc sandbox's phases (`PHASES`) over `runs` sandboxes, in ms."""
    base = Path(tempfile.mkdtemp(prefix="nc-bench-phases-", dir="/tmp"))
    times = base / "times"
    wrapper = base / "runsc-timed"
    wrapper.write_text(_WRAPPER.format(runsc=runsc, times=times))
    wrapper.chmod(0o755)
    extra = f'binary = "{wrapper}"' + (f'\nplatform = "{platform}"' if platform else "")
    agent = agent_for_pods(base, extra_config=extra)
    found: dict[str, list[float]] = {key: [] for key, _ in PHASES}
    try:
        agent.preseed(*images)
        agent.start()
        agent.wait_ready(timeout=300)
        for n in range(runs + 1):  # the first one warms the page cache, and is not counted
            times.write_text("")
            pod = PodRun(client=agent.client, handler="runsc", log_dir=base / "logs" / f"{n}")
            try:
                begun = time.time()
                pod.start_sandbox()
                ended = time.time()
            finally:
                pod.remove()
            stamps = {
                c: (float(a), float(b))
                for c, a, b in map(str.split, times.read_text().splitlines())
            }
            if n == 0 or set(stamps) != {"create", "start"}:
                continue
            (c0, c1), (s0, s1) = stamps["create"], stamps["start"]
            for key, value in zip(
                (k for k, _ in PHASES),
                (c0 - begun, c1 - c0, s0 - c1, s1 - s0, ended - s1),
                strict=True,
            ):
                found[key].append(value * 1000.0)
    finally:
        agent.cleanup()
    return {k: round(statistics.median(v), 1) if v else float("nan") for k, v in found.items()}
