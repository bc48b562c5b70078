"""`node-containerd check` on a good node, and naming the cause on broken ones.

`check` runs pods with their own network (CNI: a bridge, addresses, NAT rules), so
every agent here runs in a network namespace of its own (`own_netns`), and so does
`check` (`AgentUnderTest.cli`).
"""

from __future__ import annotations

import fcntl
import json
import os
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from actors.agent.check import CHECK_LABEL
from messages.cri.runtime.v1 import api_pb2 as cri
from tests.support.agent import AgentUnderTest
from tests.support.pods import (
    BUSYBOX_REF,
    PAUSE_REF,
    RUNC_NET,
    RUNSC_NET,
    agent_for_pods,
    runsc_network_line,
    runsc_refuses_its_network_stack,
    start_pod_agent,
)

pytestmark = [pytest.mark.containerd, pytest.mark.pods, pytest.mark.timeout(240)]


@pytest.fixture(scope="module")
def pod_agent(pod_images: dict[str, Path]) -> Iterator[AgentUnderTest]:
    """This module's agent, in a network namespace of its own."""
    agent = start_pod_agent(pod_images, own_netns=True)
    try:
        yield agent
    finally:
        agent.cleanup()


def check(agent: AgentUnderTest, *args: str) -> subprocess.CompletedProcess[str]:
    return agent.cli("check", "--config", str(agent.config), *args, check=False, timeout=200)


def test_check_passes_on_a_good_node_and_leaves_no_pod(pod_agent: AgentUnderTest) -> None:
    r = check(pod_agent)
    sock = pod_agent.state / "containerd" / "containerd.sock"
    assert r.stdout.splitlines() == [
        f"containerd answers on {str(sock)!r}: ok",
        f"sandbox image {PAUSE_REF!r} is present: ok",
        "pod under runc starts and exits 0: ok",
        f"{RUNC_NET}: ok",
        "pod under runsc starts and exits 0: ok",
        "runsc's debug lines reach root.containerd.runsc: ok",
        runsc_network_line(),
    ], r.stderr
    assert r.returncode == 0
    assert pod_agent.client.sandbox_ids() == []
    run = sorted(p.name for p in (pod_agent.state / "run").iterdir())
    # The lock stays, empty; the rest is the agent's own (none of check's pods' logs).
    assert run == ["check.lock", "containerd-notify.sock", "containerd-version.json"]


def test_check_json_with_an_image_of_ones_own(pod_agent: AgentUnderTest) -> None:
    r = check(pod_agent, "--json", "--image", BUSYBOX_REF)
    doc = json.loads(r.stdout)
    assert doc["ok"] is True and r.returncode == 0
    assert [c["name"] for c in doc["checks"]][2:] == [
        "pod under runc starts and exits 0",
        RUNC_NET,
        "pod under runsc starts and exits 0",
        "runsc's debug lines reach root.containerd.runsc",
        RUNSC_NET,
    ]
    assert all(c["ok"] is True and c["cause"] is None for c in doc["checks"])
    assert [c["skipped"] is not None for c in doc["checks"]] == [False] * 6 + [
        runsc_refuses_its_network_stack()
    ]


def _pause_present(pod_agent: AgentUnderTest, present: bool) -> None:
    deadline = time.monotonic() + 30
    while pod_agent.client.image_present(PAUSE_REF) != present:
        assert time.monotonic() < deadline, f"pause image present is not {present}"
        time.sleep(0.05)


def _wait_forgotten(record: Path, tarball: Path) -> None:
    """Until the preseed's import record no longer lists `tarball` (it was removed)."""
    deadline = time.monotonic() + 30
    while str(tarball) in [e["path"] for e in json.loads(record.read_text())["entries"]]:
        assert time.monotonic() < deadline, f"{tarball} is still in the import record"
        time.sleep(0.05)


def test_check_fails_naming_the_missing_sandbox_image(
    pod_agent: AgentUnderTest, pod_images: dict[str, Path]
) -> None:
    sock = str(pod_agent.state / "containerd" / "containerd.sock")
    ctr = ["ctr", "-a", sock, "-n", "k8s.io", "images"]
    preseed = pod_agent.state / "preseed" / "k8s.io"
    tarball = preseed / pod_images["pause"].name
    aside = pod_agent.base / "pause-aside.tar"
    # A preseeded image deleted outside the agent comes back from its tarball: an
    # operator who wants it gone removes the tarball first.
    os.rename(tarball, aside)
    _wait_forgotten(pod_agent.state / "preseed-record.json", tarball)
    subprocess.run([*ctr, "rm", PAUSE_REF], check=True, capture_output=True, timeout=30)
    try:
        _pause_present(pod_agent, False)
        r = check(pod_agent)
    finally:
        os.rename(aside, tarball)  # the watch imports it again: no restart
        _pause_present(pod_agent, True)
    lines = r.stdout.splitlines()
    assert lines[1] == (
        f"sandbox image {PAUSE_REF!r} is present: FAIL: not in containerd's namespace "
        f"'k8s.io'; copy its image tarball into {str(preseed)!r}: the agent's preseed watch "
        "imports it as soon as the copy is complete, no restart needed"
    )
    assert lines[2].startswith(
        "pod under runc starts and exits 0: FAIL: RunPodSandbox under 'runc' failed: "
    )
    assert PAUSE_REF in lines[2]
    assert r.returncode == 1
    assert pod_agent.client.sandbox_ids() == []


