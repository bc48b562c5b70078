"""A runsc pod that logs heavily while the pump (root.containerd.runsc) is stopped.

With `--strace`, gVisor writes a debug line per system call of the pod into the FIFO.
SIGSTOP the pump: nothing reads the FIFO, its buffer (1 MiB, raised by root.containerd
with F_SETPIPE_SZ) fills, and runsc's writes block, so every task of the pod that makes
a system call waits. The pump's heartbeat stops too: the tree kills it after three
missed intervals and starts a new one, which drains the FIFO, and the pod goes on. The
pod is held for no longer than that (README: "What a stopped pump costs a sandbox").
"""

from __future__ import annotations

import fcntl
import os
import re
import signal
import struct
import termios
from collections.abc import Iterator
from pathlib import Path

import pytest

from actors.containerd.api.cri import PodRun
from actors.containerd.fifo import open_fifo, pipe_max_size
from messages.cri.runtime.v1 import api_pb2 as cri
from tests.support.agent import AgentUnderTest
from tests.support.containerd_matrix import describe_runsc, runsc_release
from tests.support.pods import BUSYBOX_REF, start_pod_agent
from tests.support.processes import pid_alive
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.containerd, pytest.mark.pods, pytest.mark.timeout(300)]

PUMP = "root.containerd.runsc"
#: Counts as fast as the shell can: one `write` per number, each a line of gVisor's strace.
COUNTER = ["/bin/sh", "-c", "i=0; while :; do i=$((i+1)); echo $i; done"]
#: Seconds for the heartbeat's detection (3 × 1 s) and the pump's restart (a backoff of
#: at most 0.75 s and a process start), with room for 2 cores shared with other tests.
DETECTED_AND_RESTARTED = 30.0


@pytest.fixture(scope="module")
def strace_agent(pod_images: dict[str, Path]) -> Iterator[AgentUnderTest]:
    agent = start_pod_agent(pod_images, runsc_flags=["--strace"])
    try:
        yield agent
    finally:
        agent.cleanup()


def counted(pod: PodRun) -> int:
    """The last number the counter wrote to its CRI log."""
    numbers = re.findall(r" stdout F (\d+)\n", pod.log_text())
    return int(numbers[-1]) if numbers else 0


def unread(fd: int) -> int:
    """Bytes waiting in the FIFO's kernel buffer."""
    return int(struct.unpack("i", fcntl.ioctl(fd, termios.FIONREAD, b"\0\0\0\0"))[0])


def test_the_fifos_buffer_is_raised_to_the_kernels_cap_and_logged(
    strace_agent: AgentUnderTest,
) -> None:
    fd = open_fifo(str(strace_agent.state / "runsc" / "logs.fifo"), nonblocking=True)
    try:
        size = fcntl.fcntl(fd, fcntl.F_GETPIPE_SZ)
    finally:
        os.close(fd)
    assert size == min(1 << 20, pipe_max_size())
    config = ["--config", str(strace_agent.config)]
    holder = strace_agent.cli("logs", "root.containerd", "-n", "all", *config).stdout
    assert f"buffer {size} bytes" in holder
    pump = strace_agent.cli("logs", PUMP, "-n", "all", *config).stdout
    assert f"buffer {size} bytes" in pump


def test_the_pods_run_under_the_runsc_pytests_header_names(strace_agent: AgentUnderTest) -> None:
    # NC_RUNSC (the matrix's sid run: trixie's) put it first on PATH; the agent found it there.
    pod = PodRun(client=strace_agent.client, handler="runsc", log_dir=strace_agent.base / "logs")
    try:
        pod.start_sandbox()
    finally:
        pod.remove()
    config = ["--config", str(strace_agent.config)]
    lines = strace_agent.cli("logs", PUMP, "-n", "all", *config).stdout
    versions = set(re.findall(r"\] Version ([^\s,]+)", lines))
    assert versions == {f"0.0~{runsc_release()}.0"}, describe_runsc()


def test_a_stopped_pump_holds_a_logging_runsc_pod_only_until_it_is_restarted(
    strace_agent: AgentUnderTest,
) -> None:
    pod = PodRun(client=strace_agent.client, handler="runsc", log_dir=strace_agent.base / "logs")
    fifo = open_fifo(str(strace_agent.state / "runsc" / "logs.fifo"), nonblocking=True)
    try:
        pod.start_sandbox()
        pod.start_container(BUSYBOX_REF, COUNTER)
        wait_until(lambda: counted(pod) > 1000, 60, "the counter counting")
        before = strace_agent.status()[PUMP]
        os.kill(before["pid"], signal.SIGSTOP)
        size = fcntl.fcntl(fifo, fcntl.F_GETPIPE_SZ)
        # Nothing reads: gVisor's lines fill the buffer, and its writes then block.
        wait_until(lambda: unread(fifo) > size - (64 << 10), 60, "the fifo full", interval=0.05)
        held = counted(pod)

        def restarted() -> bool:
            node = strace_agent.status().get(PUMP, {})
            return node.get("state") == "HEALTHY" and node.get("pid") != before["pid"]

        wait_until(restarted, DETECTED_AND_RESTARTED, "the pump restarted", interval=0.1)
        assert not pid_alive(before["pid"])  # killed by the tree, not woken up
        assert strace_agent.status()[PUMP]["restarts"] == before["restarts"] + 1
        # The new pump drains the fifo, and the pod counts on.
        wait_until(
            lambda: counted(pod) > held + 1000, DETECTED_AND_RESTARTED, "the pod counting again"
        )
        assert pod.client.container_status(pod.container_id).state == cri.CONTAINER_RUNNING
    finally:
        os.close(fifo)
        pod.remove()
