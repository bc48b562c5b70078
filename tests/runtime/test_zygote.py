"""The zygote with real processes: a forked host is what a spawned one is, and the
zygote's death costs nothing but the speed of the next starts."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from actors.supervisor.process.protocol import HOST_MODULE, ZYGOTE_MODULE
from actors.supervisor.testing.harness import Harness, group_spec
from actors.supervisor.testing.kit import Probe
from tests.support.processes import cmdline, pid_alive
from tests.support.project import python_env
from tests.support.waiting import wait_until

pytestmark = pytest.mark.timeout(60)


def _node(harness: Harness, dn: str):
    assert harness.sup is not None
    return {n.dn: n for n in harness.sup.snapshot()}[dn]


def _selves(probe: Probe, spawn: str) -> dict[str, dict]:
    """What two `reports_itself` nodes were given, started the `spawn` way."""
    harness = Harness(probe, spawn=spawn)
    try:
        harness.start(group_spec(probe, {"a": ("reports_itself", {}), "b": ("reports_itself", {})}))
        selves = {}
        for dn in ("root.a", "root.b"):
            harness.states.wait_for(dn, "HEALTHY")
            selves[dn] = dict(
                _node(harness, dn).facts["self"], cmdline=cmdline(_node(harness, dn).pid)
            )
        return selves
    finally:
        harness.stop()


def test_a_forked_host_gets_what_a_spawned_host_gets_and_a_seed_of_its_own(probe):
    spawned = _selves(probe, "exec")
    forked = _selves(probe, "zygote")
    for dn in ("root.a", "root.b"):
        assert HOST_MODULE in spawned[dn]["cmdline"]
        assert ZYGOTE_MODULE in forked[dn]["cmdline"]  # it really was forked
        for selves in (spawned, forked):
            me = selves[dn]
            assert me["pgid"] == me["pid"]  # a process group of its own
            assert me["ppid"] == os.getpid()  # the root's child, reaped by the root
            assert me["pdeathsig"] == signal.SIGKILL
            assert me["stdin"] == "/dev/null"
        for what in ("fds", "signals", "env"):
            assert forked[dn][what] == spawned[dn][what], what
    assert len(forked["root.a"]["fds"]) == 5  # stdio, the link, and the listing itself
    assert spawned["root.a"]["frozen"] == 0  # a fresh interpreter froze nothing
    assert forked["root.a"]["random"] != forked["root.b"]["random"]


def test_a_host_forked_while_the_zygote_still_loads_gets_its_heap_frozen(probe):
    # root.a is forked between two steps of the zygote's preload (at the latest after
    # the slow one, before `csv`): what was loaded by then comes frozen, so that the
    # child's garbage collector leaves the pages it shares with the zygote alone.
    harness = Harness(probe, spawn="zygote", preload=("tests.support.slow_import", "csv"))
    try:
        harness.start(group_spec(probe, {"a": ("reports_itself", {})}))
        harness.states.wait_for("root.a", "HEALTHY")
        me = _node(harness, "root.a").facts["self"]
        assert ZYGOTE_MODULE in cmdline(me["pid"])  # forked...
        assert "/_csv." not in _maps(me["pid"])  # ...before the preload was done
        assert me["frozen"] > 0
    finally:
        harness.stop()


def _wait_forked(harness: Harness, dn: str, count: int) -> int:
    harness.states.wait_for(dn, "HEALTHY", count=count)
    return _node(harness, dn).pid


def test_a_sigkilled_zygote_takes_no_runnable_with_it_and_comes_back(probe):
    harness = Harness(probe, spawn="zygote")
    try:
        _zygote_dies(harness, probe)
    finally:
        harness.stop()
    assert not pid_alive(harness.zygote.pid or -1)


def _zygote_dies(harness: Harness, probe: Probe) -> None:
    harness.start(group_spec(probe, {"one": ("becomes_healthy", {})}))
    first = _wait_forked(harness, "root.one", 1)
    assert ZYGOTE_MODULE in cmdline(first)
    zygote = harness.zygote
    assert zygote is not None and zygote.pid is not None
    killed = zygote.pid
    os.kill(killed, signal.SIGKILL)
    wait_until(lambda: zygote.pid is None, 10, "the zygote reaped")
    assert pid_alive(first) and _node(harness, "root.one").state.short == "HEALTHY"
    # While it is gone, a restart spawns a fresh host; the zygote is started again.
    harness.sup.restart("root.one")
    fresh = _wait_forked(harness, "root.one", 2)
    assert HOST_MODULE in cmdline(fresh)
    wait_until(lambda: zygote.pid not in (None, killed), 10, "a new zygote")
    wait_until(lambda: zygote.wait_ready(0.1), 20, "the new zygote ready")
    harness.sup.restart("root.one")
    again = _wait_forked(harness, "root.one", 3)
    assert ZYGOTE_MODULE in cmdline(again)
    said = [
        "\n".join(e.lines)
        for e in harness.sup.log_tree.read("root", backlog=None, raw=False).backlog
    ]
    assert any(f"zygote (pid {killed}) ended: killed by signal SIGKILL" in s for s in said), said
    assert any("zygote back" in s for s in said), said


def test_importing_grpc_leaves_the_zygote_one_thread_to_fork():
    code = (
        "import os, threading, grpc\n"
        "from actors.containerd.api import client\n"
        "print(threading.active_count(), len(os.listdir('/proc/self/task')))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], env=python_env(), capture_output=True, text=True, check=True
    )
    assert out.stdout.split() == ["1", "1"]


def _maps(pid: int) -> str:
    with open(f"/proc/{pid}/maps") as f:
        return f.read()


def test_a_fork_waits_for_the_modules_tagged_with_its_dn_and_no_others():
    from actors.supervisor.runtime.zygote import Zygote

    # `_decimal` and `_csv` are shared objects: mapped in a process once imported.
    zygote = Zygote(["json", "decimal@root.a", "csv"], env=python_env())
    zygote.start()
    hosts = []
    try:
        assert zygote.wait_ready(20)
        host = zygote.fork("root.a", wait=20)  # asked at once: decimal is not loaded yet
        hosts.append(host)
        assert "/_decimal." in _maps(host.pid)
        assert "/_csv." not in _maps(host.pid)  # loaded after, while no request waited
        wait_until(lambda: "/_csv." in _maps(zygote.pid or 0), 20, "csv in the zygote")
        later = zygote.fork("root.b", wait=20)
        hosts.append(later)
        assert "/_csv." in _maps(later.pid)
    finally:
        for h in hosts:
            os.killpg(h.pid, signal.SIGKILL)
            os.waitpid(h.pid, 0)
            h.sock.close()
            os.close(h.stdio_fd)
        zygote.close()
