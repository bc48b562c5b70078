"""Pods with their own network namespace under runc: the default CNI network, and the operator's.

Every agent here runs in a network namespace of its own (`start_pod_agent(own_netns=True)`):
the bridge, its private addresses and the NAT and firewall rules CNI adds exist only
there, and pods talk only to each other and to the bridge.
"""

from __future__ import annotations

import ipaddress
import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from actors.containerd.api.cri import PodRun
from actors.containerd.runtimes.cni import BRIDGE, DEFAULT_CONFLIST, NETWORK_NAME
from messages.cri.runtime.v1 import api_pb2 as cri
from tests.support.agent import AgentUnderTest
from tests.support.pods import BUSYBOX_REF, start_pod_agent

pytestmark = [pytest.mark.containerd, pytest.mark.pods, pytest.mark.timeout(300)]

#: The default `[cni] subnet`, and its gateway: the bridge's address.
SUBNET = ipaddress.ip_network("10.213.0.0/24")
GATEWAY = "10.213.0.1"
#: The operator's network of the replacement test.
OPERATOR_SUBNET = ipaddress.ip_network("10.214.9.0/24")


def network_tools_missing() -> list[str]:
    """What these tests need besides the pod tests' tools: a netns, CNI's plugins, iptables."""
    path = f"{os.environ.get('PATH', os.defpath)}:/usr/sbin:/sbin"
    missing = [
        t for t in ("unshare", "nsenter", "ip", "iptables") if not shutil.which(t, path=path)
    ]
    if not any(Path(d, "bridge").exists() for d in ("/usr/lib/cni", "/opt/cni/bin")):
        missing.append("containernetworking-plugins")
    return missing


@pytest.fixture(scope="module")
def net_agent(pod_images: dict[str, Path]) -> Iterator[AgentUnderTest]:
    if missing := network_tools_missing():
        pytest.fail(f"missing {', '.join(missing)}: run scripts/setup")
    agent = start_pod_agent(pod_images, own_netns=True)
    try:
        yield agent
    finally:
        agent.cleanup()


@pytest.fixture
def fresh_net_agent(pod_images: dict[str, Path]) -> Iterator[AgentUnderTest]:
    if missing := network_tools_missing():
        pytest.fail(f"missing {', '.join(missing)}: run scripts/setup")
    agent = start_pod_agent(pod_images, own_netns=True)
    try:
        yield agent
    finally:
        agent.cleanup()


def in_agents_netns(agent: AgentUnderTest, *argv: str) -> str:
    """The stdout of `argv` run in the agent's network namespace."""
    r = subprocess.run(
        agent.in_netns(list(argv)), capture_output=True, text=True, timeout=30, check=True
    )
    return r.stdout


def pod(agent: AgentUnderTest, name: str) -> PodRun:
    return PodRun(
        client=agent.client, handler="runc", log_dir=agent.base / "logs" / name, own_network=True
    )


def stdout_of(run: PodRun) -> list[str]:
    """The container's stdout lines, from its CRI log."""
    return [line.split(" ", 3)[3] for line in run.log_text().splitlines() if " stdout " in line]


def loaded_networks(agent: AgentUnderTest) -> list[str]:
    """The names of the CNI networks CRI has loaded (its verbose status)."""
    info = agent.client.status(verbose=True).info
    return [n["Config"]["Name"] for n in json.loads(info["cniconfig"])["Networks"]]


