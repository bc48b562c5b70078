"""The agent's Prometheus endpoint, fed by the tree, the log readers and the preseed."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import grpc
import pytest

from actors.agent.control.wire import channel_target, facts_from_proto
from actors.containerd.core.dns import PRESEED_DN
from actors.preseed.importing import IMPORTING_FACT
from messages.control import control_pb2 as control
from messages.control import control_pb2_grpc as control_grpc
from tests.support.agent import DEFAULT_TREE_UP, AgentUnderTest
from tests.support.faults import big_archive
from tests.support.images import small_image, write_oci_archive
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.containerd, pytest.mark.timeout(180)]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _scrape(url: str) -> dict[str, float]:
    text = urllib.request.urlopen(url, timeout=10).read().decode()
    samples = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, value = line.rsplit(" ", 1)
            samples[key] = float(value)
    return samples


def test_metrics_show_node_states_preseeded_images_and_log_bytes():
    base = Path(tempfile.mkdtemp(prefix="nc-e2m-", dir="/tmp"))
    config = base / "agent.toml"
    agent = AgentUnderTest(base, config=config)
    port = _free_port()
    config.write_text(f'[metrics]\nenabled = true\nlisten = "127.0.0.1:{port}"\n')
    (agent.state / "preseed" / "k8s.io").mkdir(parents=True)
    write_oci_archive(
        agent.state / "preseed" / "k8s.io" / "m.tar",
        [
            small_image("docker.io/library/m:1", seed=3),
            small_image("docker.io/library/n:1", seed=4),
        ],
    )
    agent.start()
    try:
        agent.wait_states(DEFAULT_TREE_UP)
        url = f"http://127.0.0.1:{port}/metrics"
        deadline = time.monotonic() + 10
        while True:
            samples = _scrape(url)
            # The node's own sandbox image (imported first) and the tarball's two.
            imported = samples.get('node_containerd_preseed_images_total{namespace="k8s.io"}')
            if imported == 3 or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        healthy = (
            'monogon_supervisor_dn_state_total{dn="root.containerd",state="NODE_STATE_HEALTHY"}'
        )
        assert samples[healthy] == 1
        assert samples['node_containerd_preseed_images_total{namespace="k8s.io"}'] == 3
        assert samples['node_containerd_preseed_bytes_total{namespace="k8s.io"}'] > 0
        assert samples['node_containerd_log_bytes_total{dn="root.containerd"}'] > 1000
    finally:
        agent.cleanup()


def test_a_tarball_named_in_bytes_that_are_not_utf8_fails_alone_named_escaped_everywhere():
    """Issue 20 item 5: its failure metric crashed the preseed, and no later file came in."""
    base = Path(tempfile.mkdtemp(prefix="nc-e2m-", dir="/tmp"))
    config = base / "agent.toml"
    agent = AgentUnderTest(base, config=config)
    port = _free_port()
    config.write_text(
        f'[metrics]\nenabled = true\nlisten = "127.0.0.1:{port}"\n[preseed]\nparallel = 1\n'
    )
    namespace = agent.state / "preseed" / "k8s.io"
    namespace.mkdir(parents=True)
    with open(os.fsencode(namespace) + b"/a-bad\xff\x1b[2J.tar", "wb") as f:
        f.write(b"not a tarball" * 100)
    write_oci_archive(namespace / "b.tar", [small_image("docker.io/library/after:1", seed=5)])
    shown = "a-bad\\xff\\x1b[2J.tar"
    label = 'file="a-bad\\\\xff\\\\x1b[2J.tar"'  # the exposition format doubles backslashes
    failures = f'node_containerd_preseed_failures_total{{{label},namespace="k8s.io"}}'
    images = 'node_containerd_preseed_images_total{namespace="k8s.io"}'
    agent.start()
    try:
        url = f"http://127.0.0.1:{port}/metrics"
        deadline = time.monotonic() + 90
        samples: dict[str, float] = {}
        while samples.get(images, 0) < 2 or not samples.get(failures):
            assert time.monotonic() < deadline, (samples, agent.stderr())
            assert agent.exited() is None, agent.stderr()
            time.sleep(0.2)
            try:
                samples = _scrape(url)
            except OSError:
                continue
        assert samples[images] == 2  # b.tar and the node's own sandbox image
        logs = agent.cli("logs", "root.containerd.preseed", "--config", str(config)).stdout
        assert f"failed to import preseed image 'k8s.io/{shown}': " in logs
        assert "imported preseed bundle 'k8s.io/b.tar'" in logs
        assert "crashed" not in logs
        nodes = {n["dn"]: n for n in json.loads(agent.cli("status", "--json").stdout)["nodes"]}
        error = nodes["root.containerd.preseed"]["last_error"] or ""
        assert f"'k8s.io/{shown}'" in error, nodes
    finally:
        agent.cleanup()


def _preseed_facts(socket_path: Path) -> dict[str, object] | None:
    """The preseed node's facts, read straight from the control socket (fast to poll)."""
    with grpc.insecure_channel(channel_target(socket_path)) as channel:
        reply = control_grpc.ControlStub(channel).Status(control.StatusRequest(), timeout=10)
    for node in reply.nodes:
        if node.dn == PRESEED_DN:
            return facts_from_proto(node)
    return None


