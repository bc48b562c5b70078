"""`run` under a stand-in systemd when the tree fails: STOPPING=1 with the failure, exit 1.

No containerd needed: a script stands in for it that answers ``--version`` as
containerd 1.6 does (the agent asks before writing the config) and exits 1 when run,
and restart intensities of 0 make that first exit fail the tree at once.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.support.fake_systemd import FakeSystemd
from tests.support.project import REPO, python_module

pytestmark = pytest.mark.timeout(120)

FAKE_CONTAINERD = """\
#!/bin/sh
if [ "$1" = --version ]; then
    echo "containerd github.com/containerd/containerd 1.6.20~ds1 1.6.20~ds1-1"
    exit 0
fi
exit 1
"""

CONFIG = """\
[containerd]
binary = "{binary}"
[policy."root.containerd"]
max_restarts = 0
[policy."root"]
max_restarts = 0
"""


def test_a_tree_that_fails_says_stopping_with_the_reason_and_never_ready(short_dir: Path):
    systemd = FakeSystemd(str(short_dir / "notify"))
    config = short_dir / "agent.toml"
    fake = short_dir / "containerd"
    fake.write_text(FAKE_CONTAINERD)
    fake.chmod(0o755)
    config.write_text(CONFIG.format(binary=fake))
    env = {
        **os.environ,
        "NODE_CONTAINERD_STATE": str(short_dir / "s"),
        "NOTIFY_SOCKET": systemd.name,
        "WATCHDOG_USEC": "60000000",
    }
    try:
        r = subprocess.run(
            python_module("actors.agent.cli", "run", "--config", str(config)),
            capture_output=True,
            text=True,
            env=env,
            cwd=REPO,
            timeout=100,
        )
        assert r.returncode == 1, r.stderr
    finally:
        systemd.close()  # the agent has exited: everything it sent is collected
    datagrams = systemd.datagrams
    failure = r.stderr.splitlines()[-1].removeprefix("node-containerd: stopped: ")
    assert failure.endswith(f"containerd {str(fake)!r} exited: exit status 1"), r.stderr
    assert datagrams[0] == "STATUS=starting containerd"
    assert datagrams[-1] == f"STOPPING=1\nSTATUS=stopping: failed: {failure}"
    assert "STATUS=root.containerd DEAD, restarting (node-containerd status shows why)" in datagrams
    assert not any(d.startswith("READY=1") for d in datagrams)
