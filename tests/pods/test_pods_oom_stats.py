"""A container over its memory limit, and `ContainerStats`, under runc and under runsc.

What an operator sees (README, "Pods: runc and runsc through CRI", OOM and stats):

- runc: the kernel kills the process over the container's limit; the runc shim watches
  the container's memory cgroup, and CRI reports `OOMKilled`, exit 137.
- runsc: the container's own limit is not enforced. gVisor runs every container of a
  pod inside one sandbox process, and the container's host cgroup holds none of it;
  the container gets the memory it asks for and ends `Completed`. A limit on the pod's
  cgroup (its `cgroup_parent`, as kubelet sets one) is enforced on the whole sandbox:
  the host kills the sandbox, the container ends with `Error` (not `OOMKilled`: the
  runc shim's OOM watch is on the cgroup of the pid it holds, which for a runsc
  container is not the sandbox's), and the pod is NOTREADY.
- `ContainerStats` answers under both: the runc shim reads the cgroup of the pid it
  holds. Under runc that is the container's own cgroup; under runsc it is the host
  cgroup of the pid the launcher hands the shim, not the container's usage inside
  gVisor.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from actors.containerd.api.cri import PodRun
from messages.cri.runtime.v1 import api_pb2 as cri
from tests.support.agent import AgentUnderTest
from tests.support.pods import BUSYBOX_REF
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.containerd, pytest.mark.pods, pytest.mark.timeout(300)]

CGROUP_V1 = Path("/sys/fs/cgroup")
#: The container's limit: far below what `dd` asks for.
LIMIT = 32 << 20
#: The pod's limit in `test_a_runsc_pod_over_its_cgroups_limit_loses_its_sandbox`: room
#: for gVisor's sandbox and gofer, not for `dd`'s buffer.
POD_LIMIT = 200 << 20
#: One read of 256 MiB: more than `LIMIT`; a read of 512 MiB: more than `POD_LIMIT`.
DD_256M = ["/bin/sh", "-c", "echo start; exec dd if=/dev/zero of=/dev/null bs=256M count=1"]
DD_512M = ["/bin/sh", "-c", "echo start; exec dd if=/dev/zero of=/dev/null bs=512M count=2"]


def pod(agent: AgentUnderTest, handler: str, cgroup_parent: str = "") -> PodRun:
    run = PodRun(
        client=agent.client,
        handler=handler,
        log_dir=agent.base / "logs" / uuid.uuid4().hex[:8],
        cgroup_parent=cgroup_parent,
    )
    run.start_sandbox()
    return run


def test_a_runc_container_over_its_memory_limit_is_oomkilled(pod_agent: AgentUnderTest) -> None:
    run = pod(pod_agent, "runc")
    try:
        run.start_container(BUSYBOX_REF, DD_256M, memory_limit=LIMIT)
        status = run.wait_state((cri.CONTAINER_EXITED,), timeout=90)
        assert (status.reason, status.exit_code) == ("OOMKilled", 137), run.log_text()
        assert "records out" not in run.log_text()
    finally:
        run.remove()


def test_a_runsc_container_over_its_own_memory_limit_is_not_limited(
    pod_agent: AgentUnderTest,
) -> None:
    run = pod(pod_agent, "runsc")
    try:
        run.start_container(BUSYBOX_REF, DD_256M, memory_limit=LIMIT)
        status = run.wait_state((cri.CONTAINER_EXITED,), timeout=90)
        # dd exits 0 only once it has read its 256 MiB into one buffer: eight times the limit.
        assert (status.reason, status.exit_code) == ("Completed", 0), run.log_text()
        assert pod_agent.client.sandbox_ready(run.sandbox_id)
    finally:
        run.remove()


def _memory_v1() -> Path:
    memory = CGROUP_V1 / "memory"
    if not (memory / "memory.limit_in_bytes").is_file():
        pytest.skip("no cgroup v1 memory controller at /sys/fs/cgroup/memory")
    return memory


@pytest.fixture
def limited_parent() -> Iterator[str]:
    """A pod cgroup of the test's own with a memory limit of `POD_LIMIT` (cgroupfs form)."""
    memory = _memory_v1()
    name = f"/nc-test-pod-{uuid.uuid4().hex[:8]}"
    (memory / name.lstrip("/")).mkdir()
    (memory / name.lstrip("/") / "memory.limit_in_bytes").write_text(str(POD_LIMIT))
    try:
        yield name
    finally:
        # runc and runsc made the pod's path under every controller; empty once removed.
        for controller in sorted(CGROUP_V1.iterdir()):
            top = controller / name.lstrip("/")
            if top.is_dir():
                for d in sorted(top.rglob("*"), key=lambda p: -len(p.parts)):
                    if d.is_dir():
                        d.rmdir()
                top.rmdir()


