"""A sandbox image missing after preseed: one WARNING naming it and its preseed place, and
`status` showing it from the preseed's fact (what containerd said), gone once it is imported."""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

import pytest

from tests.support.pods import PAUSE_REF, agent_for_pods

pytestmark = [pytest.mark.containerd, pytest.mark.pods, pytest.mark.timeout(240)]


def test_a_missing_sandbox_image_is_warned_about_once_and_shown_by_status(
    pod_images: dict[str, Path],
) -> None:
    agent = agent_for_pods(Path(tempfile.mkdtemp(prefix="nc-pod-", dir="/tmp")))
    try:
        agent.preseed(pod_images["busybox"])  # not the pause image
        agent.start()
        agent.wait_ready()
        where = str(agent.state / "preseed" / "k8s.io")
        message = (
            f"sandbox image {PAUSE_REF!r} is missing from namespace 'k8s.io': pods cannot "
            f"start without a registry; copy its image tarball into {where!r}: the preseed's "
            "watch imports it when the copy is complete; no restart is needed"
        )
        logs = agent.cli(
            "logs",
            "root.containerd.preseed",
            "--severity",
            "WARNING",
            "--leveled-only",
            "--json",
            "--config",
            str(agent.config),
        ).stdout
        entries = [json.loads(line) for line in logs.splitlines()]
        warnings = [e["message"] for e in entries if e.get("severity") == "WARNING"]
        assert warnings == [message], logs
        status = agent.cli("status", "--config", str(agent.config)).stdout
        assert f"      warning: {message}\n" in status, status

        agent.preseed(pod_images["pause"])
        deadline = time.monotonic() + 30
        while "warning:" in agent.cli("status", "--config", str(agent.config)).stdout:
            assert time.monotonic() < deadline, "status still warns after the import"
            time.sleep(0.1)
        doc = json.loads(agent.cli("status", "--json", "--config", str(agent.config)).stdout)
        assert doc["sandbox_image"]["present"] is True
    finally:
        agent.cleanup()
