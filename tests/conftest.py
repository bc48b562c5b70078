"""Shared fixtures: a real containerd per test module, in a temporary directory."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from containerd_daemon import ContainerdDaemon, containerd_available  # noqa: E402

from actors.supervisor.runtime.switching import use_fast_switching  # noqa: E402

# The test process hosts supervision trees, as the agent's `run` does: same GIL setting.
use_fast_switching()


def _short_tmp(name: str) -> Path:
    # unix socket paths are limited to 107 bytes: keep the base short.
    base = Path(os.environ.get("NC_TEST_TMP", "/tmp"))
    return Path(tempfile.mkdtemp(prefix=f"nc-{name}-", dir=base))


@pytest.fixture
def short_dir() -> Iterator[Path]:
    """A fresh directory with a short path (unix sockets under it must fit 107 bytes)."""
    d = _short_tmp("t")
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="module")
def containerd() -> Iterator[ContainerdDaemon]:
    """A real containerd, shared by the tests of one module."""
    if not containerd_available():
        pytest.fail("containerd/ctr not on PATH: run scripts/setup")
    d = ContainerdDaemon(_short_tmp("ctd"))
    d.start()
    try:
        yield d
    finally:
        d.stop()
        shutil.rmtree(d.base, ignore_errors=True)


@pytest.fixture
def fresh_containerd() -> Iterator[ContainerdDaemon]:
    """A real containerd of this test's own."""
    if not containerd_available():
        pytest.fail("containerd/ctr not on PATH: run scripts/setup")
    d = ContainerdDaemon(_short_tmp("ctd"))
    d.start()
    try:
        yield d
    finally:
        d.stop()
        shutil.rmtree(d.base, ignore_errors=True)
