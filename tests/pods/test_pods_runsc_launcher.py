"""The runsc launcher with real pods: gVisor's user log, failed starts, exec timeouts.

One agent for the module (the pod tests' fixture), under the runsc on `PATH`: the
system's (Debian 12's), or the one `NC_RUNSC` chose (the matrix's sid run: trixie's).
Each test looks at what is left on the machine the way an operator would: gVisor's
processes by command line, runsc's state files, the shim, CRI's lists.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import grpc
import pytest

from actors.containerd.api.cri import CriError, PodRun
from messages.cri.runtime.v1 import api_pb2 as cri
from tests.support.agent import AgentUnderTest
from tests.support.pods import BUSYBOX_REF
from tests.support.processes import cmdline, pids_mentioning
from tests.support.waiting import in_thread, wait_until

pytestmark = [pytest.mark.containerd, pytest.mark.pods, pytest.mark.timeout(240)]

#: What gVisor tells a pod's owner in its user log (one JSON object a line).
_USER_FACING = ("Unsupported syscall", "Uncaught signal")


def _sandbox_cmdline(sandbox_id: str) -> str:
    """The command line of gVisor's sandbox process (`runsc-sandbox ... boot`) of a pod."""
    pids = [p for p in pids_mentioning(sandbox_id) if cmdline(p).startswith("runsc-sandbox ")]
    assert len(pids) == 1, [cmdline(p) for p in pids_mentioning(sandbox_id)]
    return cmdline(pids[0])


def _runsc_root(agent: AgentUnderTest) -> Path:
    return agent.state / "runsc" / "root" / "k8s.io"


def test_a_runsc_pod_with_a_log_directory_gets_gvisors_user_and_panic_logs_there(
    pod_agent: AgentUnderTest,
) -> None:
    log_dir = pod_agent.base / "logs" / "userlog"
    pod = PodRun(client=pod_agent.client, handler="runsc", log_dir=log_dir)
    try:
        sandbox = pod.start_sandbox()
        boot = _sandbox_cmdline(sandbox)
        assert f"--panic-log={log_dir}/gvisor_panic.log" in boot.split()
        assert any(a.startswith("--user-log-fd=") for a in boot.split())
        # busybox (glibc, static) asks for rseq, which both runsc releases refuse;
        # Debian 12's also tells of the process killed by a signal.
        pod.start_container(BUSYBOX_REF, ["/bin/sh", "-c", "kill -9 $$"])
        pod.wait_state((cri.CONTAINER_EXITED,), timeout=60)
        user_log = log_dir / "gvisor.log"
        wait_until(
            lambda: any(m in user_log.read_text() for m in _USER_FACING),
            timeout=30,
            what=f"gVisor's lines for the pod's owner in {user_log}",
            interval=0.1,
        )
    finally:
        pod.remove()
    lines = [json.loads(line) for line in user_log.read_text().splitlines()]
    assert all({"log", "level", "time"} <= set(line) for line in lines), lines
    assert (log_dir / "gvisor_panic.log").exists()


def test_a_runsc_pod_without_a_log_directory_gets_no_user_log(
    pod_agent: AgentUnderTest,
) -> None:
    pod = PodRun(client=pod_agent.client, handler="runsc", log_dir=Path("/unused"))
    config = pod.config()
    config.log_directory = ""
    request = cri.RunPodSandboxRequest(config=config, runtime_handler="runsc")
    reply = pod_agent.client.runtime.RunPodSandbox(request, timeout=120)
    pod.sandbox_id = reply.pod_sandbox_id
    try:
        boot = _sandbox_cmdline(pod.sandbox_id).split()
    finally:
        pod.remove()
    assert not any(a.startswith("--user-log") for a in boot), boot
    fifo = pod_agent.state / "runsc" / "logs.fifo"
    assert f"--panic-log={fifo}" in boot


def _leftovers(agent: AgentUnderTest, ids: list[str]) -> dict[str, list[str]]:
    """What names any of `ids`: processes (shim, sandbox, gofer, waiter), runsc's state
    files, containerd's task bundles, CRI's sandboxes and containers."""
    bundles = agent.state / "containerd" / "state" / "io.containerd.runtime.v2.task" / "k8s.io"
    root = _runsc_root(agent)
    files = [p.name for p in root.iterdir()] if root.exists() else []
    found = {
        "processes": [cmdline(p) for i in ids for p in pids_mentioning(i)],
        "runsc state": [f for f in files if any(i in f for i in ids)],
        "bundles": [p.name for p in bundles.iterdir() if p.name in ids] if bundles.exists() else [],
        "sandboxes": [s for s in agent.client.sandbox_ids() if s in ids],
        "containers": [c.id for c in agent.client.list_containers() if c.id in ids],
    }
    return {k: v for k, v in found.items() if v}


