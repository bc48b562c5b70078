"""Benchmark: the processes the runsc launcher runs per step of a pod's life, per runsc release.

`bench/pods` times a runsc pod; this counts what its time is spent on: each
`runsc` call (by subcommand) and every other process the launcher starts (its own
`sh` per call from the shim, `cat`, `mkdir`, `rm`, `sleep`, `umount`, the Python
helper), for each CRI step of one pod: RunPodSandbox, CreateContainer,
StartContainer, ExecSync (`/bin/true`), StopPodSandbox, RemovePodSandbox.

How: an agent whose `[runsc] binary` is a logging wrapper (sh: appends the step
and its arguments to a file, then `exec`s the real runsc), and whose launcher,
once the agent has written it, is edited to log each call and to find logging
wrappers of `cat`, `mkdir`, `rm`, `sleep` and `umount` first on its `PATH` and a
logging wrapper as its Python. The wrappers' own processes are not counted (one
`exec` each). A step's count includes what runs in the background until the next
step begins (0.5 s later): the waiter's polls, the exec watcher's kill.

Columns: the system's runsc (Debian 12's, ptrace) and, when cached, trixie's
(`--runsc-systrap PATH`, systrap). Last line: JSON
`{"runsc": {STEP: {PROCESS: count}}, "runsc_systrap": {…} (or {"skipped": "why"})}`.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

from actors.containerd.api.cri import PodRun
from bench.pods import TRIXIE_RUNSC
from messages.cri.runtime.v1 import api_pb2 as cri
from tests.support.agent import AgentUnderTest
from tests.support.images.tools import busybox_image
from tests.support.pods import agent_for_pods, pause_image

__all__ = ["STEPS", "count_calls"]

#: The CRI steps of one pod's life, in order.
STEPS = (
    "RunPodSandbox",
    "CreateContainer",
    "StartContainer",
    "ExecSync",
    "StopPodSandbox",
    "RemovePodSandbox",
)
#: The external commands the launcher may run, wrapped to be counted.
_TOOLS = ("cat", "mkdir", "rm", "sleep", "umount")
_IMAGE = "example.test/bench-calls:1"
#: How long a step's background processes get before the next step begins, in s.
_SETTLE = 0.5


def _wrapper(log: Path, step: Path, name: str, real: str, *, by_subcommand: bool) -> str:
    """A sh wrapper logging `<step> <name>[ <subcommand>]` to `log`, then running `real`."""
    pick = ""
    if by_subcommand:  # the first argument not a flag and not a global flag's value
        pick = (
            "want= sub=\nfor a; do\n"
            '    if [ -n "$want" ]; then want=; continue; fi\n'
            "    case $a in --root|--log|--log-format) want=1 ;; -*) ;; *) sub=$a; break ;; esac\n"
            "done\n"
        )
    label = f"{name} $sub" if by_subcommand else name
    return (
        f"#!/bin/sh\n{pick}"
        f"{{ read -r s || :; }} <{step}\n"
        f'echo "$s {label}" >>{log}\n'
        f'exec {real} "$@"\n'
    )


def _install(path: Path, text: str) -> None:
    path.write_text(text)
    path.chmod(0o755)


def count_calls(runsc: str, platform: str | None, images: list[Path]) -> dict[str, dict[str, int]]:
    """Per step of one runsc pod's life, how many processes of each kind the launcher ran."""
    base = Path(tempfile.mkdtemp(prefix="nc-bench-calls-", dir="/tmp"))
    log, step, tools = base / "calls", base / "step", base / "bin"
    tools.mkdir()
    step.write_text("setup\n")
    wrapped = base / "runsc-logged"
    _install(wrapped, _wrapper(log, step, "runsc", runsc, by_subcommand=True))
    for tool in _TOOLS:
        real = shutil.which(tool) or f"/bin/{tool}"
        _install(tools / tool, _wrapper(log, step, tool, real, by_subcommand=False))
    python = tools / "python"
    _install(python, _wrapper(log, step, "python", '"$0.real"', by_subcommand=False))
    extra = f'binary = "{wrapped}"' + (f'\nplatform = "{platform}"' if platform else "")
    agent = agent_for_pods(base, extra_config=extra)
    try:
        agent.preseed(*images)
        agent.start()
        agent.wait_ready(timeout=300)
        launcher = agent.state / "runsc" / "launcher"
        text = launcher.read_text()
        old_python = next(line for line in text.splitlines() if line.startswith("python=")).split(
            "=", 1
        )[1]
        os.symlink(old_python.strip("'"), str(python) + ".real")
        head, _, rest = text.partition("\n")
        text = (
            f'{head}\n{{ read -r s || :; }} <{step}\necho "$s sh launcher" >>{log}\n'
            f"PATH={tools}:$PATH\n{rest}"
        ).replace(f"python={old_python}\n", f"python={python}\n")
        _install(launcher, text)
        return _one_pod(agent, base, log, step)
    finally:
        agent.cleanup()
        shutil.rmtree(base, ignore_errors=True)


