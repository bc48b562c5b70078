"""root.containerd and its children under a real Supervisor, with the real containerd.

The root of each tree is the test kit's `group` runnable, starting one child
`containerd` (`actors.containerd.process:run`), so the DNs are the agent's own:
`root.containerd`, `root.containerd.runsc`, `root.containerd.preseed`.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from actors.containerd.logpump import READ_SIZE
from actors.logtree import LogReader, RawEntry
from actors.supervisor.core.events import RunnableSpec
from actors.supervisor.core.policy import PolicyRule, PolicySet
from actors.supervisor.process.childlog import CHUNK_BYTES
from actors.supervisor.runtime.actor import Supervisor
from actors.supervisor.testing.kit import Probe, StateRecorder
from messages.specs import spec_to_wire
from tests.support.containerd_daemon import ContainerdDaemon
from tests.support.processes import pid_alive
from tests.support.programs.fifo_writer import numbered_line
from tests.support.project import python_env, python_module
from tests.support.specs import containerd_spec_in
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.containerd, pytest.mark.timeout(120)]

CONTAINERD = shutil.which("containerd") or "/usr/bin/containerd"
CD, RUNSC, PRESEED = "root.containerd", "root.containerd.runsc", "root.containerd.preseed"
FAST = {"backoff_initial": 0.1, "backoff_max": 2.0, "grace_period": 5.0, "heartbeat_interval": 0.5}
LINES = 100_000
EXPECTED = [numbered_line(i)[:-1] for i in range(LINES)] + [b"END"]


class ContainerdTree:
    """A Supervisor running root → containerd, its state changes, its logs."""

    def __init__(self, base: Path, probe: Probe, config: Path) -> None:
        self.base = base
        self.probe = probe
        self.spec = containerd_spec_in(
            base, config=str(config), ready_timeout=20.0, stop_timeout=3.0
        )
        self.states = StateRecorder()
        self.sup: Supervisor | None = None
        self.pids: set[int] = set()

    def start(self, **policy: Any) -> Supervisor:
        root = RunnableSpec(
            target="actors.supervisor.testing.kit:group",
            args={
                "events": self.probe.events_path,
                "children": {
                    "containerd": ["actors.containerd.process:run", spec_to_wire(self.spec)]
                },
                "done": False,
            },
        )
        rules = [
            PolicyRule("*", FAST),
            # The children stop within milliseconds; a short grace keeps a child
            # that misbehaves from slowing the tests.
            PolicyRule("root.containerd.*", {"grace_period": 1.0}),
            PolicyRule("root.containerd*", policy),
        ]
        self.sup = Supervisor(root, policies=PolicySet(rules=rules), observers=[self.states])
        self.sup.start()
        return self.sup

    def pid(self, dn: str) -> int:
        assert self.sup is not None
        pid = {n.dn: n.pid for n in self.sup.snapshot()}[dn]
        assert pid is not None, f"{dn} has no process"
        self.pids.add(pid)
        return pid

    def containerd_pid(self, nth: int = 1) -> int:
        """containerd's pid from the nth 'started containerd' line of root.containerd."""
        found: list[int] = []

        def started() -> bool:
            found[:] = [
                int(m.group(1))
                for text in self.messages(CD)
                if (m := re.search(r"^started containerd .* \(pid (\d+)\)$", text))
            ]
            return len(found) >= nth

        wait_until(started, 20, f"containerd started {nth} time(s)")
        self.pids.add(found[nth - 1])
        return found[nth - 1]

    def messages(self, dn: str) -> list[str]:
        assert self.sup is not None
        reader = self.sup.log_tree.read(dn, backlog=None, raw=False)
        return [e.message for e in reader.backlog]  # type: ignore[union-attr]

    def raw(self, dn: str) -> bytes:
        assert self.sup is not None
        reader = self.sup.log_tree.read(dn, backlog=None, leveled=False)
        return b"\n".join(e.data for e in reader.backlog if isinstance(e, RawEntry))

    def backoffs(self, dn: str) -> list[float]:
        pattern = rf"^rescheduling supervised node '{re.escape(dn)}' with backoff ([\d.]+) s$"
        return [float(m.group(1)) for t in self.messages(dn) if (m := re.match(pattern, t))]

    def stop(self) -> None:
        if self.sup is not None:
            assert self.sup.stop(timeout=60) is None
            self.sup = None


