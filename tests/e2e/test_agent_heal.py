"""Preseeded images heal, and status knows the sandbox image from containerd, end to end.

One agent on the default profile (with a sandbox image of the test's own) and a real
containerd: an image deleted outside the agent comes back from its tarball within
2 s with its pins; one whose tarball went first stays deleted; containerd SIGKILLed
while an image is deleted leaves the record and the store consistent after its
restart; `status --json` shows the sandbox image missing, then present within a
second of its import.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from actors.preseed.service.pins import PINNED_LABEL, PRESEEDED_LABEL
from actors.preseed.service.watch import DEFAULT_QUIET
from tests.support.agent import DEFAULT_TREE_UP, AgentUnderTest
from tests.support.images import small_image, write_oci_archive
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.containerd, pytest.mark.timeout(240)]

KEEP = "docker.io/library/heal-keep:1"
GONE = "docker.io/library/heal-gone:1"
PAUSE = "localhost/heal/pause:1"
PRESEED = "root.containerd.preseed"
#: The promise: a deleted image is back within this many seconds.
HEAL_SECONDS = 2.0


class HealAgent(AgentUnderTest):
    """The e2e agent, with what these tests ask of containerd and of the logs."""

    @property
    def sock(self) -> str:
        return str(self.state / "containerd" / "containerd.sock")

    def ctr(self, *args: str) -> str:
        return subprocess.run(
            ["ctr", "-a", self.sock, "-n", "k8s.io", *args],
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
        ).stdout

    def labels(self, name: str) -> dict[str, str] | None:
        """The image's labels (None: no such image), without CRI's own."""
        rows = [line.split() for line in self.ctr("images", "ls", f"name=={name}").splitlines()[1:]]
        if not rows:
            return None
        text = rows[0][-1]
        found = dict(item.split("=", 1) for item in text.split(",")) if text != "-" else {}
        found.pop("io.cri-containerd.image", None)
        return found

    def preseed_entries(self) -> list[dict]:
        out = self.cli("logs", PRESEED, "--json").stdout
        return [json.loads(line) for line in out.splitlines()]


def _pins(file: str) -> dict[str, str]:
    return {PINNED_LABEL: "pinned", PRESEEDED_LABEL: file}


@pytest.fixture(scope="module")
def agent() -> Iterator[HealAgent]:
    base = Path(tempfile.mkdtemp(prefix="nc-heal-", dir="/tmp"))
    a = HealAgent(base, config=base / "agent.toml")
    images = a.state / "preseed" / "k8s.io"
    images.mkdir(parents=True)
    write_oci_archive(images / "keep.tar", [small_image(KEEP, seed=21)])
    write_oci_archive(images / "gone.tar", [small_image(GONE, seed=22)])
    assert a.config is not None
    a.config.write_text(f'[cri]\nsandbox_image = "{PAUSE}"\n')
    a.start()
    try:
        a.wait_states(DEFAULT_TREE_UP)
        yield a
    finally:
        a.cleanup()


def _sandbox(agent: HealAgent) -> dict | None:
    r = agent.cli("status", "--json", check=False)
    return json.loads(r.stdout)["sandbox_image"] if r.returncode == 0 else None


def test_status_shows_the_sandbox_image_missing_then_present_within_a_second_of_its_import(
    agent: HealAgent,
) -> None:
    missing = wait_until(lambda: _sandbox(agent), 60, "the sandbox image's fact")
    assert missing == {
        "image": PAUSE,
        "namespace": "k8s.io",
        "present": False,
        "tarball_dir": str(agent.state / "preseed" / "k8s.io"),
        "watched": True,
        "dn": PRESEED,
    }
    text = agent.cli("status").stdout
    assert f"warning: sandbox image {PAUSE!r} is missing from namespace 'k8s.io'" in text
    assert "no restart is needed" in text

    staged = agent.base / "pause.tar"
    write_oci_archive(staged, [small_image(PAUSE, seed=23)])
    copied = time.monotonic()
    os.rename(staged, agent.state / "preseed" / "k8s.io" / "pause.tar")
    wait_until(lambda: (_sandbox(agent) or {}).get("present"), 60, "the sandbox image present")
    shown, shown_at = time.monotonic() - copied, time.time()

    imported = [
        e
        for e in agent.preseed_entries()
        if e["message"].startswith("imported preseed bundle 'k8s.io/pause.tar'")
    ]
    assert len(imported) == 1
    # The watch waits out its quiet period and imports; status shows it within a second.
    assert shown_at - imported[0]["time"] < 1.0
    assert shown < DEFAULT_QUIET + 1.0, shown
    assert "warning" not in agent.cli("status").stdout


def test_an_image_deleted_with_ctr_is_imported_again_within_two_seconds_with_its_pins(
    agent: HealAgent,
) -> None:
    assert agent.labels(KEEP) == _pins("k8s.io/keep.tar")

    agent.ctr("images", "rm", KEEP)
    deleted = time.monotonic()
    wait_until(lambda: agent.labels(KEEP) is not None, HEAL_SECONDS + 5, "the image back")
    back = time.monotonic() - deleted

    assert back < HEAL_SECONDS, back
    assert agent.labels(KEEP) == _pins("k8s.io/keep.tar")
    warnings = [e["message"] for e in agent.preseed_entries() if e.get("severity") == "WARNING"]
    assert (
        f"image {KEEP!r} in namespace 'k8s.io' was deleted outside the agent; "
        "importing it again from its tarball 'k8s.io/keep.tar'"
    ) in warnings


def test_the_sandbox_image_deleted_with_ctr_comes_back_pinned(agent: HealAgent) -> None:
    wait_until(lambda: agent.labels(PAUSE) == _pins("k8s.io/pause.tar"), 60, "the pause pins")

    agent.ctr("images", "rm", PAUSE)
    deleted = time.monotonic()
    wait_until(lambda: agent.labels(PAUSE) is not None, 10, "the sandbox image back")

    assert time.monotonic() - deleted < HEAL_SECONDS
    assert agent.labels(PAUSE) == _pins("k8s.io/pause.tar")
    wait_until(lambda: (_sandbox(agent) or {}).get("present"), 60, "status: present again")


def test_an_image_whose_tarball_was_removed_first_stays_deleted(agent: HealAgent) -> None:
    os.unlink(agent.state / "preseed" / "k8s.io" / "gone.tar")
    wait_until(lambda: agent.labels(GONE) == {}, 60, "the unpin of the removed tarball's image")

    agent.ctr("images", "rm", GONE)
    time.sleep(HEAL_SECONDS + 1.0)  # the heal's promise, and a second more: nothing comes back

    assert agent.labels(GONE) is None
    assert not any(
        GONE in e["message"] and "again" in e["message"] for e in agent.preseed_entries()
    )


def _containerd_pid(agent: HealAgent) -> int:
    out = subprocess.run(
        ["pgrep", "-f", f"containerd --config {agent.state}"], capture_output=True, text=True
    ).stdout.split()
    assert len(out) == 1, out
    return int(out[0])


def test_containerd_killed_while_an_image_is_deleted_leaves_record_and_store_consistent(
    agent: HealAgent,
) -> None:
    before = agent.wait_states(DEFAULT_TREE_UP)[PRESEED]
    deleting = subprocess.Popen(
        ["ctr", "-a", agent.sock, "-n", "k8s.io", "images", "rm", KEEP],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    os.kill(_containerd_pid(agent), signal.SIGKILL)
    deleting.wait(30)

    def restarted() -> bool:
        now = agent.status().get(PRESEED, {})
        return now.get("state") == "HEALTHY" and now.get("pid") != before["pid"]

    wait_until(restarted, 90, "the preseed back after containerd's restart")
    assert agent.labels(KEEP) == _pins("k8s.io/keep.tar")
    assert agent.labels(PAUSE) == _pins("k8s.io/pause.tar")
    record = json.loads((agent.state / "preseed-record.json").read_text())
    recorded = {os.path.basename(e["path"]): [i[0] for i in e["images"]] for e in record["entries"]}
    assert recorded == {"keep.tar": [KEEP], "pause.tar": [PAUSE]}
    assert all(agent.labels(name) is not None for names in recorded.values() for name in names)
