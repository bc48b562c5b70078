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
import re
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
from tests.support.pods import RUNC_NET, runsc_network_line
from tests.support.processes import pid_alive
from tests.support.project import REPO

pytestmark = [pytest.mark.containerd, pytest.mark.once, pytest.mark.slow, pytest.mark.timeout(600)]

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
    sock = agent.state / "containerd" / "containerd.sock"
    image = builtin_sandbox_image(agent)
    assert lines == [
        f"containerd answers on {str(sock)!r}: ok",
        f"sandbox image {image!r} is present: ok",
        "pod under runc starts and exits 0: ok",
        f"{RUNC_NET}: ok",
        "pod under runsc starts and exits 0: ok",
        "runsc's debug lines reach root.containerd.runsc: ok",
        runsc_network_line(),
    ]


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


def package_of(deb: Path) -> str:
    """A .deb's package name, as `dpkg-deb` reads it."""
    r = subprocess.run(["dpkg-deb", "-f", str(deb), "Package"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


@pytest.fixture(scope="module")
def debs(bundle: Path) -> dict[str, Path]:
    """The bundle's .deb files by package name."""
    if not (bundle / "debs").is_dir():
        pytest.skip("the bundle was built off Debian: it carries no .deb files")
    return {package_of(deb): deb for deb in sorted((bundle / "debs").glob("*.deb"))}


@pytest.fixture(scope="module")
def minimal_status() -> Path:
    """The dpkg status of a minimal Debian that scripts/bundle resolved against."""
    release = machine_release()
    assert release is not None
    status = suite_dir(release) / "minimal-status"
    assert status.is_file(), f"scripts/bundle left no {str(status)!r}"
    return status


def select(bundle: Path, *args: str, path: str = INSTALL_ENV["PATH"]) -> list[Path]:
    """`debs.py select ARGS`: the files `install` would give apt-get, in order."""
    r = subprocess.run(
        [sys.executable, str(bundle / "debs.py"), "select", *args],
        env={"PATH": path},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0, r.stderr
    return [Path(line) for line in r.stdout.splitlines()]


def names(files: list[Path]) -> list[str]:
    return [package_of(f) for f in files]


def installed_names(status: Path) -> set[str]:
    text = status.read_text()
    return {line.split(": ", 1)[1] for line in text.splitlines() if line.startswith("Package: ")}


def test_the_bundle_carries_the_tools_and_exactly_what_a_minimal_debian_lacks_of_them(
    bundle: Path, debs: dict[str, Path], minimal_status: Path
) -> None:
    assert TOOL_PACKAGES <= set(debs)
    assert not set(debs) & installed_names(minimal_status)
    # Every file is needed: all tools missing on a minimal Debian select every one of them.
    chosen = select(bundle, "--missing", "all", "--status", str(minimal_status))
    assert sorted(names(chosen)) == sorted(debs)
    assert len(set(chosen)) == len(chosen)


def test_the_selection_is_the_missing_tools_and_the_dependencies_the_node_lacks(
    bundle: Path, debs: dict[str, Path], minimal_status: Path, tmp_path: Path
) -> None:
    # A machine set up for the project has every tool: nothing to install.
    assert select(bundle) == []
    # Here every dependency is installed: a missing tool is its package alone.
    assert names(select(bundle, "--missing", "runsc,iptables")) == ["runsc", "iptables"]
    # On a minimal Debian, iptables brings its libraries and no other tool.
    chosen = names(select(bundle, "--missing", "iptables", "--status", str(minimal_status)))
    assert chosen[0] == "iptables" and len(chosen) > 1
    assert not set(chosen) & (TOOL_PACKAGES - {"iptables"})
    depends = subprocess.run(
        ["dpkg-deb", "-f", str(debs["iptables"]), "Depends"], capture_output=True, text=True
    ).stdout
    wanted = {d.strip().split(" ")[0].split(":")[0] for d in depends.split(",")}
    assert wanted <= set(chosen) | installed_names(minimal_status)
    # Found by looking: PATH holds only containerd; /usr/sbin and /sbin are searched too;
    # the CNI plugins are where Debian puts them.
    only = tmp_path / "bin"
    only.mkdir()
    which = shutil.which("containerd")
    assert which is not None, "containerd: run scripts/setup"
    (only / "containerd").symlink_to(which)
    commands = ["runc", "runsc", "catatonit", "iptables"]
    lacking = [t for t in commands if shutil.which(t, path="/usr/sbin:/sbin") is None]
    assert lacking, "every tool is in /usr/sbin: nothing would be found missing"
    assert names(select(bundle, path=str(only))) == lacking


def test_apt_installs_the_selection_on_a_minimal_debian_from_the_files_alone(
    bundle: Path, debs: dict[str, Path], minimal_status: Path, tmp_path: Path
) -> None:
    chosen = select(bundle, "--missing", "all", "--status", str(minimal_status))
    for d in ("lists/partial", "cache/archives/partial", "parts"):
        (tmp_path / d).mkdir(parents=True)
    (tmp_path / "sources.list").touch()
    # A private apt state with no source at all: only the status and the files.
    options = {
        "Dir::State::status": minimal_status,
        "Dir::Etc::sourcelist": tmp_path / "sources.list",
        "Dir::Etc::sourceparts": tmp_path / "parts",
        "Dir::Etc::preferencesparts": tmp_path / "parts",
        "Dir::State::Lists": tmp_path / "lists",
        "Dir::Cache": tmp_path / "cache",
        "Dir::Cache::pkgcache": "",
        "Dir::Cache::srcpkgcache": "",
    }
    argv = ["apt-get", "-s", "install", "--no-install-recommends"]
    argv += [f"-o{k}={v}" for k, v in options.items()] + [str(f) for f in chosen]
    r = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, f"{r.stdout}\n{r.stderr}"
    inst = dict(re.findall(r"^Inst (\S+) \(\S+ (\S+) ", r.stdout, re.M))
    assert sorted(inst) == sorted(debs)
    assert set(inst.values()) == {"local-deb"}


def test_install_simulate_prints_apts_plan_for_the_missing_tools_and_changes_nothing(
    bundle: Path, debs: dict[str, Path], tmp_path: Path
) -> None:
    status = Path("/var/lib/dpkg/status").read_bytes()
    r = subprocess.run(
        [str(bundle / "install"), "--simulate", "--missing", "runsc,catatonit"],
        env=INSTALL_ENV,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert r.returncode == 0, f"{r.stdout}\n{r.stderr}"
    assert f"{debs['runsc']} {debs['catatonit']}" in r.stdout
    assert re.search(r"^\d+ upgraded, \d+ newly installed", r.stdout, re.M), r.stdout
    assert Path("/var/lib/dpkg/status").read_bytes() == status
    assert list(tmp_path.iterdir()) == []  # no venv, config or unit
