"""Two runsc sandboxes at once: each one's lines of `root.containerd.runsc`, and only its.

Pod A runs (`sleep`); pod B runs the image's own command to its end, as `check` does,
and is removed, while A still runs. Their lines interleave in the one FIFO. The test
knows whose a line is without trusting the attribution: a line that names a pod's
sandbox or container ID (a command line, a cgroup path, a spec) can only be that pod's.
Host-network pods: no network of their own, but the agent is in its own netns anyway.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from actors.containerd.api.cri import PodRun
from messages.cri.runtime.v1 import api_pb2 as cri
from tests.support.agent import AgentUnderTest
from tests.support.pods import BUSYBOX_REF, start_pod_agent
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.containerd, pytest.mark.pods, pytest.mark.timeout(240)]

DN = "root.containerd.runsc"


@pytest.fixture(scope="module")
def pod_agent(pod_images: dict[str, Path]) -> Iterator[AgentUnderTest]:
    agent = start_pod_agent(pod_images, own_netns=True)
    try:
        yield agent
    finally:
        agent.cleanup()


def logs(agent: AgentUnderTest, *args: str) -> list[dict[str, Any]]:
    r = agent.cli("logs", DN, "--json", "-n", "all", "--config", str(agent.config), *args)
    return [json.loads(line) for line in r.stdout.splitlines()]


def text(row: dict[str, Any]) -> str:
    return row["data"] if row["kind"] == "raw" else row["raw"] or ""


def created(row: dict[str, Any], sandbox: str) -> bool:
    """Whether `row` is the command line of `runsc create` of `sandbox`."""
    line = text(row)
    return "Args: [" in line and " create " in line and line.endswith(f" {sandbox}]")


def logs_once_deleted(agent: AgentUnderTest, sandbox: str) -> list[dict[str, Any]] | None:
    """The log once it holds the end of `runsc delete --force <sandbox>` (the last command)."""
    rows = logs(agent)
    pids = {r.get("pid") for r in rows if f"delete --force {sandbox}]" in text(r)}
    done = [r for r in rows if r.get("pid") in pids and r["message"].startswith("Exiting with")]
    return rows if done else None


def test_each_of_two_sandboxes_gets_its_own_lines_and_no_line_of_the_other(pod_agent):
    a = PodRun(client=pod_agent.client, handler="runsc", log_dir=pod_agent.base / "a")
    b = PodRun(client=pod_agent.client, handler="runsc", log_dir=pod_agent.base / "b")
    try:
        a.start_sandbox()
        a.start_container(BUSYBOX_REF, ["sleep", "1000"])
        a.wait_state((cri.CONTAINER_RUNNING,), 60)
        b.start_sandbox()
        b.start_container(BUSYBOX_REF, None)  # the image's own command, as `check` runs it
        assert b.wait_state((cri.CONTAINER_EXITED,), 60).exit_code == 0
        ids = {a.sandbox_id: a.sandbox_id, a.container_id: a.sandbox_id}
        ids |= {b.sandbox_id: b.sandbox_id, b.container_id: b.sandbox_id}
        b_sandbox, b_container = b.sandbox_id, b.container_id
        b.remove()
        rows = wait_until(
            lambda: logs_once_deleted(pod_agent, b_sandbox),
            60,
            "the end of pod B's last runsc command in the log",
        )
        assert a.client.container_status(a.container_id).state == cri.CONTAINER_RUNNING

        # Each line that names one pod's ID is that pod's, or nobody's: never the other's.
        for row in rows:
            named = {sandbox for key, sandbox in ids.items() if key in text(row)}
            sandbox = row["fields"].get("sandbox")
            assert sandbox is None or named <= {sandbox}, row
            container = row["fields"].get("container")
            assert container is None or sandbox is None or ids[container] == sandbox, row

        # B's life: from its sandbox's `runsc create` to its last `runsc delete`, A running.
        start = next(i for i, r in enumerate(rows) if created(r, b_sandbox))
        window = rows[start:]
        attributed = [r for r in window if r["fields"].get("sandbox")]
        assert len(attributed) >= 0.95 * len(window), (len(attributed), len(window))
        raws = [r for r in window if r["kind"] == "raw"]
        assert raws and all(r["fields"].get("sandbox") == b_sandbox for r in raws)

        # The filters: exactly the lines attributed to B, raw ones too.
        mine = logs(pod_agent, "--sandbox", b_sandbox[:12])
        assert [r["seq"] for r in mine] == [
            r["seq"] for r in logs(pod_agent) if r["fields"].get("sandbox") == b_sandbox
        ]
        assert len(mine) > 1000 and {r["kind"] for r in mine} == {"leveled", "raw"}
        assert not any(key in text(r) for r in mine for key in (a.sandbox_id, a.container_id))
        theirs = logs(pod_agent, "--container", b_container[:12])
        assert theirs and {r["fields"]["container"] for r in theirs} == {b_container}
        assert any(f"start {b_container}]" in text(r) for r in theirs)
        # A container's line from before runsc said which sandbox it is in has no sandbox.
        assert {r["fields"].get("sandbox") for r in theirs} <= {b_sandbox, None}
        assert {r["seq"] for r in theirs if "sandbox" in r["fields"]} < {r["seq"] for r in mine}
    finally:
        b.remove()
        a.remove()
