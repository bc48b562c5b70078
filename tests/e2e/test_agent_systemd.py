"""The agent under a stand-in systemd: the notify sequence over a real datagram socket,
with the real containerd, and syslog priorities on stderr when stderr is the journal."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import pytest
from test_agent import Agent

pytestmark = [pytest.mark.timeout(240), pytest.mark.containerd]

READY = "READY=1\nSTATUS=ready: containerd is up, preseed finished"
READY_PRESEED_FAILED = (
    "READY=1\nSTATUS=ready; preseed failed, retrying "
    "(node-containerd logs root.containerd.preseed shows why)"
)
#: A line as the stderr sink writes it, behind a syslog priority.
JOURNAL_LINE = re.compile(r"<[2346]>root\S*  [IWEFR]\d{4} ")


class FakeSystemd:
    """An abstract-namespace datagram socket collecting what the agent sends."""

    def __init__(self) -> None:
        self.name = f"@nc-e2e-notify-{os.getpid()}-{time.monotonic_ns()}"
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(b"\0" + self.name[1:].encode())
        self.cond = threading.Condition()
        self.datagrams: list[str] = []
        threading.Thread(target=self._loop, daemon=True).start()

    def _loop(self) -> None:
        while True:
            try:
                data = self.sock.recv(65536)
            except OSError:
                return
            with self.cond:
                self.datagrams.append(data.decode())
                self.cond.notify_all()

    def wait_for(self, text: str, *, after: int = 0, timeout: float = 90.0) -> int:
        with self.cond:
            ok = self.cond.wait_for(lambda: text in self.datagrams[after:], timeout)
            assert ok, f"no {text!r} within {timeout}s: {self.datagrams}"
            return self.datagrams.index(text, after)


def _start(agent: Agent, systemd: FakeSystemd, config: Path | None = None) -> None:
    """Start the agent as systemd would: notify socket, watchdog, stderr to the journal."""
    err = agent.base / "agent.err"
    err.touch()
    st = os.stat(err)
    agent.env.update(
        NOTIFY_SOCKET=systemd.name,
        WATCHDOG_USEC="4000000",
        JOURNAL_STREAM=f"{st.st_dev}:{st.st_ino}",
    )
    agent.start(config)


def _stop(agent: Agent) -> int:
    assert agent.proc is not None
    agent.proc.send_signal(signal.SIGTERM)
    return agent.proc.wait(60)


def test_a_normal_start_says_ready_once_then_keeps_the_watchdog_fed_and_says_stopping():
    base = Path(tempfile.mkdtemp(prefix="nc-sd-", dir="/tmp"))
    agent, systemd = Agent(base), FakeSystemd()
    try:
        _start(agent, systemd)
        ready = systemd.wait_for(READY)
        nodes = agent.status()
        assert nodes["root.containerd"]["state"] == "HEALTHY"
        # HEALTHY when the preseed keeps watching its directory, DONE when it does not.
        assert nodes["root.containerd.preseed"]["state"] in ("HEALTHY", "DONE")
        assert systemd.datagrams[0] == "STATUS=starting containerd"
        second = systemd.wait_for("WATCHDOG=1", after=ready + 1, timeout=30)
        systemd.wait_for("WATCHDOG=1", after=second + 1, timeout=30)

        assert _stop(agent) == 0
        stopping = systemd.wait_for("STOPPING=1\nSTATUS=stopping: received SIGTERM", timeout=10)
        assert stopping > ready
        assert systemd.datagrams.count(READY) == 1
        # Nothing after STOPPING=1 but keep-alives: the shutdown's own changes are not news.
        assert set(systemd.datagrams[stopping + 1 :]) <= {"WATCHDOG=1"}
        lines = (base / "agent.err").read_text().splitlines()
        assert lines and all(JOURNAL_LINE.match(line) for line in lines), lines[:5]
        # containerd's own INFO lines stay in the log tree; what the journal gets of its
        # output (here its expected missing-CNI error, reworded) carries a priority too.
        assert not any("] starting containerd" in line for line in lines)
        assert any(
            line.startswith("<6>root.containerd  I") and "] containerd found no CNI" in line
            for line in lines
        )
    finally:
        agent.stop()
        systemd.sock.close()
        shutil.rmtree(base, ignore_errors=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_failed_preseed_still_says_ready_with_a_status_an_error_priority_and_a_metric():
    base = Path(tempfile.mkdtemp(prefix="nc-sd-", dir="/tmp"))
    agent, systemd = Agent(base), FakeSystemd()
    port = _free_port()
    config = base / "agent.toml"
    config.write_text(f'[metrics]\nenabled = true\nlisten = "127.0.0.1:{port}"\n')
    (agent.state / "preseed" / "k8s.io").mkdir(parents=True)
    (agent.state / "preseed" / "k8s.io" / "bad.tar").write_bytes(b"not a tarball\n" * 100)
    try:
        _start(agent, systemd, config)
        systemd.wait_for(READY_PRESEED_FAILED)
        assert agent.status(config)["root.containerd"]["state"] == "HEALTHY"
        text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read()
        failures = 'node_containerd_preseed_failures_total{file="bad.tar",namespace="k8s.io"}'
        assert any(
            line.startswith(failures + " ") and float(line.split()[-1]) >= 1
            for line in text.decode().splitlines()
        ), text
        assert _stop(agent) == 0
        lines = (base / "agent.err").read_text().splitlines()
        assert any(
            line.startswith("<3>root.containerd.preseed  E") and "bad.tar" in line for line in lines
        ), lines[-20:]
    finally:
        agent.stop()
        systemd.sock.close()
        shutil.rmtree(base, ignore_errors=True)
