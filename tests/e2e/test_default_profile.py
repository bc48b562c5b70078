"""The README's promises about the default profile, tested on the default profile itself.

No config file: the agent runs `default.toml` as shipped. A stand-in `containerd`
first on `PATH` answers `--version` as containerd 1.6 does (the agent asks before it
writes the config) and exits 1 whenever it is started, i.e. a containerd that keeps
crashing.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

REPO = Path(__file__).resolve().parents[2]

FAKE_CONTAINERD = """\
#!/bin/sh
if [ "$1" = --version ]; then
    echo "containerd github.com/containerd/containerd 1.6.20~ds1 1.6.20~ds1-1"
    exit 0
fi
exit 1
"""


@pytest.mark.once
def test_a_containerd_that_keeps_crashing_makes_the_agent_exit_non_zero_in_about_a_minute(
    short_dir: Path,
) -> None:
    bin_dir = short_dir / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "containerd"
    fake.write_text(FAKE_CONTAINERD)
    fake.chmod(0o755)
    env = {
        **os.environ,
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "NODE_CONTAINERD_STATE": str(short_dir / "s"),
    }
    env.pop("NOTIFY_SOCKET", None)
    t0 = time.monotonic()
    r = subprocess.run(
        [sys.executable, "-m", "actors.agent.cli", "run"],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=200,
    )
    took = time.monotonic() - t0
    assert r.returncode == 1, r.stderr[-2000:]
    last = r.stderr.splitlines()[-1]
    assert last.startswith("node-containerd: stopped: "), last
    assert "restart intensity" in last and "root.containerd" in last, last
    # 10 restarts backing off 0.5 s × 1.5 (± 50 %) take about a minute.
    assert 20 < took < 180, took