def test_a_runsc_pod_over_its_cgroups_limit_loses_its_sandbox_and_says_error(
    pod_agent: AgentUnderTest, limited_parent: str
) -> None:
    run = pod(pod_agent, "runsc", cgroup_parent=limited_parent)
    try:
        run.start_container(BUSYBOX_REF, DD_512M, memory_limit=LIMIT)
        status = run.wait_state((cri.CONTAINER_EXITED,), timeout=120)
        assert status.reason == "Error", (status.reason, status.exit_code, run.log_text())
        assert status.exit_code != 0
        assert "records out" not in run.log_text()
        # The sandbox's own exit reaches CRI apart from the container's.
        sandbox = run.sandbox_id
        wait_until(lambda: not pod_agent.client.sandbox_ready(sandbox), 60, "the pod NOTREADY")
        failures = CGROUP_V1 / "memory" / limited_parent.lstrip("/") / "memory.failcnt"
        assert int(failures.read_text()) > 0
    finally:
        run.remove()


def _cpu_usage_ns(pid: int) -> int:
    """Total CPU time of `pid`'s cgroup: cpuacct.usage (v1) or cpu.stat (v2), in ns."""
    for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        if "cpuacct" in controllers.split(","):
            base = next(d for d in CGROUP_V1.iterdir() if "cpuacct" in d.name.split(","))
            return int((base / path.lstrip("/") / "cpuacct.usage").read_text())
    unified = [ln.split(":", 2)[2] for ln in Path(f"/proc/{pid}/cgroup").read_text().splitlines()]
    stat = (CGROUP_V1 / unified[0].lstrip("/") / "cpu.stat").read_text().split()
    return int(stat[stat.index("usage_usec") + 1]) * 1000


def _shims_pid(agent: AgentUnderTest, container_id: str) -> int:
    """The pid the shim holds for the container (CRI's verbose `info`)."""
    info = json.loads(agent.client.container_status_verbose(container_id).info["info"])
    return int(info["pid"])


@pytest.mark.parametrize("handler", ["runc", "runsc"])
def test_container_stats_are_those_of_the_cgroup_of_the_pid_the_shim_holds(
    pod_agent: AgentUnderTest, handler: str
) -> None:
    run = pod(pod_agent, handler)
    try:
        loop = ["/bin/sh", "-c", "while :; do :; done"]
        container = run.start_container(BUSYBOX_REF, loop, memory_limit=LIMIT)
        run.wait_state((cri.CONTAINER_RUNNING,), timeout=60)
        pid = _shims_pid(pod_agent, container)
        before = _cpu_usage_ns(pid)
        stats = pod_agent.client.container_stats(container)
        after = _cpu_usage_ns(pid)
        assert stats.attributes.id == container
        assert stats.attributes.metadata.name == "c"
        assert before <= stats.cpu.usage_core_nano_seconds.value <= after
        assert stats.memory.working_set_bytes.value > 0
        if handler == "runc":
            # The container's own cgroup: its busy loop, within its limit.
            assert os.readlink(f"/proc/{pid}/exe").endswith("busybox")
            assert stats.memory.working_set_bytes.value <= LIMIT
    finally:
        run.remove()
