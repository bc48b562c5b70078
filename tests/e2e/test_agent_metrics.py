"""The agent's Prometheus endpoint, fed by the tree, the log readers and the preseed."""

from __future__ import annotations

import json
import os
import socket
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

from tests.support.agent import DEFAULT_TREE_UP, AgentUnderTest
from tests.support.images import small_image, write_oci_archive

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
