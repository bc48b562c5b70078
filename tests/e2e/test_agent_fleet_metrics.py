"""What an operator alerts on, from a running agent: its metrics address in its log
(port 0 too), per-process figures per DN and containerd's, the versions, and
`/healthz` following root.containerd (503 while it is SIGSTOPped, 200 after)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.support.agent import DEFAULT_TREE_UP, AgentUnderTest
from tests.support.prometheus import naming_problems, parse
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.containerd, pytest.mark.timeout(240)]

RSS = "node_containerd_process_resident_memory_bytes"


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def test_process_series_build_info_and_healthz_follow_the_running_agent():
    base = Path(tempfile.mkdtemp(prefix="nc-e2f-", dir="/tmp"))
    config = base / "agent.toml"
    agent = AgentUnderTest(base, config=config)
    config.write_text(
        '[containerd]\nliveness_interval = "200ms"\nliveness_timeout = "500ms"\n'
        '[metrics]\nenabled = true\nlisten = "127.0.0.1:0"\n'
    )
    agent.start()
    try:
        agent.wait_states(DEFAULT_TREE_UP)
        found = wait_until(
            lambda: re.search(
                r"metrics at (http://\S+/metrics), health at (\S+)", agent.stderr_path.read_text()
            ),
            timeout=30,
            what="the metrics address in the agent's log",
        )
        metrics_url, health_url = found.group(1), found.group(2)
        wait_until(lambda: _get(health_url) == (200, "ok\n"), 30, "healthz 200", interval=0.2)
        types, samples = parse(_get(metrics_url)[1])
        assert naming_problems(types) == []
        # The root runnable's own process is DONE once it started its children; the
        # runnables are forked from the zygote (`spawn = "zygote"`, the default).
        for dn, process in (
            ("root", "supervisor"),
            ("root", "zygote"),
            ("root.containerd", "runnable"),
            ("root.containerd.preseed", "runnable"),
            ("root.containerd.runsc", "runnable"),
            ("root.containerd", "containerd"),
        ):
            assert samples[(RSS, (("dn", dn), ("process", process)))] > 0, (dn, process)
        version = subprocess.run(
            ["containerd", "--version"], capture_output=True, text=True, check=True
        ).stdout.split()[2]
        runsc = subprocess.run(["runsc", "--version"], capture_output=True, text=True)
        [info] = [labels for name, labels in samples if name == "node_containerd_build_info"]
        assert dict(info)["containerd_version"] == version
        assert dict(info)["runsc_version"] == runsc.stdout.splitlines()[0].split()[-1]

        containerd = agent.containerd_pid()
        os.kill(containerd, signal.SIGSTOP)
        try:
            wait_until(lambda: _get(health_url)[0] == 503, 60, "healthz 503", interval=0.2)
            status, reason = _get(health_url)
            assert reason.startswith("root.containerd is NODE_STATE_"), reason
        finally:
            try:
                os.kill(containerd, signal.SIGCONT)
            except ProcessLookupError:
                pass  # the agent killed it and started another
        wait_until(lambda: _get(health_url) == (200, "ok\n"), 90, "healthz 200 again", interval=0.2)
    finally:
        agent.cleanup()
