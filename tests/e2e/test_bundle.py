"""scripts/bundle and its `install`: one tarball built from the checkout, installed with
no network into a temp prefix, runs an agent from another directory that passes `check`
and, installed again over it, keeps a running pod; its .deb files are what a minimal
Debian lacks of the node's tools, and `install` picks from them what a node misses.

The bundle is built once for the module (the .deb files come from the project's cache,
`.cache/debs`). No package is ever installed on this machine: `apt-get` runs only with
`-s`, and the real installs pass `--no-debs`.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from actors.containerd.api.cri import PodRun
from messages.cri.runtime.v1 import api_pb2 as cri
from scripts.bundle_debs import machine_release, suite_dir
from tests.support.agent import AgentUnderTest
from tests.support.pods import RUNSC_NET, runsc_network_line
from tests.support.processes import pid_alive
from tests.support.project import REPO

pytestmark = [pytest.mark.containerd, pytest.mark.slow, pytest.mark.timeout(600)]

#: The node's tools' packages: contrib/debs.py's table, as `debs.py packages` prints it.
TOOL_PACKAGES = {
    "containerd",
    "runc",
    "runsc",
    "catatonit",
    "containernetworking-plugins",
    "iptables",
}
#: The environment `install` runs in: no pip configuration of this machine, no index.
INSTALL_ENV = {"PATH": "/usr/bin:/bin", "PYTHON": sys.executable, "PIP_CONFIG_FILE": os.devnull}


@dataclass
class Installed:
    """A bundle installed into a temp prefix."""

    bundle: Path
    base: Path
    prefix: Path
    etc: Path
    output: str


@pytest.fixture(scope="module")
def bundle() -> Iterator[Path]:
    """The bundle built from the checkout in a temp directory, unpacked."""
    base = Path(tempfile.mkdtemp(prefix="nc-bun-", dir="/tmp"))
    try:
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
        [unpacked] = (base / "x").iterdir()
        yield unpacked
    finally:
        shutil.rmtree(base, ignore_errors=True)


def run_install(bundle: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """`install ARGS` in a network namespace with no interface up: nothing can be fetched."""
    r = subprocess.run(
        ["unshare", "--net", "--", str(bundle / "install"), *args],
        env=INSTALL_ENV,
        capture_output=True,
        text=True,
        timeout=300,
        cwd=cwd,
    )
    assert r.returncode == 0, f"install exited {r.returncode}: {r.stdout}\n{r.stderr}"
    return r


@pytest.fixture(scope="module")
def installed(bundle: Path) -> Iterator[Installed]:
    base = Path(tempfile.mkdtemp(prefix="nc-bun-", dir="/tmp"))
    os.chmod(base, 0o711)  # gVisor's sandbox user must search the state dir's ancestors
    prefix, etc = base / "opt", base / "etc"
    args = ["--prefix", str(prefix), "--config", str(etc / "config.toml")]
    args += ["--unit-dir", str(etc / "systemd"), "--no-enable", "--no-debs"]
    r = run_install(bundle, *args, cwd=base)
    try:
        yield Installed(bundle, base, prefix, etc, r.stdout + r.stderr)
    finally:
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="module")
def agent(installed: Installed) -> Iterator[AgentUnderTest]:
    """The installed agent on the default profile, run from another directory, ready."""
    base = installed.base / "agent"
    (base / "elsewhere").mkdir(parents=True)
    os.chmod(base, 0o711)
    config = base / "agent.toml"
    state = base / "st"
    config.write_text(f'state_dir = "{state}"\n')
    a = AgentUnderTest(
        base,
        config=config,
        state=state,
        command=[installed.prefix / "bin" / "node-containerd"],
        cwd=base / "elsewhere",
        own_netns=True,
    )
    a.client  # noqa: B018 - made now, so that `cleanup` removes every pod
    try:
        a.start()
        a.wait_ready(timeout=120)
        yield a
    finally:
        a.cleanup()


def wheels_of(bundle: Path) -> set[str]:
    """`name==version` of each wheel in the bundle, as pip names distributions."""
    found = set()
    for wheel in (bundle / "wheels").glob("*.whl"):
        name, version = wheel.name.split("-")[:2]
        found.add(f"{name.lower().replace('_', '-')}=={version}")
    return found


def test_the_bundle_installs_offline_exactly_its_own_wheels_unit_and_config(
    installed: Installed,
) -> None:
    listed = subprocess.run(
        [
            str(installed.prefix / "bin" / "python"),
            "-m",
            "pip",
            "list",
            "--format",
            "json",
            "--disable-pip-version-check",
        ],
        env=INSTALL_ENV,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    got = {f"{d['name'].lower().replace('_', '-')}=={d['version']}" for d in json.loads(listed)}
    got = {g for g in got if not g.startswith(("pip==", "setuptools=="))}
    assert got == wheels_of(installed.bundle)
    assert "Downloading" not in installed.output
    unit = (installed.etc / "systemd" / "node-containerd.service").read_text()
    assert f"ExecStart={installed.prefix}/bin/node-containerd run --config" in unit
    config = (installed.etc / "config.toml").read_text()
    assert config == (REPO / "contrib" / "config.toml").read_text()


def test_the_installed_agent_is_healthy_and_check_passes_from_another_directory(
    agent: AgentUnderTest,
) -> None:
    assert agent.status()["root.containerd"]["state"] == "HEALTHY"
    r = agent.cli("check", "--config", str(agent.config), check=False, timeout=200)
    lines = r.stdout.splitlines()
    assert r.returncode == 0, f"{r.stdout}\n{r.stderr}"
    expected_net = runsc_network_line()
    assert expected_net in lines
    others = [line for line in lines if not line.startswith(RUNSC_NET)]
    assert len(others) >= 5 and all(line.endswith(": ok") for line in others), lines


def builtin_sandbox_image(agent: AgentUnderTest) -> str:
    names = [t for i in agent.client.list_images() for t in i.repo_tags]
    [name] = {n for n in names if n.startswith("localhost/node-containerd/pause:")}
    return name


def container_pid(pod: PodRun) -> int:
    info = pod.client.container_status_verbose(pod.container_id).info["info"]
    pid: int = json.loads(info)["pid"]
    return pid


def test_the_same_bundle_installed_again_over_a_running_pod_keeps_it_running(
    installed: Installed, agent: AgentUnderTest
) -> None:
    pod = PodRun(client=agent.client, handler="runc", log_dir=agent.base / "logs")
    try:
        sandbox = pod.start_sandbox()
        pod.start_container(builtin_sandbox_image(agent), None)
        before = pod.wait_state((cri.CONTAINER_RUNNING,), timeout=60)
        pid = container_pid(pod)
        [module] = installed.prefix.glob("lib/python3*/site-packages/actors/__init__.py")
        old = module.stat().st_ino
        args = ["--prefix", str(installed.prefix), "--config", str(installed.etc / "config.toml")]
        args += ["--unit-dir", str(installed.etc / "systemd"), "--no-enable", "--no-debs"]
        again = run_install(installed.bundle, *args, cwd=installed.base)
        assert "installed in" in again.stdout
        assert module.stat().st_ino != old  # the bundle's wheel was installed again
        # What `systemctl restart` does after an upgrade: the agent stops and starts.
        assert agent.terminate() == 0
        assert pid_alive(pid)
        agent.start()
        agent.wait_ready(timeout=120)
        assert sandbox in agent.client.sandbox_ids()
        assert agent.client.sandbox_ready(sandbox)
        after = agent.client.container_status(pod.container_id)
        assert after.state == cri.CONTAINER_RUNNING
        assert after.started_at == before.started_at
        assert container_pid(pod) == pid and pid_alive(pid)
    finally:
        pod.remove()
    assert sandbox not in agent.client.sandbox_ids()