def test_status_shows_an_import_under_way_and_not_after_it_and_histograms_observe_it():
    """Issue 21 item 5 and issue 22 item 3: the `importing` fact, the import histograms."""
    base = Path(tempfile.mkdtemp(prefix="nc-e2i-", dir="/tmp"))
    config = base / "agent.toml"
    agent = AgentUnderTest(base, config=config)
    port = _free_port()
    # No liveness probes: containerd is stopped for a moment below, mid-import.
    config.write_text(
        '[containerd]\nliveness_interval = "off"\n'
        f'[metrics]\nenabled = true\nlisten = "127.0.0.1:{port}"\n'
    )
    big = big_archive(base)
    (agent.state / "preseed" / "k8s.io").mkdir(parents=True)
    agent.start()
    containerd: int | None = None
    try:
        agent.wait_states(DEFAULT_TREE_UP)
        containerd = agent.containerd_pid()
        sock = agent.state / "control.sock"
        # A rename: the watch sees the whole file at once.
        os.replace(big, agent.state / "preseed" / "k8s.io" / "big.tar")
        under_way = wait_until(
            lambda: (_preseed_facts(sock) or {}).get(IMPORTING_FACT),
            120,
            "the preseed reports its import under way",
            interval=0.02,
        )
        # containerd stopped: the import cannot end while the CLI looks.
        os.kill(containerd, signal.SIGSTOP)
        try:
            text = agent.cli("status", "--config", str(config)).stdout
            doc = json.loads(agent.cli("status", "--json", "--config", str(config)).stdout)
        finally:
            os.kill(containerd, signal.SIGCONT)
        assert [p["file"] for p in under_way] == ["k8s.io/big.tar"]
        assert re.search(
            r"^    root\.containerd\.preseed .*\n(      .*\n)*"
            r"      importing k8s\.io/big\.tar: \d+ MiB of 2\d\d MiB \(\d+%\), \d+ MiB/s$",
            text,
            re.M,
        ), text
        nodes = {n["dn"]: n for n in doc["nodes"]}
        (shown,) = nodes[PRESEED_DN]["facts"][IMPORTING_FACT]
        assert shown["file"] == "k8s.io/big.tar"
        assert 0 < shown["bytes_done"] <= shown["bytes_total"]
        assert shown["bytes_total"] >= 256 << 20

        url = f"http://127.0.0.1:{port}/metrics"
        count = 'node_containerd_preseed_import_duration_seconds_count{namespace="k8s.io"}'
        # The node's own sandbox image, then big.tar.
        wait_until(lambda: _scrape(url).get(count) == 2, 120, "big.tar imported", interval=0.2)
        samples = _scrape(url)
        size = 'node_containerd_preseed_import_bytes_bucket{le="+Inf",namespace="k8s.io"}'
        assert samples[size] == 2
        assert samples['node_containerd_preseed_import_bytes_sum{namespace="k8s.io"}'] >= 256 << 20
        assert (
            samples['node_containerd_preseed_import_duration_seconds_sum{namespace="k8s.io"}'] > 0
        )
        # Ended: gone from status, as data and as text.
        doc = json.loads(agent.cli("status", "--json", "--config", str(config)).stdout)
        nodes = {n["dn"]: n for n in doc["nodes"]}
        assert IMPORTING_FACT not in nodes[PRESEED_DN]["facts"], nodes[PRESEED_DN]
        assert "importing" not in agent.cli("status", "--config", str(config)).stdout
    finally:
        if containerd is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(containerd, signal.SIGCONT)
        agent.cleanup()


