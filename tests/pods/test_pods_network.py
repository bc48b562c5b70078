"""A host-network pod under runsc: the host's network by default, the operator's flag wins."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from actors.containerd.api.cri import PodRun
from messages.cri.runtime.v1 import api_pb2 as cri
from tests.support.agent import AgentUnderTest
from tests.support.pods import BUSYBOX_REF, start_pod_agent

pytestmark = [pytest.mark.containerd, pytest.mark.pods, pytest.mark.timeout(240)]


def interfaces(proc_net_dev: str) -> set[str]:
    """The interface names of a /proc/net/dev text (its two header lines skipped)."""
    return {line.split(":")[0].strip() for line in proc_net_dev.splitlines()[2:] if ":" in line}


def pod_interfaces(agent: AgentUnderTest, name: str) -> set[str]:
    """The interfaces a host-network busybox pod under runsc sees."""
    pod = PodRun(client=agent.client, handler="runsc", log_dir=agent.base / "logs" / name)
    try:
        pod.start_sandbox()
        pod.start_container(BUSYBOX_REF, ["/bin/cat", "/proc/net/dev"])
        status = pod.wait_state((cri.CONTAINER_EXITED,), timeout=60)
        log = pod.log_text()
        assert (status.exit_code, status.reason) == (0, "Completed"), log
    finally:
        pod.remove()
    lines = [line.split(" ", 3)[3] for line in log.splitlines() if " stdout " in line]
    return interfaces("\n".join(lines))


@pytest.fixture
def no_network_agent(pod_images: dict[str, Path]) -> Iterator[AgentUnderTest]:
    agent = start_pod_agent(pod_images, runsc_flags=("--network=none",))
    try:
        yield agent
    finally:
        agent.cleanup()


def test_a_host_network_pod_under_runsc_sees_the_hosts_interfaces(
    pod_agent: AgentUnderTest,
) -> None:
    with open("/proc/net/dev") as f:
        host = interfaces(f.read())
    assert len(host) > 1, host
    assert pod_interfaces(pod_agent, "hostnet") == host


def test_the_operators_network_flag_wins_over_the_host_network(
    no_network_agent: AgentUnderTest,
) -> None:
    assert pod_interfaces(no_network_agent, "none") == {"lo"}
