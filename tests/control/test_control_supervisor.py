"""The control socket in front of a real Supervisor running real processes."""

from __future__ import annotations

import json
import os

import pytest

from actors.agent.control.client import cmd_logs, cmd_restart, cmd_status
from actors.agent.control.server import ControlServer
from actors.agent.metrics import Metrics
from actors.supervisor.core.events import RunnableSpec
from actors.supervisor.core.policy import PolicyRule, PolicySet
from actors.supervisor.runtime.actor import Supervisor
from actors.supervisor.testing.harness import KIT
from actors.supervisor.testing.kit import Probe, StateRecorder
from tests.support.control import logs_args, restart_args, status_args
from tests.support.prometheus import parse

pytestmark = pytest.mark.timeout(60)


FAST = {"backoff_initial": 0.05, "backoff_max": 1.0, "grace_period": 2.0, "heartbeat_interval": 0.2}


def _status(path: str, capsys) -> dict[str, dict]:
    assert cmd_status(status_args(path, json=True)) == 0
    return {n["dn"]: n for n in json.loads(capsys.readouterr().out)["nodes"]}


def test_status_restart_logs_and_metrics_of_a_real_supervision_tree(short_dir, capsys):
    probe = Probe(short_dir / "probe")
    healthy = [KIT + "becomes_healthy", {"events": probe.events_path}]
    root = RunnableSpec(
        target=KIT + "group",
        args={
            "events": probe.events_path,
            "children": {"a": healthy, "ab": healthy},
            "done": False,
        },
    )
    metrics, states = Metrics(), StateRecorder()
    sup = Supervisor(
        root,
        policies=PolicySet(rules=[PolicyRule("*", FAST)]),
        observers=[metrics.observe_state, states],
    )
    path = str(short_dir / "control.sock")
    server = ControlServer(path, sup)
    server.start()
    try:
        sup.start()
        for dn in ("root", "root.a", "root.ab"):
            states.wait_for(dn, "HEALTHY")
        first = _status(path, capsys)
        assert {dn: (n["state"], n["restarts"]) for dn, n in first.items()} == {
            "root": ("HEALTHY", 0),
            "root.a": ("HEALTHY", 0),
            "root.ab": ("HEALTHY", 0),
        }
        assert all(isinstance(n["pid"], int) for n in first.values())

        assert cmd_restart(restart_args(path, "root.a")) == 0
        assert capsys.readouterr().out == (
            "restarting root.a: cancelled it; the supervisor starts it again now\n"
        )
        probe.wait_for("root.a", "started", count=2)
        states.wait_for("root.a", "HEALTHY", count=2)
        second = _status(path, capsys)
        assert (second["root.a"]["restarts"], second["root.ab"]["restarts"]) == (1, 0)
        assert second["root.a"]["pid"] != first["root.a"]["pid"]
        assert second["root.ab"]["pid"] == first["root.ab"]["pid"]
        assert probe.count("root.ab", "started") == 1

        assert cmd_logs(logs_args(path, "root.a")) == 0
        assert "rescheduling supervised node 'root.a'" in capsys.readouterr().out

        assert cmd_restart(restart_args(path, "root.nope")) == 1
        assert capsys.readouterr().err == "cannot restart 'root.nope': no node 'root.nope'\n"

        _, samples = parse(metrics.render())
        assert samples[("node_containerd_dn_restarts_total", (("dn", "root.a"),))] == 1.0
        assert ("node_containerd_dn_restarts_total", (("dn", "root.ab"),)) not in samples
        gauge = (
            "monogon_supervisor_dn_state_total",
            (("dn", "root.a"), ("state", "NODE_STATE_HEALTHY")),
        )
        assert samples[gauge] == 1.0
    finally:
        server.stop(0)
        sup.stop(timeout=30)
        probe.close()
    assert not os.path.exists(path)
