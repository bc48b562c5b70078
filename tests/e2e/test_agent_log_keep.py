"""`[log] keep` reaches the running agent's log tree: `logs` shows that many, the newest."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

from tests.support.agent import DEFAULT_TREE_UP, AgentUnderTest
from tests.support.waiting import wait_until

pytestmark = pytest.mark.timeout(120)


def test_the_log_tree_keeps_log_keep_entries_per_dn_the_newest():
    base = Path(tempfile.mkdtemp(prefix="nc-keep-", dir="/tmp"))
    config = base / "agent.toml"
    config.write_text("[log]\nkeep = 64\n")
    agent = AgentUnderTest(base, config=config)
    try:
        agent.start()
        agent.wait_states(DEFAULT_TREE_UP)
        fd = os.open(agent.state / "runsc" / "logs.fifo", os.O_WRONLY | os.O_NONBLOCK)
        try:
            os.write(fd, b"".join(b"keep line %03d\n" % i for i in range(200)))
        finally:
            os.close(fd)

        def kept() -> list[str]:
            out = agent.cli("logs", "root.containerd.runsc", "-n", "all").stdout
            return [line for line in out.splitlines() if "keep line" in line]

        wait_until(lambda: any(line.endswith("keep line 199") for line in kept()), 20, "line 199")
        lines = agent.cli("logs", "root.containerd.runsc", "-n", "all").stdout.splitlines()
        assert len(lines) == 64
        assert [line.rsplit(" ", 1)[-1] for line in lines] == [f"{i:03d}" for i in range(136, 200)]
    finally:
        agent.cleanup()
        shutil.rmtree(base, ignore_errors=True)
