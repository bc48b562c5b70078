"""The agent under a stand-in systemd: the notify sequence over a real datagram socket,
with the real containerd, and syslog priorities on stderr when stderr is the journal."""

from __future__ import annotations

import os
import re
import socket
import tempfile
import urllib.request
from pathlib import Path

import pytest

from tests.support.agent import AgentUnderTest
from tests.support.fake_systemd import FakeSystemd

pytestmark = [pytest.mark.timeout(240), pytest.mark.containerd]

READY = "READY=1\nSTATUS=ready: containerd is up, preseed finished"
READY_PRESEED_FAILED = (
    "READY=1\nSTATUS=ready; preseed failed, retrying "
    "(node-containerd logs root.containerd.preseed shows why)"
)
#: A line as the stderr sink writes it, behind a syslog priority.
JOURNAL_LINE = re.compile(r"<[2346]>root\S*  [IWEFR]\d{4} ")


def _start(agent: AgentUnderTest, systemd: FakeSystemd) -> None:
    """Start the agent as systemd would: notify socket, watchdog, stderr to the journal."""
    err = agent.base / "agent.err"
    err.touch()
    st = os.stat(err)
    agent.env.update(
        NOTIFY_SOCKET=systemd.name,
        WATCHDOG_USEC="4000000",
        JOURNAL_STREAM=f"{st.st_dev}:{st.st_ino}",
    )
    agent.start()


def test_a_normal_start_says_ready_once_then_keeps_the_watchdog_fed_and_says_stopping():
    base = Path(tempfile.mkdtemp(prefix="nc-sd-", dir="/tmp"))
    agent, systemd = AgentUnderTest(base), FakeSystemd()
    try:
        _start(agent, systemd)
        ready = systemd.wait_for(READY, timeout=90)
        nodes = agent.status()
        assert nodes["root.containerd"]["state"] == "HEALTHY"
        # HEALTHY when the preseed keeps watching its directory, DONE when it does not.
        assert nodes["root.containerd.preseed"]["state"] in ("HEALTHY", "DONE")
        assert systemd.datagrams[0] == "STATUS=starting containerd"
        second = systemd.wait_for("WATCHDOG=1", after=ready + 1, timeout=30)
        systemd.wait_for("WATCHDOG=1", after=second + 1, timeout=30)

        assert agent.terminate(60) == 0
        stopping = systemd.wait_for("STOPPING=1\nSTATUS=stopping: received SIGTERM", timeout=10)
        assert stopping > ready
        assert systemd.datagrams.count(READY) == 1
        # Nothing after STOPPING=1 but keep-alives: the shutdown's own changes are not news.
        assert set(systemd.datagrams[stopping + 1 :]) <= {"WATCHDOG=1"}
        lines = (base / "agent.err").read_text().splitlines()
        assert lines and all(JOURNAL_LINE.match(line) for line in lines), lines[:5]
        # containerd's own INFO lines stay in the log tree; what the journal gets of its
        # output carries a priority like every other line (checked above).
        assert not any("] starting containerd" in line for line in lines)
    finally:
        agent.cleanup()
        systemd.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_failed_preseed_still_says_ready_with_a_status_an_error_priority_and_a_metric():
    base = Path(tempfile.mkdtemp(prefix="nc-sd-", dir="/tmp"))
    config = base / "agent.toml"
    agent, systemd = AgentUnderTest(base, config=config), FakeSystemd()
    port = _free_port()
    config.write_text(f'[metrics]\nenabled = true\nlisten = "127.0.0.1:{port}"\n')
    (agent.state / "preseed" / "k8s.io").mkdir(parents=True)
    (agent.state / "preseed" / "k8s.io" / "bad.tar").write_bytes(b"not a tarball\n" * 100)
    try:
        _start(agent, systemd)
        systemd.wait_for(READY_PRESEED_FAILED, timeout=90)
        assert agent.status()["root.containerd"]["state"] == "HEALTHY"
        text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read()
        failures = 'node_containerd_preseed_failures_total{file="bad.tar",namespace="k8s.io"}'
        assert any(
            line.startswith(failures + " ") and float(line.split()[-1]) >= 1
            for line in text.decode().splitlines()
        ), text
        assert agent.terminate(60) == 0
        lines = (base / "agent.err").read_text().splitlines()
        assert any(
            line.startswith("<3>root.containerd.preseed  E") and "bad.tar" in line for line in lines
        ), lines[-20:]
    finally:
        agent.cleanup()
        systemd.close()
