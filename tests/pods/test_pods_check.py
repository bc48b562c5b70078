"""`node-containerd check` on a good node, and naming the cause on broken ones."""

from __future__ import annotations

import fcntl
import json
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from pod_agent import BUSYBOX_REF, CLI, PAUSE_REF, PodAgent, new_agent

from actors.agent.check import CHECK_LABEL
from messages.cri.runtime.v1 import api_pb2 as cri

pytestmark = [pytest.mark.containerd, pytest.mark.pods, pytest.mark.timeout(240)]


def check(agent: PodAgent, *args: str) -> subprocess.CompletedProcess[str]:
    return agent.cli("check", "--config", str(agent.config), *args, check=False, timeout=200)


def test_check_passes_on_a_good_node_and_leaves_no_pod(pod_agent: PodAgent) -> None:
    r = check(pod_agent)
    sock = pod_agent.state / "containerd" / "containerd.sock"
    assert r.stdout.splitlines() == [
        f"containerd answers on {str(sock)!r}: ok",
        f"sandbox image {PAUSE_REF!r} is present: ok",
        "pod under runc starts and exits 0: ok",
        "pod under runsc starts and exits 0: ok",
        "runsc's debug lines reach root.containerd.runsc: ok",
    ], r.stderr
    assert r.returncode == 0
    assert pod_agent.client.sandbox_ids() == []
    run = sorted(p.name for p in (pod_agent.state / "run").iterdir())
    assert run == ["check.lock", "containerd-notify.sock"]  # the lock stays, empty


def test_check_json_with_an_image_of_ones_own(pod_agent: PodAgent) -> None:
    r = check(pod_agent, "--json", "--image", BUSYBOX_REF)
    doc = json.loads(r.stdout)
    assert doc["ok"] is True and r.returncode == 0
    assert [c["name"] for c in doc["checks"]][2:] == [
        "pod under runc starts and exits 0",
        "pod under runsc starts and exits 0",
        "runsc's debug lines reach root.containerd.runsc",
    ]
    assert all(c["ok"] is True and c["cause"] is None for c in doc["checks"])


def test_check_fails_naming_the_missing_sandbox_image(
    pod_agent: PodAgent, pod_images: dict[str, Path]
) -> None:
    sock = str(pod_agent.state / "containerd" / "containerd.sock")
    ctr = ["ctr", "-a", sock, "-n", "k8s.io", "images"]
    subprocess.run([*ctr, "rm", PAUSE_REF], check=True, capture_output=True, timeout=30)
    try:
        r = check(pod_agent)
    finally:
        subprocess.run(
            [*ctr, "import", "--no-unpack", str(pod_images["pause"])],
            check=True,
            capture_output=True,
            timeout=60,
        )
    lines = r.stdout.splitlines()
    preseed = pod_agent.state / "preseed" / "k8s.io"
    assert lines[1] == (
        f"sandbox image {PAUSE_REF!r} is present: FAIL: not in containerd's namespace "
        f"'k8s.io'; preseed it: put its image tarball into {str(preseed)!r} and restart the agent"
    )
    assert lines[2].startswith(
        "pod under runc starts and exits 0: FAIL: RunPodSandbox under 'runc' failed: "
    )
    assert PAUSE_REF in lines[2]
    assert r.returncode == 1
    assert pod_agent.client.sandbox_ids() == []


@pytest.fixture
def broken_runsc_agent(pod_images: dict[str, Path]) -> Iterator[PodAgent]:
    scripts = Path(tempfile.mkdtemp(prefix="nc-broken-", dir="/tmp"))
    broken = scripts / "runsc"
    broken.write_text("#!/bin/sh\necho 'runsc broken on purpose' >&2\nexit 3\n")
    broken.chmod(0o755)
    agent = new_agent(pod_images, extra_config=f'binary = "{broken}"')
    try:
        yield agent
    finally:
        agent.cleanup()
        broken.unlink()
        scripts.rmdir()


def test_check_fails_naming_a_broken_runsc_binary(broken_runsc_agent: PodAgent) -> None:
    r = check(broken_runsc_agent)
    lines = r.stdout.splitlines()
    assert lines[2] == "pod under runc starts and exits 0: ok"
    assert lines[3].startswith(
        "pod under runsc starts and exits 0: FAIL: RunPodSandbox under 'runsc' failed: "
    )
    launcher = broken_runsc_agent.state / "runsc" / "launcher"
    assert f"{launcher} did not terminate successfully: exit status 3" in lines[3], lines[3]
    assert (
        lines[4]
        == "runsc's debug lines reach root.containerd.runsc: FAIL: no runsc pod ran (see above)"
    )
    assert r.returncode == 1
    assert broken_runsc_agent.client.sandbox_ids() == []


def test_check_without_containerd_fails_every_check_naming_the_first() -> None:
    agent = PodAgent(Path(tempfile.mkdtemp(prefix="nc-pod-", dir="/tmp")))
    try:
        r = check(agent)
        lines = r.stdout.splitlines()
        sock = agent.state / "containerd" / "containerd.sock"
        assert lines[0].startswith(f"containerd answers on {str(sock)!r}: FAIL: Version failed: ")
        cause = "FAIL: containerd does not answer (see above)"
        assert lines[1:] == [
            f"the sandbox image is present: {cause}",
            f"pod under runc starts and exits 0: {cause}",
            f"pod under runsc starts and exits 0: {cause}",
            f"runsc's debug lines reach root.containerd.runsc: {cause}",
        ]
        assert r.returncode == 1
    finally:
        agent.cleanup()


def _check_process(agent: PodAgent) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*CLI, "check", "--config", str(agent.config)],
        env=agent.env,
        cwd=agent.base,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _check_pods(agent: PodAgent) -> list[str]:
    return agent.client.sandbox_ids({CHECK_LABEL: "true"})


def _containers(agent: PodAgent) -> int:
    reply = agent.client.runtime.ListContainers(cri.ListContainersRequest(), timeout=10)
    return len(reply.containers)


def _run_dirs(agent: PodAgent) -> list[str]:
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
    pod_agent: PodAgent, signum: int, moment: str
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


def test_a_killed_check_leaves_pods_that_the_next_check_removes(pod_agent: PodAgent) -> None:
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


def test_a_second_check_at_once_is_refused(pod_agent: PodAgent) -> None:
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
