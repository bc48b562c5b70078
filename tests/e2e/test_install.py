"""A built wheel, installed into a fresh venv outside the checkout, runs the agent.

The wheel is built from a copy of the sources (so nothing of the checkout, its venv or
its build directory can leak in), installed with its real dependencies resolved by pip
from the package index, and run from an unrelated directory: the console script, the
default profile, the protos and ``python -m actors.supervisor.process.host`` must all
come from the installed package.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from imagegen import small_image, write_oci_archive

pytestmark = [pytest.mark.timeout(600), pytest.mark.containerd, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
IMAGE = "docker.io/library/installed:1"
#: Every node and the states it may be in once the agent is up (the preseed is HEALTHY
#: while it keeps watching its directory, DONE when it does not).
UP = {
    "root": ("DONE",),
    "root.containerd": ("HEALTHY",),
    "root.containerd.runsc": ("HEALTHY",),
    "root.containerd.preseed": ("HEALTHY", "DONE"),
}


def _run(*args: str | Path, cwd: Path, env: dict[str, str] | None = None, timeout: float = 300):
    r = subprocess.run(
        [str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )
    assert r.returncode == 0, f"{args} exited {r.returncode}: {r.stderr[-3000:]}"
    return r


def _build_wheel(work: Path) -> Path:
    src = work / "src"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in ("actors", "messages"):
        shutil.copytree(REPO / name, src / name, ignore=ignore)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, src / name)
    _run(
        sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", work / "dist", src, cwd=work
    )
    (wheel,) = (work / "dist").glob("node_containerd-*.whl")
    return wheel


def _status(script: Path, cwd: Path, env: dict[str, str]) -> dict[str, str]:
    r = subprocess.run(
        [str(script), "status", "--json"],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    if r.returncode != 0:
        return {}
    return {n["dn"]: n["state"] for n in json.loads(r.stdout)["nodes"]}


def test_a_wheel_installed_into_a_fresh_venv_runs_the_agent_from_any_directory():
    work = Path(tempfile.mkdtemp(prefix="nc-inst-", dir="/tmp"))
    proc = None
    try:
        wheel = _build_wheel(work)
        venv = work / "venv"
        _run(sys.executable, "-m", "venv", venv, cwd=work)
        _run(venv / "bin" / "pip", "install", "-q", wheel, cwd=work, timeout=500)
        script = venv / "bin" / "node-containerd"
        elsewhere = work / "elsewhere"
        elsewhere.mkdir()
        env = {
            "PATH": os.environ.get("PATH", os.defpath),
            "NODE_CONTAINERD_STATE": str(work / "st"),
            "NO_COLOR": "1",
        }

        where = _run(
            venv / "bin" / "python",
            "-c",
            "import actors; print(actors.__file__)",
            cwd=elsewhere,
            env=env,
        )
        assert where.stdout.startswith(str(venv)), where.stdout
        assert "[containerd]" in _run(script, "config", "default", cwd=elsewhere, env=env).stdout
        (work / "st" / "preseed" / "k8s.io").mkdir(parents=True)
        write_oci_archive(
            work / "st" / "preseed" / "k8s.io" / "i.tar", [small_image(IMAGE, seed=5)]
        )

        proc = subprocess.Popen(
            [str(script), "run"],
            cwd=elsewhere,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=open(work / "agent.err", "w"),
        )
        deadline = time.monotonic() + 120
        states: dict[str, str] = {}
        while set(states) != set(UP) or any(states[dn] not in UP[dn] for dn in UP):
            assert proc.poll() is None, (work / "agent.err").read_text()[-3000:]
            assert time.monotonic() < deadline, (
                f"{states}\n{(work / 'agent.err').read_text()[-3000:]}"
            )
            time.sleep(0.2)
            states = _status(script, elsewhere, env)
        log = _run(script, "logs", "root.containerd.preseed", cwd=elsewhere, env=env).stdout
        assert f"{IMAGE}" in log
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()  # its runnables and containerd die with it (PR_SET_PDEATHSIG)
            proc.wait(10)
        shutil.rmtree(work, ignore_errors=True)
