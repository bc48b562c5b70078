"""The notify protocol's client: addresses, the environment, and datagrams on a real socket."""

from __future__ import annotations

import os
import socket

import pytest

from actors.agent.systemd.sdnotify import (
    NotifyEnvironment,
    NotifySender,
    NotifyUnsupported,
    socket_address,
    take_environment,
    watchdog_interval,
)

pytestmark = pytest.mark.timeout(30)


def _receiver(address: str | bytes) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(address)
    sock.settimeout(10)
    return sock


def test_a_path_is_used_as_it_is_and_an_at_sign_means_the_abstract_namespace():
    assert socket_address("/run/systemd/notify") == "/run/systemd/notify"
    assert socket_address("@nc/notify") == b"\0nc/notify"


@pytest.mark.parametrize("value", ["relative/path", "@", "vsock:2:1234", ""])
def test_an_address_that_is_neither_a_path_nor_abstract_is_refused(value):
    with pytest.raises(NotifyUnsupported) as e:
        socket_address(value)
    assert str(e.value) == (
        f"NOTIFY_SOCKET {value!r} is not supported: expected an absolute path or @abstract name"
    )


@pytest.mark.parametrize(
    ("usec", "pid_text", "expected"),
    [
        (None, None, None),
        ("", None, None),
        ("30000000", None, 30.0),
        ("500000", "4242", 0.5),
        ("500000", "4243", None),
    ],
)
def test_the_watchdog_is_on_only_with_a_positive_interval_meant_for_us(usec, pid_text, expected):
    assert watchdog_interval(usec, pid_text, 4242) == expected


@pytest.mark.parametrize(
    ("usec", "pid_text", "message"),
    [
        ("0", None, "WATCHDOG_USEC '0' is invalid: expected microseconds > 0"),
        ("1.5", None, "WATCHDOG_USEC '1.5' is invalid: expected microseconds > 0"),
        ("100", "me", "WATCHDOG_PID 'me' is invalid: expected a pid"),
    ],
)
def test_a_malformed_watchdog_variable_is_refused(usec, pid_text, message):
    with pytest.raises(NotifyUnsupported) as e:
        watchdog_interval(usec, pid_text, 1)
    assert str(e.value) == message


def test_the_variables_are_taken_out_of_the_environment_so_children_do_not_inherit_them():
    environ = {
        "NOTIFY_SOCKET": "@x",
        "WATCHDOG_USEC": "2000000",
        "WATCHDOG_PID": "77",
        "PATH": "/bin",
    }
    assert take_environment(environ, 77) == NotifyEnvironment(socket="@x", watchdog=2.0)
    assert environ == {"PATH": "/bin"}
    # No NOTIFY_SOCKET: no watchdog either, since there is nowhere to send it.
    assert take_environment({"WATCHDOG_USEC": "1"}, 1) == NotifyEnvironment(
        socket=None, watchdog=None
    )


def test_datagrams_reach_a_socket_file_with_one_assignment_per_line(short_dir):
    path = str(short_dir / "notify")
    receiver = _receiver(path)
    sender = NotifySender(path)
    try:
        sender.send("READY=1", "STATUS=up\nand a second line")
        sender.send("WATCHDOG=1")
        assert receiver.recv(4096) == b"READY=1\nSTATUS=up"
        assert receiver.recv(4096) == b"WATCHDOG=1"
    finally:
        sender.close()
        receiver.close()


def test_datagrams_reach_an_abstract_socket():
    name = f"@nc-test-notify-{os.getpid()}"
    receiver = _receiver(b"\0" + name[1:].encode())
    sender = NotifySender(name)
    try:
        sender.send("STOPPING=1")
        assert receiver.recv(4096) == b"STOPPING=1"
    finally:
        sender.close()
        receiver.close()


def test_sending_to_a_socket_nobody_listens_on_fails_with_an_oserror(short_dir):
    sender = NotifySender(str(short_dir / "nobody"))
    try:
        with pytest.raises(FileNotFoundError):
            sender.send("READY=1")
    finally:
        sender.close()
