"""The series an operator alerts on, without an agent: per-process figures from
/proc, the versions, the time of each node's last change, and `/healthz`."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.error
import urllib.request

from actors.agent.build_info import BuildInfoCollector
from actors.agent.health import Health
from actors.agent.metrics import Metrics
from actors.agent.process_metrics import (
    ProcessCollector,
    agent_processes,
    parse_rss,
    parse_stat,
)
from actors.supervisor.core.events import StateChanged
from actors.supervisor.core.states import NodeState
from tests.support.prometheus import naming_problems, parse

C, P = "root.containerd", "root.containerd.preseed"


def test_a_stat_line_is_read_even_when_the_command_name_holds_spaces_and_parens():
    fields = " ".join(str(n) for n in range(4, 53))
    stat = parse_stat(f"123 (a) b (c) S {fields}")
    assert (stat.comm, stat.ppid, stat.cpu_ticks, stat.start_ticks) == ("a) b (c", 4, 14 + 15, 22)


def test_rss_is_read_in_bytes_and_a_zombie_has_none():
    assert parse_rss("Name:\tx\nVmRSS:\t  2048 kB\n") == 2048 * 1024
    assert parse_rss("Name:\tx\nState:\tZ (zombie)\n") == 0


def test_process_series_name_the_dn_and_the_process_and_have_plausible_values():
    child = subprocess.Popen(
        [sys.executable, "-c", "import time; print('up', flush=True); time.sleep(30)"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        # Scraped before its interpreter is up, the child is a few hundred KiB of exec.
        assert child.stdout is not None and child.stdout.readline() == "up\n"
        metrics = Metrics()
        metrics.registry.register(
            ProcessCollector(lambda: agent_processes([("root.x", child.pid)], os.getpid()))
        )
        types, samples = parse(metrics.render())
        assert naming_problems(types) == []
        for dn, process in (("root", "supervisor"), ("root.x", "runnable")):
            labels = (("dn", dn), ("process", process))
            assert samples[("node_containerd_process_resident_memory_bytes", labels)] > 1e6
            assert samples[("node_containerd_process_open_fds", labels)] >= 3
            assert samples[("node_containerd_process_cpu_seconds_total", labels)] >= 0
            started = samples[("node_containerd_process_start_time_seconds", labels)]
            assert time.time() - 3600 * 24 * 365 < started <= time.time() + 1
    finally:
        child.kill()
        child.wait()


def test_the_zygote_is_listed_under_root_while_one_runs():
    listed = agent_processes([("root.x", None)], 100, zygote_pid=101)
    assert listed == [("root", "supervisor", 100), ("root", "zygote", 101)]
    assert agent_processes([("root.x", 102)], 100) == [
        ("root", "supervisor", 100),
        ("root.x", "runnable", 102),
    ]


def test_a_process_gone_before_the_scrape_is_left_out():
    metrics = Metrics()
    metrics.registry.register(ProcessCollector(lambda: [("root.x", "runnable", 2**22 + 1)]))
    types, samples = parse(metrics.render())
    assert types["node_containerd_process_resident_memory_bytes"] == "gauge"
    assert not [k for k in samples if k[0].startswith("node_containerd_process_")]


def test_build_info_is_one_series_of_value_one_labelled_with_the_versions():
    metrics = Metrics()
    labels = {"version": "0.1.0", "containerd_version": "1.6.20~ds1", "runsc_version": "x"}
    metrics.registry.register(BuildInfoCollector(labels))
    types, samples = parse(metrics.render())
    assert naming_problems(types) == []
    assert samples[("node_containerd_build_info", tuple(sorted(labels.items())))] == 1.0


def test_the_last_change_is_a_wall_clock_timestamp_per_dn():
    metrics = Metrics()
    before = time.time()
    metrics.observe_state(StateChanged(dn="root", old=None, new=NodeState.NEW), 1.0)
    _, samples = parse(metrics.render())
    stamp = samples[("node_containerd_dn_last_change_timestamp_seconds", (("dn", "root"),))]
    assert before - 1 <= stamp <= time.time() + 1


def _feed(health: Health, *changes: tuple[str, NodeState | None, NodeState]) -> None:
    for dn, old, new in changes:
        health.observe_state(StateChanged(dn=dn, old=old, new=new), 0.0)


def test_health_is_ok_only_while_containerd_is_healthy_and_the_preseed_finished():
    health = Health()
    assert health.verdict() == (False, "root.containerd is not started")
    _feed(health, (C, None, NodeState.NEW), (C, NodeState.NEW, NodeState.HEALTHY))
    assert health.verdict() == (
        False,
        "root.containerd.preseed is still importing the initial images",
    )
    _feed(health, (P, NodeState.NEW, NodeState.DEAD))  # a failed preseed: still a node
    assert health.verdict() == (True, "ok")
    _feed(health, (C, NodeState.HEALTHY, NodeState.DEAD))
    assert health.verdict() == (False, "root.containerd is NODE_STATE_DEAD")


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def test_healthz_answers_503_with_the_reason_then_200_and_metrics_stay_unchanged():
    metrics, health = Metrics(), Health()
    server = metrics.serve("127.0.0.1:0", health)
    try:
        base = server.url.removesuffix("/metrics")
        assert _get(f"{base}/healthz") == (503, "root.containerd is not started\n")
        _feed(health, (C, None, NodeState.HEALTHY), (P, None, NodeState.DONE))
        assert _get(f"{base}/healthz") == (200, "ok\n")
        status, text = _get(server.url)
        assert status == 200 and parse(text)[0]
    finally:
        server.shutdown()
