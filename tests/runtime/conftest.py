"""Fixtures for system tests of the supervision runtime with real processes."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator

import pytest

from actors.supervisor.testing.harness import Harness
from actors.supervisor.testing.kit import Probe
from tests.support.processes import pid_alive


@pytest.fixture
def probe() -> Iterator[Probe]:
    d = tempfile.mkdtemp(prefix="nc-rt-", dir="/tmp")
    p = Probe(d)
    try:
        yield p
    finally:
        p.close()
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(params=["exec", "zygote"])
def harness(probe: Probe, request: pytest.FixtureRequest) -> Iterator[Harness]:
    """A harness whose supervisor is stopped at teardown, leaving no process behind.

    Every test runs with both ways of starting a host: spawned fresh, forked by the zygote.
    """
    h = Harness(probe, spawn=request.param)
    try:
        yield h
    finally:
        if h.sup is not None:
            h.stop(timeout=30)
            pids = {pid for _, _, _, pid in probe.events}
            leftover = [pid for pid in pids if pid_alive(pid)]
            assert leftover == [], f"processes left behind: {leftover}"
