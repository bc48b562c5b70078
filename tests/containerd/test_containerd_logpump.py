"""The runsc log pump on a real FIFO with real writer processes (no supervisor needed).

The FIFO is held open read-write by the test, as `root.containerd` holds it.
"""

from __future__ import annotations

import fcntl
import os
import signal
import struct
import subprocess
import termios
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from actors.containerd.fifo import ensure_fifo, open_fifo, set_pipe_size
from actors.containerd.logpump import READ_SIZE, run_pump
from tests.support.nodes import FakeNode, MemorySink
from tests.support.programs.fifo_writer import numbered_line
from tests.support.project import python_env, python_module
from tests.support.waiting import in_thread, wait_until

LINES = 100_000
STREAM = b"".join(numbered_line(i) for i in range(LINES)) + b"END\n"


@pytest.fixture
def fifo(tmp_path: Path) -> Iterator[tuple[str, int]]:
    """A FIFO and the read-write descriptor that keeps its buffer alive."""
    path = str(tmp_path / "runsc.fifo")
    ensure_fifo(path, 0o600)
    holder = open_fifo(path)
    set_pipe_size(holder, 1 << 20)
    yield path, holder
    os.close(holder)


def unread(fd: int) -> int:
    """Bytes waiting in the FIFO's kernel buffer."""
    return struct.unpack("i", fcntl.ioctl(fd, termios.FIONREAD, b"\0\0\0\0"))[0]


def writer(mode: str, path: str, count: int) -> subprocess.Popen[bytes]:
    command = python_module("tests.support.programs.fifo_writer", mode, path, str(count))
    return subprocess.Popen(command, env=python_env())