@pytest.fixture(scope="module")
def base() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="nc-tree-", dir="/tmp"))
    ContainerdDaemon(path).write_config()
    (path / "tmp").mkdir()
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def make_tree(base: Path) -> Iterator[Callable[..., ContainerdTree]]:
    trees: list[ContainerdTree] = []
    probes: list[Probe] = []

    def make(config: Path | None = None) -> ContainerdTree:
        probe = Probe(tempfile.mkdtemp(prefix="nc-tprobe-", dir="/tmp"))
        probes.append(probe)
        tree = ContainerdTree(base, probe, config or base / "config.toml")
        trees.append(tree)
        return tree

    yield make
    for tree in trees:
        tree.stop()
        leftover = [pid for pid in tree.pids if pid_alive(pid)]
        assert leftover == [], f"processes left behind: {leftover}"
    for probe in probes:
        probe.close()
        shutil.rmtree(probe.dir, ignore_errors=True)


def test_root_containerd_is_healthy_once_containerd_answers_with_its_boot_lines_logged(
    make_tree: Callable[..., ContainerdTree],
) -> None:
    tree = make_tree()
    tree.start()
    tree.states.wait_for(CD, "HEALTHY", timeout=30)
    answer = subprocess.run(
        ["ctr", "-a", tree.spec.address, "version"], capture_output=True, timeout=20, check=False
    )
    assert answer.returncode == 0
    tree.states.wait_for(RUNSC, "HEALTHY", timeout=30)
    tree.states.wait_for(PRESEED, "DONE", timeout=30)
    assert b"containerd successfully booted" in tree.raw(CD)
    assert "containerd notify: READY=1" in tree.messages(CD)
    assert "preseeding is disabled" in tree.messages(PRESEED)
    tree.pid(CD), tree.pid(RUNSC), tree.containerd_pid()


def test_a_sigkilled_containerd_fails_its_node_and_the_subtree_comes_back_healthy(
    make_tree: Callable[..., ContainerdTree],
) -> None:
    tree = make_tree()
    sup = tree.start()
    tree.states.wait_for(CD, "HEALTHY", timeout=30)
    tree.states.wait_for(RUNSC, "HEALTHY", timeout=30)
    tree.pid(CD), tree.pid(RUNSC)
    first = tree.containerd_pid()
    os.kill(first, signal.SIGKILL)
    tree.states.wait_for(CD, "DEAD", timeout=30)
    tree.states.wait_for(RUNSC, "CANCELED", timeout=30)
    tree.states.wait_for(CD, "HEALTHY", count=2, timeout=30)
    tree.states.wait_for(RUNSC, "HEALTHY", count=2, timeout=30)
    tree.states.wait_for(PRESEED, "DONE", count=2, timeout=30)
    node = {n.dn: n for n in sup.snapshot()}[CD]
    assert node.last_error is not None
    assert f"containerd {CONTAINERD!r} exited: killed by signal SIGKILL" in node.last_error
    second = tree.containerd_pid(2)
    assert second != first and not pid_alive(first) and pid_alive(second)
    tree.pid(CD), tree.pid(RUNSC)


def test_repeated_kills_of_containerd_back_off_longer_each_time(
    make_tree: Callable[..., ContainerdTree],
) -> None:
    tree = make_tree()
    # Go resets the backoff on HEALTHY; to back off a containerd that crashes
    # after coming up, the node must stay HEALTHY a while before the reset.
    tree.start(backoff_multiplier=2.0, backoff_jitter=0.0, min_healthy_uptime=60.0)
    gaps = []
    for kill in range(1, 4):
        tree.states.wait_for(CD, "HEALTHY", count=kill, timeout=30)
        # Kill only once the children run, so that each round measures one
        # backoff of a fully started subtree.
        tree.states.wait_for(RUNSC, "HEALTHY", count=kill, timeout=30)
        tree.states.wait_for(PRESEED, "DONE", count=kill, timeout=30)
        os.kill(tree.containerd_pid(kill), signal.SIGKILL)
        died = tree.states.wait_for(CD, "DEAD", count=kill, timeout=30)
        restarted = tree.states.wait_for(CD, "NEW", count=kill + 1, timeout=30)
        gaps.append(restarted - died)
    tree.states.wait_for(CD, "HEALTHY", count=4, timeout=30)
    assert tree.backoffs(CD) == [0.1, 0.2, 0.4]
    assert gaps == sorted(gaps) and gaps[0] >= 0.1 and gaps[2] >= 0.4, gaps
    tree.pid(CD), tree.containerd_pid(4)


def test_a_crash_looping_containerd_backs_off_longer_each_time(
    make_tree: Callable[..., ContainerdTree], base: Path
) -> None:
    config = base / "crashing.toml"
    config.write_text(
        f'version = 2\noom_score = "high"\n[grpc]\n  address = "{base / "containerd.sock"}"\n'
    )
    tree = make_tree(config)
    tree.start(backoff_multiplier=2.0, backoff_jitter=0.0)
    tree.states.wait_for(CD, "DEAD", count=4, timeout=30)
    assert tree.backoffs(CD)[:3] == [0.1, 0.2, 0.4]
    assert tree.states.count(CD, "HEALTHY") == 0
    assert b"failed to unmarshal TOML" in tree.raw(CD)
    assert any(f"containerd {CONTAINERD!r} exited: exit status 1" in m for m in tree.messages(CD))


