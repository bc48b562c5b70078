"""`node-containerd check` on a good node, and naming the cause on broken ones."""

from __future__ import annotations

import json
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from pod_agent import BUSYBOX_REF, PAUSE_REF, PodAgent, new_agent

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
    assert sorted(p.name for p in (pod_agent.state / "run").iterdir()) == ["containerd-notify.sock"]


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


def test_check_without_an_agent_says_so_in_one_line_with_exit_3() -> None:
    agent = PodAgent(Path(tempfile.mkdtemp(prefix="nc-pod-", dir="/tmp")))
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

    agent = PodAgent(Path(tempfile.mkdtemp(prefix="nc-pod-", dir="/tmp")))
    try:
        results = run_checks(load_config(agent.config, check_binaries=False))
        lines = [f"{r.name}: {'ok' if r.ok else 'FAIL: ' + str(r.cause)}" for r in results]
        sock = agent.state / "containerd" / "containerd.sock"
        assert lines[0].startswith(f"containerd answers on {str(sock)!r}: FAIL: Version failed: ")
        cause = "FAIL: containerd does not answer (see above)"
        assert lines[1:] == [
            f"the sandbox image is present: {cause}",
            f"pod under runc starts and exits 0: {cause}",
            f"pod under runsc starts and exits 0: {cause}",
            f"runsc's debug lines reach root.containerd.runsc: {cause}",
        ]
    finally:
        agent.cleanup()
