"""The state directory's disk full, with the real agent on a small tmpfs.

The agent runs with its state directory (containerd's root and metadata, the import
record, the FIFO, the control socket) on a 32 MiB tmpfs and its preseed directory and
JSON log elsewhere. The disk is filled to the last byte, containerd is SIGKILLed (so the
tree restarts on the full disk and preseed runs again) and a tarball is waiting:

* containerd starts again on the full disk and root.containerd is HEALTHY;
* preseed fails, and says so: the FATAL line names the tarball and "no space left on
  device"; the import record it cannot save is a warning naming the file;
* it retries no faster than its backoff: each retry comes no sooner than the delay the
  supervisor drew, and the drawn delays follow the policy's growth (200 ms ×2 up to 2 s,
  ±50 %);
* once space is freed, the next retry imports the image, complete, and the agent stops
  with exit status 0.

An agent started on an already full state disk must refuse with one clear line naming
the state directory (or the file in it) it could not write, and the cause, and exit 1.

The tests mount a tmpfs (they run as root, as the agent does); where mounting is not
permitted they skip and say so.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.agent import AgentUnderTest, Nodes
from tests.support.faults import fill, small_disk
from tests.support.images import ImageSpec, random_layer, write_oci_archive
from tests.support.processes import child_named
from tests.support.waiting import wait_until

PRESEED = "root.containerd.preseed"
IMAGE = "full.local/img:v1"
#: The preseed policy of these tests: backoff_initial, multiplier, max, jitter.
INITIAL, MULTIPLIER, MAXIMUM, JITTER = 0.2, 2.0, 2.0, 0.5

pytestmark = pytest.mark.containerd


@pytest.fixture
def workdir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="nc-df-", dir="/tmp") as d:
        yield Path(d)


@pytest.fixture
def state_disk(workdir: Path) -> Iterator[Path]:
    try:
        with small_disk(workdir / "st", "32m") as disk:
            yield disk
    except PermissionError as e:
        pytest.skip(f"a full disk needs a tmpfs mount, not permitted here: {e}")


def _config(workdir: Path, state: Path) -> Path:
    path = workdir / "agent.toml"
    path.write_text(
        f'state_dir = "{state}"\n'
        "[preseed]\n"
        f'dir = "{workdir / "preseed"}"\n'
        "[log]\n"
        "stderr = false\n"
        f'json_file = "{workdir / "log.jsonl"}"\n'
        f'[policy."{PRESEED}"]\n'
        f'backoff_initial = "{int(INITIAL * 1000)}ms"\n'
        f"backoff_multiplier = {MULTIPLIER}\n"
        f'backoff_max = "{int(MAXIMUM * 1000)}ms"\n'
        f"backoff_jitter = {JITTER}\n"
    )
    return path


def _log(workdir: Path) -> list[dict[str, Any]]:
    path = workdir / "log.jsonl"
    if not path.exists():
        return []
    lines = path.read_text().splitlines()
    return [json.loads(line) for line in lines if line.endswith("}")]


def _settled(agent: AgentUnderTest) -> Nodes | None:
    nodes = agent.status()
    if nodes and all(n["state"] in ("HEALTHY", "DONE") for n in nodes.values()):
        return nodes
    return None


def _preseed_log(workdir: Path, since: float) -> list[dict[str, Any]]:
    return [
        e
        for e in _log(workdir)
        if e.get("dn") == PRESEED and e.get("kind") == "leveled" and e["time"] >= since
    ]


@pytest.mark.timeout(120)
def test_a_full_state_disk_fails_preseed_clearly_and_it_retries_no_faster_than_its_backoff(
    workdir: Path, state_disk: Path
) -> None:
    config = _config(workdir, state_disk)
    (workdir / "preseed" / "k8s.io").mkdir(parents=True)
    agent = AgentUnderTest(workdir, config=config, state=state_disk)
    agent.start()
    try:
        nodes = wait_until(lambda: _settled(agent), 60, "the tree to come up", interval=0.05)
        filler = fill(state_disk)
        layer = random_layer(4 << 20, seed=5, spool_dir=workdir / "spool")
        write_oci_archive(workdir / "full.tar", [ImageSpec(name=IMAGE, layers=(layer,))])
        os.replace(workdir / "full.tar", workdir / "preseed" / "k8s.io" / "full.tar")
        containerd = child_named(nodes["root.containerd"]["pid"], "containerd")
        assert containerd is not None
        since = time.time()
        os.kill(containerd, signal.SIGKILL)

        def four_deaths() -> list[dict[str, Any]] | None:
            deaths = [
                e
                for e in _preseed_log(workdir, since)
                if e["severity"] == "FATAL" and " died: " in e["message"]
            ]
            return deaths if len(deaths) >= 4 else None

        deaths = wait_until(four_deaths, 60, "four preseed deaths", interval=0.05)
        nodes = agent.status()
        assert {dn: n["state"] for dn, n in nodes.items() if dn != PRESEED} == {
            "root": "DONE",
            "root.containerd": "HEALTHY",
            "root.containerd.runsc": "HEALTHY",
        }
        cause = (
            r"PreseedError: 1 of 1 preseed files failed: failed to import preseed image "
            r"'k8s\.io/full\.tar': .*no space left on device"
        )
        assert [
            bool(re.fullmatch(rf"node '{PRESEED}' died: {cause}", d["message"], re.DOTALL))
            for d in deaths
        ] == [True] * len(deaths), deaths[0]["message"]
        entries = _preseed_log(workdir, since)
        record = str(state_disk / "preseed-record.json")
        assert any(
            e["severity"] == "WARNING"
            and repr(record) in e["message"]
            and "No space left on device" in e["message"]
            for e in entries
        )

        delays = [
            float(m.group(1))
            for e in entries
            if (
                m := re.fullmatch(
                    rf"rescheduling supervised node '{PRESEED}' with backoff ([0-9.]+) s",
                    e["message"],
                )
            )
        ]
        times = [d["time"] for d in deaths]
        gaps = [b - a for a, b in itertools.pairwise(times)]
        floors = [(1 - JITTER) * min(INITIAL * MULTIPLIER**i, MAXIMUM) for i in range(len(gaps))]
        assert [g >= d for g, d in zip(gaps, delays, strict=False)] == [True] * len(gaps), (
            gaps,
            delays,
        )
        assert [d >= f for d, f in zip(delays, floors, strict=False)] == [True] * len(gaps), (
            delays,
            floors,
        )

        os.unlink(filler)
        done = wait_until(
            lambda: (agent.status().get(PRESEED) or {}).get("state") == "HEALTHY",
            30,
            "preseed HEALTHY after space was freed",
            interval=0.05,
        )
        assert done
        r = subprocess.run(
            [
                "ctr",
                "-a",
                str(state_disk / "containerd" / "containerd.sock"),
                "-n",
                "k8s.io",
                "images",
                "check",
            ],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
        rows = {row.split()[0]: row.split()[3] for row in r.stdout.splitlines()[1:]}
        assert rows.get(IMAGE) == "complete"
    finally:
        code = agent.terminate(60)
        if code is None:
            agent.kill()
    assert code == 0, agent.stderr()


@pytest.mark.timeout(60)
def test_an_agent_started_on_a_full_state_disk_exits_1_with_one_line_naming_path_and_cause(
    workdir: Path, state_disk: Path
) -> None:
    config = _config(workdir, state_disk)
    fill(state_disk)

    r = AgentUnderTest(workdir, config=config, state=state_disk).cli(
        "run", "--config", str(config), check=False, timeout=50
    )

    assert r.returncode == 1
    assert re.fullmatch(
        rf"node-containerd: cannot prepare the state directory: "
        rf"'{re.escape(str(state_disk))}(/[^']+)?': No space left on device\n",
        r.stderr,
    ), r.stderr
