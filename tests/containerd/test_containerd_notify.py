"""sd_notify: parsing datagrams (pure) and the private socket with real datagrams."""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from actors.containerd.core.notify import NotifyError, NotifyMessage, parse_notify
from actors.containerd.notify_socket import NotifySocket
from actors.wakeup import Wakeup

# ---------------------------------------------------------------- parsing


def test_ready_is_parsed() -> None:
    assert parse_notify(b"READY=1") == NotifyMessage(ready=True, fields=(("READY", "1"),))


def test_several_assignments_in_one_datagram_are_parsed_in_order() -> None:
    message = parse_notify(b"READY=1\nSTATUS=serving on a=b\nMAINPID=42\n")
    assert message == NotifyMessage(
        ready=True,
        status="serving on a=b",
        main_pid=42,
        fields=(("READY", "1"), ("STATUS", "serving on a=b"), ("MAINPID", "42")),
    )


def test_stopping_and_reloading_are_parsed() -> None:
    assert parse_notify(b"STOPPING=1").stopping
    assert parse_notify(b"RELOADING=1").reloading
    assert not parse_notify(b"READY=0").ready


def test_unknown_assignments_and_empty_lines_are_kept_or_skipped() -> None:
    message = parse_notify(b"\nWATCHDOG=1\n\nX_CUSTOM=\n")
    assert message == NotifyMessage(fields=(("WATCHDOG", "1"), ("X_CUSTOM", "")))


def test_errno_is_a_number() -> None:
    assert parse_notify(b"ERRNO=2").errno == 2


def test_a_line_without_an_assignment_is_refused() -> None:
    with pytest.raises(NotifyError) as e:
        parse_notify(b"READY=1\nhello")
    assert str(e.value) == "notify datagram line 'hello' is invalid: expected KEY=VALUE"


def test_an_empty_key_is_refused() -> None:
    with pytest.raises(NotifyError) as e:
        parse_notify(b"=1")
    assert str(e.value) == "notify datagram line '=1' is invalid: expected KEY=VALUE"


def test_a_mainpid_that_is_not_a_number_is_refused() -> None:
    with pytest.raises(NotifyError) as e:
        parse_notify(b"MAINPID=abc")
    assert str(e.value) == "notify datagram field MAINPID='abc' is invalid: not a number"


def test_a_datagram_that_is_not_utf8_is_refused() -> None:
    with pytest.raises(NotifyError) as e:
        parse_notify(b"STATUS=\xff")
    assert str(e.value) == "notify datagram b'STATUS=\\xff' is invalid: not utf-8"


def test_a_message_describes_itself_on_one_line() -> None:
    assert parse_notify(b"READY=1\nSTATUS=up now").describe() == "READY=1 STATUS='up now'"


# ---------------------------------------------------------------- the socket


@pytest.fixture
def notify(tmp_path: Path) -> NotifySocket:
    sock = NotifySocket(str(tmp_path / "notify.sock"))
    yield sock
    sock.close()


def send(path: str, data: bytes) -> None:
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        s.sendto(data, path)


def test_a_datagram_carries_the_pid_of_its_sender(notify: NotifySocket) -> None:
    send(notify.path, b"READY=1")
    got = notify.receive(Wakeup())
    assert got is not None
    assert (got.pid, got.message.ready) == (os.getpid(), True)


def test_a_datagram_from_another_process_carries_that_process_pid(
    notify: NotifySocket,
) -> None:
    code = (
        "import os, socket, sys\n"
        "s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)\n"
        "s.sendto(b'STATUS=child\\nREADY=1', os.environ['NOTIFY_SOCKET'])\n"
        "print(os.getpid())\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        env={**notify.env()},
        capture_output=True,
        check=True,
        timeout=30,
    )
    got = notify.receive(Wakeup())
    assert got is not None
    assert got.pid == int(out.stdout)
    assert (got.message.ready, got.message.status) == (True, "child")


def test_the_socket_file_is_private_to_its_owner(notify: NotifySocket) -> None:
    st = os.lstat(notify.path)
    assert stat.S_ISSOCK(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o600


def test_a_set_wakeup_ends_a_blocked_receive(notify: NotifySocket) -> None:
    wakeup = Wakeup()
    wakeup.set()
    assert notify.receive(wakeup) is None
    wakeup.close()


def test_a_malformed_datagram_raises_and_the_next_one_is_read(notify: NotifySocket) -> None:
    send(notify.path, b"garbage")
    send(notify.path, b"STOPPING=1")
    with pytest.raises(NotifyError):
        notify.receive(Wakeup())
    got = notify.receive(Wakeup())
    assert got is not None and got.message.stopping


def test_a_stale_socket_file_is_replaced(tmp_path: Path) -> None:
    path = str(tmp_path / "notify.sock")
    first = NotifySocket(path)
    first._sock.close()  # a killed agent: the file stays behind
    second = NotifySocket(path)
    send(path, b"READY=1")
    assert second.receive(Wakeup()) is not None
    second.close()
    assert not os.path.exists(path)


def test_a_regular_file_at_the_socket_path_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "notify.sock"
    path.write_text("mine")
    with pytest.raises(NotifyError) as e:
        NotifySocket(str(path))
    assert str(e.value) == f"notify socket path {str(path)!r} exists and is not a socket"
    assert path.read_text() == "mine"


def test_a_socket_path_too_long_for_the_kernel_is_refused(tmp_path: Path) -> None:
    path = "/tmp/" + "d" * 100 + "/notify.sock"
    with pytest.raises(NotifyError) as e:
        NotifySocket(path)
    assert str(e.value) == f"notify socket path {path!r} is too long: 117 bytes, at most 107"