def test_a_privileged_container_runsc_cannot_start_leaves_nothing_once_its_pod_is_removed(
    pod_agent: AgentUnderTest,
) -> None:
    # containerd grants a privileged container CAP_PERFMON, which Debian 12's runsc
    # does not know: its start fails with the container still `created`.
    pod = PodRun(client=pod_agent.client, handler="runsc", log_dir=pod_agent.base / "logs" / "pv")
    config = pod.config()
    config.linux.security_context.privileged = True
    request = cri.RunPodSandboxRequest(config=config, runtime_handler="runsc")
    pod.sandbox_id = pod_agent.client.runtime.RunPodSandbox(request, timeout=120).pod_sandbox_id
    ids = [pod.sandbox_id]
    try:
        container = cri.ContainerConfig(
            metadata=cri.ContainerMetadata(name="priv"),
            image=cri.ImageSpec(image=BUSYBOX_REF),
            command=["/bin/sleep", "600"],
            log_path="priv.log",
            linux=cri.LinuxContainerConfig(
                security_context=cri.LinuxContainerSecurityContext(privileged=True)
            ),
        )
        created = pod_agent.client.runtime.CreateContainer(
            cri.CreateContainerRequest(
                pod_sandbox_id=pod.sandbox_id, config=container, sandbox_config=config
            ),
            timeout=120,
        )
        ids.append(created.container_id)
        start = cri.StartContainerRequest(container_id=created.container_id)
        try:
            pod_agent.client.runtime.StartContainer(start, timeout=120)
            started = True
        except grpc.RpcError:
            started = False
        if started:
            pytest.skip("this runsc starts a privileged container: nothing fails to clean up")
        pod_agent.client.remove_sandbox(pod.sandbox_id)
    finally:
        pod.remove()
    wait_until(
        lambda: not _leftovers(pod_agent, ids),
        timeout=30,
        what=f"nothing left of the pod; still there: {_leftovers(pod_agent, ids)}",
        interval=0.2,
    )


def _sleeps_in_sandbox(agent: AgentUnderTest, container_id: str) -> int:
    """How many `sleep` processes `runsc ps` shows for a container (it names no arguments)."""
    listing = subprocess.run(
        ["runsc", "--root", str(_runsc_root(agent)), "ps", container_id],
        capture_output=True,
        text=True,
        timeout=30,
    ).stdout
    return sum(1 for line in listing.splitlines()[1:] if line.split()[-1:] == ["sleep"])


def test_an_exec_sync_timeout_under_runsc_ends_the_process_in_the_sandbox(
    pod_agent: AgentUnderTest,
) -> None:
    pod = PodRun(client=pod_agent.client, handler="runsc", log_dir=pod_agent.base / "logs" / "ex")
    try:
        pod.start_sandbox()
        pod.start_container(BUSYBOX_REF, ["/bin/sleep", "600"])
        pod.wait_state((cri.CONTAINER_RUNNING,), timeout=60)
        assert _sleeps_in_sandbox(pod_agent, pod.container_id) == 1
        request = cri.ExecSyncRequest(
            container_id=pod.container_id, cmd=["/bin/sleep", "1000"], timeout=2
        )
        execution = in_thread(pod_agent.client.runtime.ExecSync, request, 20)
        wait_until(
            lambda: _sleeps_in_sandbox(pod_agent, pod.container_id) == 2 or execution.done(),
            timeout=20,
            what="the exec's sleep running in the sandbox",
            interval=0.1,
        )
        with pytest.raises(grpc.RpcError) as raised:
            execution.result(timeout=30)
        # The runtime's timeout (2 s) ended it, not the client's deadline (20 s).
        assert "timeout 2s exceeded" in str(raised.value.details()), raised.value
        wait_until(
            lambda: _sleeps_in_sandbox(pod_agent, pod.container_id) == 1,
            timeout=10,
            what="the exec's sleep gone from the sandbox, the container's still there",
            interval=0.2,
        )
    finally:
        pod.remove()


def test_a_container_whose_program_is_missing_leaves_nothing_once_its_pod_is_removed(
    pod_agent: AgentUnderTest,
) -> None:
    # Its start fails inside the sandbox with the container still `created`; a newer
    # runsc's sandbox also keeps the container's overlay filestore open in its rootfs.
    pod = PodRun(client=pod_agent.client, handler="runsc", log_dir=pod_agent.base / "logs" / "m")
    try:
        ids = [pod.start_sandbox()]
        with pytest.raises(CriError, match="no such file or directory"):
            pod.start_container(BUSYBOX_REF, ["/no/such/program"])
        ids.append(pod.container_id or _only_container(pod_agent, ids[0]))
        pod_agent.client.remove_sandbox(ids[0])
    finally:
        pod.remove()
    wait_until(
        lambda: not _leftovers(pod_agent, ids),
        timeout=30,
        what=f"nothing left of the pod; still there: {_leftovers(pod_agent, ids)}",
        interval=0.2,
    )


def _only_container(agent: AgentUnderTest, sandbox_id: str) -> str:
    ids = [c.id for c in agent.client.list_containers() if c.pod_sandbox_id == sandbox_id]
    assert len(ids) == 1, ids
    return ids[0]
