"""Debian's real containerd speaks sd_notify and answers our raw Version call."""

from __future__ import annotations

import shutil
import signal
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from actors.containerd.api.version import version_call
from actors.containerd.core.notify import NotifyDatagram
from actors.containerd.notify_socket import NotifySocket
from actors.wakeup import Wakeup
from tests.support.containerd_daemon import ContainerdDaemon

pytestmark = pytest.mark.containerd


def test_version_call_answers_with_containerds_version(containerd: ContainerdDaemon) -> None:
    info = version_call(containerd.address, timeout=10)
    reference = containerd.ctr("version")
    assert info.version and f"Version:  {info.version}\n" in reference
    # Debian's 2.x build carries no revision (`Revision: ` in ctr version): may be empty.
    assert f"Revision: {info.revision}\n" in reference


def test_version_call_on_a_socket_nobody_serves_times_out(tmp_path: Path) -> None:
    with pytest.raises(grpc.RpcError) as e:
        version_call(str(tmp_path / "nobody.sock"), timeout=0.3)
    assert e.value.code() is grpc.StatusCode.DEADLINE_EXCEEDED  # type: ignore[attr-defined]


@pytest.fixture(scope="module")
def notified_run() -> Iterator[tuple[int, list[NotifyDatagram], str]]:
    """Starts containerd with NOTIFY_SOCKET, stops it with SIGTERM; keeps every datagram."""
    base = Path(tempfile.mkdtemp(prefix="nc-ntf-", dir="/tmp"))
    daemon = ContainerdDaemon(base)
    daemon.write_config()
    sock = NotifySocket(str(base / "notify.sock"))
    wakeup = Wakeup()
    got: list[NotifyDatagram] = []
    ready = threading.Event()

    def reader() -> None:
        while (d := sock.receive(wakeup)) is not None:
            got.append(d)
            if d.message.ready:
                ready.set()

    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    proc = subprocess.Popen(
        [shutil.which("containerd") or "containerd", "--config", str(daemon.config)],
        env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "TMPDIR": "/tmp", **sock.env()},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        assert ready.wait(20), "containerd sent no READY=1 within 20s"
        answered = version_call(daemon.address, timeout=10).version
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=20)
    assert proc.stdout is not None
    proc.stdout.close()
    wakeup.set()
    thread.join(timeout=10)
    sock.close()
    wakeup.close()
    yield proc.pid, got, answered
    shutil.rmtree(base, ignore_errors=True)


def test_containerd_sends_ready_from_its_own_pid(
    notified_run: tuple[int, list[NotifyDatagram], str],
) -> None:
    pid, got, answered = notified_run
    assert got[0].pid == pid
    assert got[0].message.ready
    assert answered  # it answered Version once it had said READY=1


def test_containerd_sends_stopping_on_sigterm(
    notified_run: tuple[int, list[NotifyDatagram], str],
) -> None:
    pid, got, _ = notified_run
    assert [(d.pid, d.message.describe()) for d in got] == [
        (pid, "READY=1"),
        (pid, "STOPPING=1"),
    ]