@pytest.fixture
def broken_runsc_agent(pod_images: dict[str, Path]) -> Iterator[AgentUnderTest]:
    scripts = Path(tempfile.mkdtemp(prefix="nc-broken-", dir="/tmp"))
    broken = scripts / "runsc"
    broken.write_text("#!/bin/sh\necho 'runsc broken on purpose' >&2\nexit 3\n")
    broken.chmod(0o755)
    agent = start_pod_agent(pod_images, extra_config=f'binary = "{broken}"', own_netns=True)
    try:
        yield agent
    finally:
        agent.cleanup()
        broken.unlink()
        scripts.rmdir()


def test_check_fails_naming_a_broken_runsc_binary(broken_runsc_agent: AgentUnderTest) -> None:
    r = check(broken_runsc_agent)
    lines = r.stdout.splitlines()
    assert lines[2:4] == ["pod under runc starts and exits 0: ok", f"{RUNC_NET}: ok"]
    assert lines[4].startswith(
        "pod under runsc starts and exits 0: FAIL: RunPodSandbox under 'runsc' failed: "
    )
    launcher = broken_runsc_agent.state / "runsc" / "launcher"
    assert f"{launcher} did not terminate successfully: exit status 3" in lines[4], lines[4]
    assert lines[5:] == [
        "runsc's debug lines reach root.containerd.runsc: FAIL: no runsc pod ran (see above)",
        f"{RUNSC_NET}: FAIL: no pod under runsc ran (see above)",
    ]
    assert r.returncode == 1
    assert broken_runsc_agent.client.sandbox_ids() == []


def test_check_without_an_agent_says_so_in_one_line_with_exit_3() -> None:
    agent = agent_for_pods(Path(tempfile.mkdtemp(prefix="nc-pod-", dir="/tmp")))
    try:
        r = check(agent)
        assert (r.returncode, r.stdout) == (3, "")
        assert r.stderr.splitlines() == [
            f"node-containerd is not running: no control socket at '{agent.state / 'control.sock'}'"
        ]
    finally:
        agent.cleanup()


def test_check_without_containerd_fails_every_check_naming_the_first() -> None:
    from actors.agent.check import run_checks
    from actors.config import load_config

    agent = agent_for_pods(Path(tempfile.mkdtemp(prefix="nc-pod-", dir="/tmp")))
    try:
        results = run_checks(load_config(agent.config, check_binaries=False))
        lines = [f"{r.name}: {'ok' if r.ok else 'FAIL: ' + str(r.cause)}" for r in results]
        sock = agent.state / "containerd" / "containerd.sock"
        assert lines[0].startswith(f"containerd answers on {str(sock)!r}: FAIL: Version failed: ")
        cause = "FAIL: containerd does not answer (see above)"
        assert lines[1:] == [
            f"the sandbox image is present: {cause}",
            f"pod under runc starts and exits 0: {cause}",
            f"{RUNC_NET}: {cause}",
            f"pod under runsc starts and exits 0: {cause}",
            f"runsc's debug lines reach root.containerd.runsc: {cause}",
            f"{RUNSC_NET}: {cause}",
        ]
    finally:
        agent.cleanup()


@pytest.fixture
def no_plugins_agent(pod_images: dict[str, Path]) -> Iterator[AgentUnderTest]:
    empty = Path(tempfile.mkdtemp(prefix="nc-noplugins-", dir="/tmp"))
    agent = start_pod_agent(
        pod_images, extra_config=f'[cni]\nbin_dirs = ["{empty}"]', own_netns=True
    )
    try:
        yield agent
    finally:
        agent.cleanup()
        empty.rmdir()