def collect(reader: LogReader, into: list[bytes], count: int, timeout: float) -> None:
    """Takes raw lines from `reader` until `into` holds `count` of them."""
    wait_until(lambda: _drain(reader, into) >= count, timeout, f"{count} lines in the log")


def _drain(reader: LogReader, into: list[bytes]) -> int:
    for entry in reader.get_many(100_000, timeout=0):
        if isinstance(entry, RawEntry):
            into.append(entry.data)
    return len(into)


def start_writer(fifo: str) -> subprocess.Popen[bytes]:
    command = python_module("tests.support.programs.fifo_writer", "stream", fifo, str(LINES))
    return subprocess.Popen(command, env=python_env())


@contextlib.contextmanager
def pumping(
    make_tree: Callable[..., ContainerdTree],
) -> Iterator[tuple[ContainerdTree, LogReader, list[bytes], subprocess.Popen[bytes]]]:
    """A running tree, a stream reader of the pump's log, and a FIFO writer of LINES lines."""
    tree = make_tree()
    sup = tree.start()
    tree.states.wait_for(RUNSC, "HEALTHY", timeout=30)
    tree.pid(CD)
    reader = sup.log_tree.read(RUNSC, stream=True, leveled=False, buffer=LINES + 10)
    writer = start_writer(tree.spec.fifo)
    try:
        yield tree, reader, [], writer
    finally:
        writer.kill()
        writer.wait(timeout=10)
        reader.close()


def test_every_fifo_line_is_logged_exactly_once_while_the_pump_restarts(
    make_tree: Callable[..., ContainerdTree],
) -> None:
    with pumping(make_tree) as (tree, reader, lines, writer):
        sup = tree.sup
        assert sup is not None
        for restart in range(1, 6):
            collect(reader, lines, restart * 15_000, timeout=30)
            sup.restart(RUNSC)
            tree.states.wait_for(RUNSC, "CANCELED", count=restart, timeout=30)
            tree.states.wait_for(RUNSC, "HEALTHY", count=restart + 1, timeout=30)
            tree.pid(RUNSC)
        collect(reader, lines, len(EXPECTED), timeout=60)
        assert writer.wait(timeout=30) == 0
    assert reader.missed == 0
    assert lines == EXPECTED
    assert tree.states.count(RUNSC, "DEAD") == 0


def test_a_sigkilled_pump_loses_at_most_one_read_and_the_unsent_raw_buffer(
    make_tree: Callable[..., ContainerdTree],
) -> None:
    with pumping(make_tree) as (tree, reader, lines, writer):
        collect(reader, lines, 30_000, timeout=30)
        os.kill(tree.pid(RUNSC), signal.SIGKILL)
        tree.states.wait_for(RUNSC, "DEAD", timeout=30)
        tree.states.wait_for(RUNSC, "HEALTHY", count=2, timeout=30)
        tree.pid(RUNSC)
        wait_until(lambda: _drain(reader, lines) > 0 and lines[-1] == b"END", 60, "the END line")
        assert writer.wait(timeout=30) == 0
    assert reader.missed == 0
    expected = b"\n".join(EXPECTED)
    got = b"\n".join(lines)
    kept = len(os.path.commonprefix([expected, got]))
    assert expected.endswith(got[kept:])  # one gap, no reordering, no duplicate
    lost = len(expected) - len(got)
    assert 0 <= lost <= READ_SIZE + CHUNK_BYTES, f"lost {lost} bytes"
    assert tree.states.count(PRESEED, "DONE") == 1  # its own group: not restarted


def test_cancelling_the_tree_stops_containerd_with_sigterm_and_leaves_no_process(
    make_tree: Callable[..., ContainerdTree],
) -> None:
    tree = make_tree()
    sup = tree.start()
    tree.states.wait_for(CD, "HEALTHY", timeout=30)
    tree.states.wait_for(RUNSC, "HEALTHY", timeout=30)
    hosts = [tree.pid(CD), tree.pid(RUNSC)]
    containerd = tree.containerd_pid()
    tree.stop()
    texts = [e.message for e in sup.log_tree.read(CD, backlog=None, raw=False).backlog]  # type: ignore[union-attr]
    # STOPPING=1 and a clean exit: containerd got SIGTERM and shut down by itself.
    assert "containerd notify: STOPPING=1" in texts
    assert "containerd exited: exit status 0" in texts
    assert [p for p in [*hosts, containerd] if pid_alive(p)] == []
    assert tree.states.count(CD, "CANCELED") == 1
