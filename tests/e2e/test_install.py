"""A built wheel, installed into a fresh venv outside the checkout, runs the agent and
passes `node-containerd check`.

The wheel is built from a copy of the sources (so nothing of the checkout, its venv or
its build directory can leak in), installed with its real dependencies resolved by pip
from the package index, and run from an unrelated directory: the console script, the
default profile, the protos, the runsc launcher and
`python -m actors.supervisor.process.host` must all come from the installed package.
`check` then starts a pod under runc and one under runsc through CRI, host-network
and with their own network (CNI): the agent runs in a network namespace of its own
(`AgentUnderTest` with `own_netns`), and so does `check`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tests.support.agent import AgentUnderTest
from tests.support.pods import agent_for_pods, pause_image
from tests.support.project import REPO

pytestmark = [
    pytest.mark.timeout(600),
    pytest.mark.containerd,
    pytest.mark.once,
    pytest.mark.pods,
    pytest.mark.slow,
]


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


def test_a_wheel_installed_into_a_fresh_venv_runs_the_agent_and_passes_check():
    work = Path(tempfile.mkdtemp(prefix="nc-inst-", dir="/tmp"))
    os.chmod(work, 0o711)  # gVisor's sandbox user must search the state dir's ancestors
    agent: AgentUnderTest | None = None
    try:
        wheel = _build_wheel(work)
        venv = work / "venv"
        _run(sys.executable, "-m", "venv", venv, cwd=work)
        _run(venv / "bin" / "pip", "install", "-q", wheel, cwd=work, timeout=500)
        pause = pause_image(work)

        base = work / "agent"
        (base / "elsewhere").mkdir(parents=True)
        # The pod tests' agent, run by the installed console script from another directory.
        agent = agent_for_pods(
            base,
            command=[venv / "bin" / "node-containerd"],
            cwd=base / "elsewhere",
            env={"PATH": os.environ.get("PATH", os.defpath), "NO_COLOR": "1"},
            own_netns=True,
        )
        where = _run(
            venv / "bin" / "python",
            "-c",
            "import actors; print(actors.__file__)",
            cwd=agent.cwd,
            env=agent.env,
        )
        assert where.stdout.startswith(str(venv)), where.stdout
        assert "[containerd]" in agent.cli("config", "default").stdout
        agent.preseed(pause)
        agent.start()
        nodes = agent.wait_ready()
        assert nodes["root.containerd.runsc"]["state"] == "HEALTHY"
        r = agent.cli("check", "--config", str(agent.config), check=False, timeout=200)
        assert r.returncode == 0, f"{r.stdout}\n{r.stderr}\n{agent.stderr()}"
        lines = r.stdout.splitlines()
        assert lines[2:6] == [
            "pod under runc starts and exits 0: ok",
            "pod with its own network under runc gets an address the node reaches: ok",
            "pod under runsc starts and exits 0: ok",
            "runsc's debug lines reach root.containerd.runsc: ok",
        ]
        # ok, or skipped under a runsc that refuses gVisor's network stack here (#10704).
        assert lines[6].startswith(
            "pod with its own network under runsc gets an address the node reaches: "
        ), lines
        assert agent.terminate() == 0
    finally:
        if agent is not None:
            agent.cleanup()  # pods, leftovers by pid, mounts, and its directory
        shutil.rmtree(work, ignore_errors=True)