def test_check_fails_naming_missing_cni_plugins_and_what_to_install(
    no_plugins_agent: AgentUnderTest,
) -> None:
    r = check(no_plugins_agent, "--json")
    checks = {c["name"]: c for c in json.loads(r.stdout)["checks"]}
    assert checks["pod under runc starts and exits 0"]["ok"] is True
    empty = no_plugins_agent.config.read_text().split('bin_dirs = ["')[1].split('"')[0]
    # Found out from CRI's loaded networks, before any pod: CRI could not tear the
    # network of such a pod down, and would keep its sandbox.
    for name in (RUNC_NET, RUNSC_NET):
        assert checks[name]["cause"] == (
            "CNI plugins loopback, bridge, host-local, firewall, portmap of the networks CRI "
            f"loaded are not in its plugin directories ({empty!r}): install them (Debian: "
            "apt-get install containernetworking-plugins, or scripts/setup) or set "
            "[cni] bin_dirs to where they are"
        )
    assert r.returncode == 1
    assert no_plugins_agent.client.sandbox_ids() == []
    # The agent said so at start, naming what the default network needs.
    said = (no_plugins_agent.base / "agent.err").read_text().splitlines()[0]
    assert said == (
        "node-containerd: warning: CNI plugins bridge, host-local, firewall, portmap, loopback "
        f"are not in {empty!r}: pods with their own network namespace will not start; install "
        "them (Debian: apt-get install containernetworking-plugins) or set [cni] bin_dirs"
    )


def _check_process(agent: AgentUnderTest) -> subprocess.Popen[str]:
    return subprocess.Popen(
        agent.in_netns([*agent.command, "check", "--config", str(agent.config)]),
        env=agent.env,
        cwd=agent.cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _check_pods(agent: AgentUnderTest) -> list[str]:
    return agent.client.sandbox_ids({CHECK_LABEL: "true"})


def _containers(agent: AgentUnderTest) -> int:
    reply = agent.client.runtime.ListContainers(cri.ListContainersRequest(), timeout=10)
    return len(reply.containers)


def _run_dirs(agent: AgentUnderTest) -> list[str]:
    return sorted(p.name for p in (agent.state / "run").glob("check-*"))


def _wait(test: Callable[[], bool], proc: subprocess.Popen[str], what: str) -> None:
    deadline = time.monotonic() + 120
    while not test():
        assert proc.poll() is None, (what, proc.communicate())
        assert time.monotonic() < deadline, f"no {what} within 120s"
        time.sleep(0.02)


@pytest.mark.parametrize(
    ("signum", "moment"),
    [
        (signal.SIGTERM, "sandbox"),
        (signal.SIGINT, "container"),
        (signal.SIGHUP, "sandbox"),
    ],
)
def test_a_signal_mid_check_removes_its_pods_and_run_dir_then_exits_128_plus_it(
    pod_agent: AgentUnderTest, signum: int, moment: str
) -> None:
    """Issue 20 item 6: SIGTERM left a sandbox and run/check-*; a SIGINT got swallowed."""
    proc = _check_process(pod_agent)
    try:
        if moment == "sandbox":
            _wait(lambda: _check_pods(pod_agent) != [], proc, "check pod")
        else:  # created, and being started or just started
            _wait(lambda: _containers(pod_agent) > 0, proc, "check container")
        proc.send_signal(signum)
        out, err = proc.communicate(timeout=150)
    finally:
        if proc.poll() is None:
            proc.kill()
    name = signal.Signals(signum).name
    assert proc.returncode == 128 + signum, (out, err)
    assert err.endswith(
        f"node-containerd check: interrupted by {name}; its pods and log directory were "
        "cleaned up first\n"
    ), err
    assert pod_agent.client.sandbox_ids() == []
    assert _run_dirs(pod_agent) == []


def test_a_killed_check_leaves_pods_that_the_next_check_removes(pod_agent: AgentUnderTest) -> None:
    proc = _check_process(pod_agent)
    try:
        _wait(lambda: _check_pods(pod_agent) != [], proc, "check pod")
    finally:
        proc.kill()
        proc.communicate()
    assert _check_pods(pod_agent) != [] and _run_dirs(pod_agent) != []

    r = check(pod_agent)
    assert r.returncode == 0, (r.stdout, r.stderr)
    assert r.stderr == (
        "node-containerd check: removed 1 pod(s) and 1 log directory(ies) left by an earlier "
        "check that was interrupted\n"
    )
    assert pod_agent.client.sandbox_ids() == []
    assert _run_dirs(pod_agent) == []


def test_a_second_check_at_once_is_refused(pod_agent: AgentUnderTest) -> None:
    lock = pod_agent.state / "run" / "check.lock"
    with open(lock, "a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        r = check(pod_agent)
    assert r.returncode == 1
    assert r.stderr == (
        f"node-containerd check: another check is running on this node (it holds "
        f"{str(lock)!r}); wait for it to end\n"
    )
    assert pod_agent.client.sandbox_ids() == []