def pump_child(path: str) -> subprocess.Popen[bytes]:
    """The pump in a process of its own (`tests.support.programs.pump_child`)."""
    return subprocess.Popen(
        python_module("tests.support.programs.pump_child", path),
        env=python_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def start_pump(path: str, sink: MemorySink) -> tuple[FakeNode, object]:
    node = FakeNode()
    future = in_thread(run_pump, path, 1 << 20, node, sink)
    assert node.healthy.wait(10), "the pump did not become HEALTHY within 10s"
    return node, future


def test_every_line_arrives_exactly_once_in_order_across_pump_restarts(
    fifo: tuple[str, int],
) -> None:
    path, holder = fifo
    sink = MemorySink()  # the raw log of root.containerd.runsc, kept across restarts
    proc = writer("stream", path, LINES)
    pending_at_stop = []
    try:
        for restart in range(1, 7):
            node, future = start_pump(path, sink)
            sink.wait_for_size(restart * 1_400_000, timeout=30)
            node.cancel()
            assert future.result(timeout=10) is None  # type: ignore[attr-defined]
            # Let the writer queue bytes while no pump runs: the next pump must get them.
            wanted = min(256 * 1024, len(STREAM) - sink.size)
            wait_until(lambda n=wanted: unread(holder) >= n, 30, "writer fills the fifo")
            pending_at_stop.append(unread(holder))
        node, future = start_pump(path, sink)
        sink.wait_for_size(len(STREAM), timeout=60)
        node.cancel()
        assert future.result(timeout=10) is None  # type: ignore[attr-defined]
        assert proc.wait(timeout=30) == 0
    finally:
        proc.kill()
        proc.wait(timeout=10)
    assert sink.data() == STREAM
    # Most restarts found bytes queued in the fifo (the last ones may find the end).
    assert sum(1 for n in pending_at_stop if n > 0) >= 4, pending_at_stop


def test_writers_coming_and_going_cost_the_pump_almost_no_cpu(tmp_path: Path) -> None:
    path = str(tmp_path / "runsc.fifo")
    ensure_fifo(path, 0o600)  # no holder: the pump's own read-write descriptor must suffice
    sink = MemorySink()
    node, future = start_pump(path, sink)
    (reader,) = [t for t in threading.enumerate() if t.name == "nc-pump"]
    assert reader.ident is not None
    clock = time.pthread_getcpuclockid(reader.ident)
    cpu_before, wall_before = time.clock_gettime(clock), time.monotonic()
    proc = writer("churn", path, 1000)
    try:
        assert proc.wait(timeout=60) == 0
        sink.wait_for_size(1000 * 100, timeout=10)
        cpu = time.clock_gettime(clock) - cpu_before
        wall = time.monotonic() - wall_before
    finally:
        proc.kill()
        proc.wait(timeout=10)
        node.cancel()
    assert future.result(timeout=10) is None  # type: ignore[attr-defined]
    assert sink.data() == b"".join(numbered_line(i) for i in range(1000))
    # 1,000 wake-ups of a poll/read/write each; a pump spinning on EOF would burn ~wall.
    assert cpu < 0.15, f"pump used {cpu:.3f}s of cpu in {wall:.3f}s"
    assert cpu < wall / 10, f"pump used {cpu:.3f}s of cpu in {wall:.3f}s"


def test_a_sigkilled_pump_loses_at_most_one_read(fifo: tuple[str, int]) -> None:
    path, _ = fifo
    proc = writer("stream", path, LINES)
    try:
        first = pump_child(path)
        assert first.stdout is not None and first.stderr is not None
        assert first.stderr.readline() == b"healthy\n"
        got_first = bytearray()
        while len(got_first) < 3_000_000:  # bounded: the writer sends 10 MB
            chunk = first.stdout.read1(1 << 20)
            assert chunk, f"the first pump stopped after {len(got_first)} bytes"
            got_first += chunk
        first.send_signal(signal.SIGKILL)
        got_first += first.stdout.read()  # what it had sent before it died
        assert first.wait(timeout=10) == -signal.SIGKILL

        second = pump_child(path)
        assert second.stdout is not None and second.stderr is not None
        assert second.stderr.readline() == b"healthy\n"
        got_second = bytearray()
        while not got_second.endswith(b"END\n"):  # bounded: the writer ends with END
            chunk = second.stdout.read1(1 << 20)
            assert chunk, f"the second pump stopped after {len(got_second)} bytes"
            got_second += chunk
        second.send_signal(signal.SIGTERM)
        assert second.wait(timeout=10) == 0
        assert proc.wait(timeout=30) == 0
    finally:
        for p in (proc, first, second):
            p.kill()
            p.wait(timeout=10)
        for p in (first, second):
            p.stdout.close()  # type: ignore[union-attr]
            p.stderr.close()  # type: ignore[union-attr]
    assert STREAM.startswith(got_first)
    assert STREAM.endswith(got_second)
    lost = len(STREAM) - len(got_first) - len(got_second)
    assert 0 <= lost <= READ_SIZE, f"lost {lost} bytes"


def test_a_path_that_is_not_a_fifo_fails_the_pump_without_healthy(tmp_path: Path) -> None:
    path = tmp_path / "runsc.fifo"
    path.write_text("not a pipe")
    node = FakeNode()
    assert run_pump(str(path), 1 << 20, node, MemorySink()) == (
        f"{str(path)!r} exists and is not a fifo (a regular file)"
    )
    assert node.healthy_count == 0


def test_the_pump_raises_the_pipe_buffer_and_says_so(tmp_path: Path) -> None:
    path = str(tmp_path / "runsc.fifo")
    ensure_fifo(path, 0o600)
    sink = MemorySink()
    node, future = start_pump(path, sink)
    probe = open_fifo(path)
    try:
        assert fcntl.fcntl(probe, fcntl.F_GETPIPE_SZ) == 1 << 20
    finally:
        os.close(probe)
        node.cancel()
    assert future.result(timeout=10) is None  # type: ignore[attr-defined]
    assert node.messages() == [f"pumping runsc fifo {path!r}, buffer 1048576 bytes"]
    assert node.healthy_count == 1
    assert sink.flushes == 1