def test_containerd_answers_on_its_metrics_address_when_the_key_turns_it_on():
    """Issue 22 item 3: `[containerd] metrics_address` turns on containerd's own /v1/metrics."""
    base = Path(tempfile.mkdtemp(prefix="nc-e2c-", dir="/tmp"))
    config = base / "agent.toml"
    agent = AgentUnderTest(base, config=config)
    port = _free_port()
    config.write_text(f'[containerd]\nmetrics_address = "127.0.0.1:{port}"\n')
    agent.start()
    try:
        agent.wait_states(DEFAULT_TREE_UP)
        url = f"http://127.0.0.1:{port}/v1/metrics"
        with urllib.request.urlopen(url, timeout=10) as answer:
            status, body = answer.status, answer.read().decode()
        assert status == 200
        # containerd's own families, in the text format: its gRPC server's counters.
        assert "# TYPE grpc_server_handled_total counter" in body, body[:2000]
        up = wait_until(lambda: "is up:" in agent.stderr() and agent.stderr(), 30, "the up line")
        assert f", containerd's metrics at {url}" in up
    finally:
        agent.cleanup()


def _scrape_in(agent: AgentUnderTest, url: str) -> dict[str, float]:
    """`_scrape` run in the agent's network namespace (where its metrics listen)."""
    code = "import sys, urllib.request; print(urllib.request.urlopen(sys.argv[1]).read().decode())"
    r = subprocess.run(
        agent.in_netns([sys.executable, "-c", code, url]),
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    samples = {}
    for line in r.stdout.splitlines():
        if line and not line.startswith("#"):
            key, value = line.rsplit(" ", 1)
            samples[key] = float(value)
    return samples


@pytest.mark.timeout(600)
def test_check_reports_each_pod_sandboxs_start_to_the_agents_histogram():
    """Issue 22 item 3: `check` times RunPodSandbox and the agent's /metrics shows it."""
    base = Path(tempfile.mkdtemp(prefix="nc-e2k-", dir="/tmp"))
    config = base / "agent.toml"
    agent = AgentUnderTest(base, config=config, own_netns=True)
    config.write_text('[metrics]\nenabled = true\nlisten = "127.0.0.1:9464"\n')
    agent.start()
    try:
        agent.wait_states(DEFAULT_TREE_UP)
        url = "http://127.0.0.1:9464/metrics"
        count = 'node_containerd_check_sandbox_start_duration_seconds_count{handler="runc"}'
        assert count not in _scrape_in(agent, url)
        r = agent.cli("check", "--json", "--config", str(config), check=False, timeout=400)
        checks = {c["name"]: c for c in json.loads(r.stdout)["checks"]}
        assert checks["pod under runc starts and exits 0"]["ok"], r.stdout
        assert "did not reach the agent's metrics" not in r.stderr
        samples = _scrape_in(agent, url)
        assert samples[count] == 1
        total = 'node_containerd_check_sandbox_start_duration_seconds_sum{handler="runc"}'
        assert samples[total] > 0
        inf = (
            'node_containerd_check_sandbox_start_duration_seconds_bucket{handler="runc",le="+Inf"}'
        )
        assert samples[inf] == 1
    finally:
        agent.cleanup()
