"""Running pods outlive containerd's death and the agent's stop, as containerd's shims are meant to.

containerd starts each shim in a process group of its own, with no parent-death
signal: the agent's grace-kill of root.containerd's process group
and containerd's ``setpriv --pdeathsig`` reach containerd, never the shims or
the sandboxes below them.
"""

from __future__ import annotations

import os
import signal
import time

import pytest

from actors.containerd.api.cri import PodRun
from messages.cri.runtime.v1 import api_pb2 as cri
from tests.support.agent import AgentUnderTest
from tests.support.pods import BUSYBOX_REF
from tests.support.processes import pid_alive

pytestmark = [pytest.mark.containerd, pytest.mark.pods, pytest.mark.timeout(240)]

HANDLERS = ("runc", "runsc")


def start_sleepers(agent: AgentUnderTest, tag: str) -> dict[str, PodRun]:
    pods = {}
    for handler in HANDLERS:
        pod = PodRun(client=agent.client, handler=handler, log_dir=agent.base / "logs" / tag)
        pods[handler] = pod
        pod.start_sandbox()
        pod.start_container(BUSYBOX_REF, ["/bin/sleep", "600"])
        pod.wait_state((cri.CONTAINER_RUNNING,), timeout=60)
    return pods


def shim_pids(agent: AgentUnderTest, pods: dict[str, PodRun]) -> dict[str, int]:
    """Each pod's shim: the process whose command line names its sandbox with -id."""
    found = {}
    for handler, pod in pods.items():
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    argv = f.read().split(b"\0")
            except OSError:
                continue
            if b"-id" in argv and pod.sandbox_id.encode() in argv and b"containerd-shim" in argv[0]:
                found[handler] = int(entry)
    assert sorted(found) == sorted(pods), found
    return found


def still_running_and_stoppable(pods: dict[str, PodRun], shims: dict[str, int]) -> None:
    for handler, pod in pods.items():
        assert pid_alive(shims[handler]), handler
        status = pod.client.container_status(pod.container_id)
        assert cri.ContainerState.Name(status.state) == "CONTAINER_RUNNING", handler
        assert pod.client.sandbox_ready(pod.sandbox_id), handler
        pod.stop_container(grace=2)
        assert pod.wait_state((cri.CONTAINER_EXITED,), timeout=60).state == cri.CONTAINER_EXITED
        sandbox = pod.sandbox_id
        pod.remove()
        assert sandbox not in pod.client.sandbox_ids()


def test_pods_keep_running_while_containerd_is_sigkilled_and_restarted(
    pod_agent: AgentUnderTest,
) -> None:
    pods = start_sleepers(pod_agent, "kill")
    try:
        shims = shim_pids(pod_agent, pods)
        restarts = pod_agent.status()["root.containerd"]["restarts"]
        old = pod_agent.containerd_pid()
        # Out of reach of the grace-kill of root.containerd's process group.
        node = pod_agent.status()["root.containerd"]["pid"]
        for shim in shims.values():
            assert os.getpgid(shim) not in (os.getpgid(old), os.getpgid(node))
        os.kill(old, signal.SIGKILL)
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            node = pod_agent.status().get("root.containerd", {})
            if node.get("restarts", 0) > restarts and node.get("state") == "HEALTHY":
                break
            time.sleep(0.1)
        else:
            raise AssertionError(f"containerd not back: {pod_agent.status()}")
        assert pod_agent.containerd_pid() != old
        still_running_and_stoppable(pods, shims)
    finally:
        for pod in pods.values():
            pod.remove()


def test_pods_keep_running_while_the_agent_is_stopped_and_started_again(
    pod_agent: AgentUnderTest,
) -> None:
    pods = start_sleepers(pod_agent, "stop")
    try:
        shims = shim_pids(pod_agent, pods)
        sandbox_pids = {
            h: pod_agent.client.container_status(p.container_id) for h, p in pods.items()
        }
        assert pod_agent.terminate() == 0
        assert all(pid_alive(pid) for pid in shims.values())
        pod_agent.start()
        pod_agent.wait_ready()
        assert sorted(sandbox_pids) == sorted(HANDLERS)
        still_running_and_stoppable(pods, shims)
    finally:
        for pod in pods.values():
            pod.remove()
