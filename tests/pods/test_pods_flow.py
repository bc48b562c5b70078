"""Pods through CRI, as kubelet runs them, under runc and under runsc (gVisor).

One agent for the module (real containerd, runc, runsc), both images preseeded
(never unpacked: CRI unpacks them when the first container needs them).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from actors.containerd.api.cri import PodRun
from messages.cri.runtime.v1 import api_pb2 as cri
from tests.support.agent import AgentUnderTest
from tests.support.pods import BUSYBOX_REF
from tests.support.processes import pids_mentioning
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.containerd, pytest.mark.pods, pytest.mark.timeout(240)]

#: Where containerd, its shims and runc keep things by default: none of it may grow.
SYSTEM_DIRS = ("/run/containerd", "/var/lib/containerd", "/run/runc")
#: The one path containerd's shims insist on: their socket directory (the sockets
#: in it go away with the shims).
SHIM_SOCKET_DIR = "/run/containerd/s"


def _others(path: str) -> bool:
    """Paths a concurrent `ctr run` elsewhere on the machine makes, never CRI: its
    client FIFOs and runc state of namespaces other than k8s.io."""
    if path.startswith("/run/containerd/fifo/"):
        return True
    parts = path.split("/")
    return path.startswith("/run/containerd/runc/") and len(parts) > 4 and parts[4] != "k8s.io"


def system_paths() -> set[str]:
    found: set[str] = set()
    for top in SYSTEM_DIRS:
        for root, dirs, files in os.walk(top):
            found.update(os.path.join(root, name) for name in dirs + files)
    return {p for p in found if not _others(p)} - {SHIM_SOCKET_DIR}


def ctr(agent: AgentUnderTest, *args: str) -> list[str]:
    sock = agent.state / "containerd" / "containerd.sock"
    out = subprocess.run(
        ["ctr", "-a", str(sock), "-n", "k8s.io", *args, "-q"],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout
    return out.split()


def mounts_mentioning(text: str) -> list[str]:
    with open("/proc/self/mounts") as f:
        return [line.split()[1] for line in f if text in line]


@pytest.mark.parametrize("handler", ["runc", "runsc"])
def test_a_pod_runs_to_exit_0_and_leaves_nothing_behind(
    pod_agent: AgentUnderTest, handler: str
) -> None:
    before = system_paths()
    pod = PodRun(
        client=pod_agent.client, handler=handler, log_dir=pod_agent.base / "logs" / handler
    )
    try:
        sandbox = pod.start_sandbox()
        assert pod_agent.client.sandbox_ready(sandbox)
        command = ["/bin/sh", "-c", "echo hello from the pod; dmesg"]
        container = pod.start_container(BUSYBOX_REF, command)
        status = pod.wait_state((cri.CONTAINER_EXITED,), timeout=60)
        log = pod.log_text()
        if handler == "runsc":
            assert (status.exit_code, status.reason) == (0, "Completed"), log
            assert "Starting gVisor..." in log
        else:
            # dmesg may be refused outside gVisor (no CAP_SYSLOG): only the echo counts.
            assert status.reason in ("Completed", "Error"), log
        assert " stdout F hello from the pod\n" in log
        if handler == "runsc":
            lines = pod_agent.cli(
                "logs", "root.containerd.runsc", "--config", str(pod_agent.config)
            ).stdout
            assert sandbox in lines
            assert "main.go" in lines
    finally:
        pod.remove()

    assert sandbox not in pod_agent.client.sandbox_ids()
    assert {sandbox, container} & set(ctr(pod_agent, "containers", "ls")) == set()
    assert {sandbox, container} & set(ctr(pod_agent, "tasks", "ls")) == set()
    wait_until(lambda: not pids_mentioning(sandbox), 30, "no process of the pod", interval=0.1)
    assert mounts_mentioning(sandbox) == [] and mounts_mentioning(container) == []
    wait_until(
        lambda: system_paths() <= before,
        30,
        "no new path under " + ", ".join(SYSTEM_DIRS),
        interval=0.1,
    )


def test_runc_keeps_its_state_under_the_state_directory(pod_agent: AgentUnderTest) -> None:
    pod = PodRun(client=pod_agent.client, handler="runc", log_dir=pod_agent.base / "logs" / "r2")
    try:
        sandbox = pod.start_sandbox()
        assert (pod_agent.state / "runc" / "k8s.io" / sandbox).is_dir()
    finally:
        pod.remove()
    assert not Path("/run/containerd/runc/k8s.io", sandbox).exists()
