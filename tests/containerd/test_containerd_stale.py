"""Stale sockets: a dead socket is removed, a live one or a non-socket is refused."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from actors.containerd.stale import StaleSocketError, clear_stale_socket


def test_a_missing_socket_needs_nothing(tmp_path: Path) -> None:
    assert clear_stale_socket(str(tmp_path / "c.sock")) is False


def test_a_socket_nobody_listens_on_is_removed(tmp_path: Path) -> None:
    path = tmp_path / "c.sock"
    dead = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    dead.bind(str(path))
    dead.listen()
    dead.close()  # as after a SIGKILL: the file stays, nobody answers
    assert path.exists()
    assert clear_stale_socket(str(path)) is True
    assert not path.exists()


def test_a_socket_somebody_answers_on_is_refused_and_kept(tmp_path: Path) -> None:
    path = tmp_path / "c.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as live:
        live.bind(str(path))
        live.listen()
        with pytest.raises(StaleSocketError) as e:
            clear_stale_socket(str(path))
    assert str(e.value) == (
        f"socket {str(path)!r} is in use: another process (an earlier containerd?) answers on it"
    )
    assert path.exists()


def test_a_file_that_is_not_a_socket_is_refused_and_kept(tmp_path: Path) -> None:
    path = tmp_path / "c.sock"
    path.write_text("mine")
    with pytest.raises(StaleSocketError) as e:
        clear_stale_socket(str(path))
    assert str(e.value) == f"socket path {str(path)!r} exists and is not a socket"
    assert path.read_text() == "mine"