def _one_pod(agent: AgentUnderTest, base: Path, log: Path, step: Path) -> dict[str, dict[str, int]]:
    runtime = agent.client.runtime
    timeout = 120
    pod = PodRun(client=agent.client, handler="runsc", log_dir=base / "logs")

    def begin(name: str) -> None:
        time.sleep(_SETTLE)
        step.write_text(name + "\n")

    try:
        begin("RunPodSandbox")
        pod.start_sandbox()
        begin("CreateContainer")
        config = cri.ContainerConfig(
            metadata=cri.ContainerMetadata(name="c"),
            image=cri.ImageSpec(image=_IMAGE),
            command=["/bin/sleep", "600"],
            log_path="c.log",
        )
        created = runtime.CreateContainer(
            cri.CreateContainerRequest(
                pod_sandbox_id=pod.sandbox_id, config=config, sandbox_config=pod.config()
            ),
            timeout=timeout,
        )
        begin("StartContainer")
        runtime.StartContainer(
            cri.StartContainerRequest(container_id=created.container_id), timeout=timeout
        )
        begin("ExecSync")
        done = runtime.ExecSync(
            cri.ExecSyncRequest(container_id=created.container_id, cmd=["/bin/true"], timeout=30),
            timeout=timeout,
        )
        assert done.exit_code == 0, done
        begin("StopPodSandbox")
        agent.client.stop_pod(pod.sandbox_id)
        begin("RemovePodSandbox")
        agent.client.remove_pod(pod.sandbox_id)
        pod.sandbox_id = ""
        begin("done")
    finally:
        pod.remove()
    counts: dict[str, collections.Counter[str]] = {s: collections.Counter() for s in STEPS}
    for line in log.read_text().splitlines():
        name, _, what = line.partition(" ")
        if name in counts:
            counts[name][what] += 1
    return {s: dict(sorted(c.items())) for s, c in counts.items()}


def _print_table(column: str, counts: dict[str, dict[str, int]]) -> None:
    kinds = sorted({k for c in counts.values() for k in c})
    print(f"\n{column}: processes the launcher ran, per CRI step of one pod")
    print(f"{'':18}" + "".join(f"{s[:16]:>17}" for s in STEPS) + f"{'total':>8}")
    for kind in kinds:
        row = [counts[s].get(kind, 0) for s in STEPS]
        print(f"{kind:18}" + "".join(f"{n:>17}" for n in row) + f"{sum(row):>8}")
    runsc_total = [sum(n for k, n in counts[s].items() if k.startswith("runsc")) for s in STEPS]
    total = sum(runsc_total)
    print(f"{'runsc, all':18}" + "".join(f"{n:>17}" for n in runsc_total) + f"{total:>8}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runsc-systrap", type=Path, default=TRIXIE_RUNSC)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="nc-bench-img-", dir="/tmp"))
    summary: dict[str, object] = {}
    try:
        images = [pause_image(work), busybox_image(work, _IMAGE)]
        summary["runsc"] = count_calls(shutil.which("runsc") or "runsc", None, images)
        _print_table("runsc (system, ptrace)", summary["runsc"])  # type: ignore[arg-type]
        if os.access(args.runsc_systrap, os.X_OK):
            summary["runsc_systrap"] = count_calls(str(args.runsc_systrap), "systrap", images)
            _print_table("runsc (trixie, systrap)", summary["runsc_systrap"])  # type: ignore[arg-type]
        else:
            summary["runsc_systrap"] = {"skipped": f"no runsc at {args.runsc_systrap}"}
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
