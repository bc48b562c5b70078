"""Shared fixtures: a real containerd per test module, in a temporary directory.

Which containerd: the one on ``PATH`` (the system's), or with
``NC_CONTAINERD=bookworm|trixie|sid`` that Debian suite's, from the cache that
``scripts/containerd-versions`` fills: its directory is put first on ``PATH`` for the
whole run, so the fixtures, the agent and ``ctr`` all use that release (see
``tests/support/containerd_matrix.py``). Every test that uses a containerd fixture, and
every test of the e2e and faults folders, and the short soak, is marked ``containerd``;
the matrix (``scripts/test``) runs those once per version. ``NC_RUNSC`` picks the runsc
the same way (the ``sid`` run's default is trixie's); pytest's header names both.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from actors.containerd.runtimes.cni import BRIDGE
from actors.supervisor.runtime.switching import use_fast_switching
from tests.support import containerd_matrix
from tests.support.containerd_daemon import (
    ContainerdDaemon,
    containerd_available,
    started_daemon,
)
from tests.support.project import short_tmp

# A run started where SIGINT, SIGHUP or SIGQUIT are ignored (a non-interactive shell's
# background job, nohup) would pass that on to every program a test runs, and a CLI
# whose Ctrl-C a test checks would never see it: the suite runs with the defaults.
for _signum, _default in (
    (signal.SIGINT, signal.default_int_handler),
    (signal.SIGHUP, signal.SIG_DFL),
    (signal.SIGQUIT, signal.SIG_DFL),
    (signal.SIGTERM, signal.SIG_DFL),
):
    if signal.getsignal(_signum) is signal.SIG_IGN:
        signal.signal(_signum, _default)

# The test process hosts supervision trees, as the agent's `run` does: same GIL setting.
use_fast_switching()

# The agents tests start register in a directory of this run, never in the machine's
# /run/node-containerd (actors.agent.registry); a test that needs its own sets another.
os.environ.setdefault("NODE_CONTAINERD_REGISTRY", tempfile.mkdtemp(prefix="nc-registry-"))

CONTAINERD_FIXTURES = frozenset({"containerd", "fresh_containerd"})
"""Fixtures that start a real containerd: a test that uses one is marked ``containerd``."""

CONTAINERD_DIRS = frozenset({"e2e", "faults"})
"""Folders of tests/ whose every test runs the agent or faults on a real containerd
(the soak marks its one system test itself: its other tests are pure)."""


def pytest_configure(config: pytest.Config) -> None:
    containerd_matrix.select(os.environ)


def pytest_report_header(config: pytest.Config) -> list[str]:
    return [
        f"containerd: {containerd_matrix.describe()}",
        f"runsc: {containerd_matrix.describe_runsc()}",
    ]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    here = Path(__file__).resolve().parent
    for item in items:
        folder = Path(item.path).resolve().relative_to(here).parts[0]
        uses = set(getattr(item, "fixturenames", ()))
        if CONTAINERD_FIXTURES & uses or folder in CONTAINERD_DIRS:
            item.add_marker(pytest.mark.containerd)


@pytest.fixture(autouse=True)
def _pod_networks_stay_in_the_tests_own_namespaces() -> Iterator[None]:
    """Fails the test after which the default CNI bridge exists in this (the machine's)
    network namespace: a pod with its own network must only ever start under an agent
    in a namespace of the test's own (`AgentUnderTest(own_netns=True)`)."""
    yield
    bridge = Path("/sys/class/net") / BRIDGE
    if bridge.exists():
        subprocess.run(["ip", "link", "del", BRIDGE], check=False)
        pytest.fail(f"the CNI bridge {BRIDGE!r} appeared in the machine's network namespace")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    stats = getattr(reporter, "stats", {})
    counts = {k: len(stats.get(k, ())) for k in ("passed", "failed", "error", "skipped")}
    containerd_matrix.record_run(os.environ, int(exitstatus), session.testscollected, counts)


@pytest.fixture
def short_dir() -> Iterator[Path]:
    """A fresh directory with a short path (unix sockets under it must fit 107 bytes)."""
    d = short_tmp("t")
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


def _containerd() -> Iterator[ContainerdDaemon]:
    if not containerd_available():
        pytest.fail("containerd/ctr not on PATH: run scripts/setup")
    with started_daemon() as daemon:
        yield daemon


@pytest.fixture(scope="module")
def containerd() -> Iterator[ContainerdDaemon]:
    """A real containerd, shared by the tests of one module."""
    yield from _containerd()


@pytest.fixture
def fresh_containerd() -> Iterator[ContainerdDaemon]:
    """A real containerd of this test's own."""
    yield from _containerd()
