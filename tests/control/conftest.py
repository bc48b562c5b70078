"""Fixtures of the control socket tests: a real ControlServer on a real unix socket."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from actors.agent.control.server import ControlServer
from tests.support.control import Backend, node


@dataclass
class Served:
    """A running control server and what it serves."""

    path: str
    backend: Backend
    server: ControlServer


def default_nodes() -> list:
    return [
        node("root", "HEALTHY", pid=100, since=0.0),
        node("root.a", "HEALTHY", pid=101),
        node("root.a.b", "DEAD", pid=None, restarts=3, last_error="exit status 1"),
        node("root.ab", "DONE", pid=None),
    ]


@pytest.fixture
def served(short_dir: Path) -> Iterator[Served]:
    backend = Backend(default_nodes())
    path = str(short_dir / "control.sock")
    server = ControlServer(path, backend, max_followers=4, stream_buffer=10)
    server.start()
    try:
        yield Served(path, backend, server)
    finally:
        server.stop(0)
