"""scripts/bundle and its `install`: one tarball, installed with no index reachable
into a temp prefix, runs an agent from another directory."""

from __future__ import annotations

import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import pytest

from tests.support.agent import PRESEEDED, AgentUnderTest
from tests.support.project import REPO

pytestmark = [pytest.mark.containerd, pytest.mark.slow, pytest.mark.timeout(600)]


def test_the_bundle_installs_offline_and_runs_an_agent_from_another_directory():
    base = Path(tempfile.mkdtemp(prefix="nc-bun-", dir="/tmp"))
    built = subprocess.run(
        [str(REPO / "scripts" / "bundle"), "--output", str(base / "out")],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
        cwd=base,
    )
    tarball = Path(built.stdout.strip().splitlines()[-1])
    with tarfile.open(tarball) as tar:
        tar.extractall(base / "x", filter="data")
    [bundle] = (base / "x").iterdir()
    prefix, etc = base / "opt", base / "etc"
    # No index is reachable: anything not in the bundle's wheels would fail the install.
    env = {
        "PATH": "/usr/bin:/bin",
        "PIP_INDEX_URL": "http://127.0.0.1:9/simple",
        "PYTHON": sys.executable,
    }
    subprocess.run(
        [
            str(bundle / "install"),
            "--prefix",
            str(prefix),
            "--config",
            str(etc / "config.toml"),
            "--unit-dir",
            str(etc / "systemd"),
            "--no-enable",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
        cwd=base,
    )
    unit = (etc / "systemd" / "node-containerd.service").read_text()
    assert f"ExecStart={prefix}/bin/node-containerd run --config" in unit
    assert (etc / "config.toml").read_text() == (REPO / "contrib" / "config.toml").read_text()
    run_dir = base / "elsewhere"
    run_dir.mkdir()
    agent = AgentUnderTest(
        base, command=[prefix / "bin" / "node-containerd"], cwd=run_dir, own_netns=True
    )
    agent.start()
    try:
        agent.wait_states(PRESEEDED, timeout=120)
    finally:
        agent.cleanup()
