"""The agent probes containerd's liveness and exports each probe in a counter and a histogram."""

from __future__ import annotations

import socket
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

from tests.support.agent import DEFAULT_TREE_UP, AgentUnderTest

pytestmark = [pytest.mark.containerd, pytest.mark.timeout(180)]

PROBES_OK = 'node_containerd_containerd_liveness_probes_total{result="ok"}'
PROBES_FAIL = 'node_containerd_containerd_liveness_probes_total{result="fail"}'
SECONDS = "node_containerd_containerd_liveness_probe_duration_seconds_sum"
COUNT = "node_containerd_containerd_liveness_probe_duration_seconds_count"


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


def test_liveness_probes_of_containerd_are_counted_with_their_seconds() -> None:
    base = Path(tempfile.mkdtemp(prefix="nc-e2l-", dir="/tmp"))
    config = base / "agent.toml"
    agent = AgentUnderTest(base, config=config)
    port = _free_port()
    config.write_text(
        '[containerd]\nliveness_interval = "200ms"\n'
        f'[metrics]\nenabled = true\nlisten = "127.0.0.1:{port}"\n'
    )
    agent.start()
    try:
        agent.wait_states(DEFAULT_TREE_UP)
        url = f"http://127.0.0.1:{port}/metrics"
        deadline = time.monotonic() + 30
        samples = _scrape(url)
        while samples.get(PROBES_OK, 0) < 3:
            assert time.monotonic() < deadline, f"fewer than 3 probes answered in 30s: {samples}"
            time.sleep(0.1)
            samples = _scrape(url)
        assert samples[SECONDS] > 0
        assert samples[COUNT] >= 3
        assert PROBES_FAIL not in samples
    finally:
        agent.cleanup()