def wait_for_networks(agent: AgentUnderTest, want: list[str], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while (got := loaded_networks(agent)) != want:
        assert time.monotonic() < deadline, f"CRI loaded {got}, not {want}, after {timeout}s"
        time.sleep(0.1)


def test_a_pod_gets_an_address_on_the_bridge_and_reaches_the_node_and_another_pod(
    net_agent: AgentUnderTest,
) -> None:
    server, client = pod(net_agent, "server"), pod(net_agent, "client")
    try:
        server.start_sandbox()
        client.start_sandbox()
        server_ip = net_agent.client.sandbox_ip(server.sandbox_id)
        client_ip = net_agent.client.sandbox_ip(client.sandbox_id)
        addresses = {ipaddress.ip_address(a) for a in (server_ip, client_ip)}
        assert len(addresses) == 2 and all(a in SUBNET for a in addresses), addresses
        assert ipaddress.ip_address(GATEWAY) not in addresses
        # The bridge holds the gateway address, with one veth per pod, in the agent's
        # namespace only.
        bridge = json.loads(in_agents_netns(net_agent, "ip", "-j", "addr", "show", BRIDGE))
        assert [
            (a["local"], a["prefixlen"]) for a in bridge[0]["addr_info"] if a["family"] == "inet"
        ] == [(GATEWAY, 24)]
        ports = json.loads(in_agents_netns(net_agent, "ip", "-j", "link", "show", "master", BRIDGE))
        assert len(ports) == 2, ports
        assert not Path(f"/sys/class/net/{BRIDGE}").exists()

        server.start_container(
            BUSYBOX_REF, ["sh", "-c", "echo hello-from-the-server | nc -l -p 7777"]
        )
        server.wait_state((cri.CONTAINER_RUNNING,), timeout=60)
        client.start_container(
            BUSYBOX_REF,
            [
                "sh",
                "-c",
                f"ping -c 1 -W 5 {GATEWAY} || exit 2; "
                f"for i in $(seq 100); do nc -w 5 {server_ip} 7777 && exit 0; sleep 0.1; done; "
                "exit 3",
            ],
        )
        status = client.wait_state((cri.CONTAINER_EXITED,), timeout=60)
        out = stdout_of(client)
        assert status.exit_code == 0, out
        assert f"64 bytes from {GATEWAY}: seq=0 ttl=64" in " ".join(out), out
        assert out[-1] == "hello-from-the-server", out
    finally:
        server.remove()
        client.remove()
    # CNI's DEL took the pods' ports and their NAT rules away again.
    assert (
        json.loads(in_agents_netns(net_agent, "ip", "-j", "link", "show", "master", BRIDGE)) == []
    )
    assert "CNI-" not in in_agents_netns(net_agent, "iptables", "-t", "nat", "-S", "POSTROUTING")


def operator_conflist(data_dir: Path) -> str:
    return json.dumps(
        {
            "cniVersion": "0.4.0",
            "name": "operator-net",
            "plugins": [
                {
                    "type": "bridge",
                    "bridge": "optest0",
                    "isGateway": True,
                    "ipam": {
                        "type": "host-local",
                        "ranges": [[{"subnet": str(OPERATOR_SUBNET)}]],
                        "dataDir": str(data_dir),
                    },
                }
            ],
        }
    )


def test_a_config_the_operator_writes_into_conf_dir_replaces_the_default_one(
    fresh_net_agent: AgentUnderTest,
) -> None:
    agent = fresh_net_agent
    conf_dir = agent.state / "cni" / "net.d"
    assert os.listdir(conf_dir) == [DEFAULT_CONFLIST]
    wait_for_networks(agent, ["cni-loopback", NETWORK_NAME])
    # Written in place, as `cp` and network add-ons do: CRI watches the directory and
    # reloads on a write (containerd 1.6 ignores the creation, and so a rename), and
    # the operator's file comes first by name.
    (conf_dir / "10-operator.conflist").write_text(operator_conflist(agent.base / "leases"))
    wait_for_networks(agent, ["cni-loopback", "operator-net"])
    run = pod(agent, "operator")
    try:
        run.start_sandbox()
        assert ipaddress.ip_address(agent.client.sandbox_ip(run.sandbox_id)) in OPERATOR_SUBNET
    finally:
        run.remove()
    # At the next start, the agent's own file gives way to the operator's.
    assert agent.terminate() == 0
    agent.start()
    agent.wait_ready()
    assert os.listdir(conf_dir) == ["10-operator.conflist"]
    wait_for_networks(agent, ["cni-loopback", "operator-net"])
