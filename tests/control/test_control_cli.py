"""``status``, ``logs`` and ``restart`` against a real control server on a real socket."""

from __future__ import annotations

import dataclasses
import json
import socket
import threading
import time
from concurrent import futures

import grpc
import pytest

from actors.agent.control import client
from actors.agent.control.client import cmd_logs, cmd_restart, cmd_status
from actors.containerd.runtimes.sandbox_image import SANDBOX_IMAGE_FACT, SandboxImageState
from actors.logtree import Severity, entry_to_dict, format_entry
from actors.supervisor.runtime import clock
from messages.control import control_pb2 as pb
from messages.control import control_pb2_grpc as pb_grpc
from tests.support.control import (
    AcceptAndClose,
    CliProcess,
    foreign_grpc_server,
    logs_args,
    node,
    on_a_terminal,
    restart_args,
    status_args,
)
from tests.support.log_entries import RUNSC_PODS, attributed_batches, runsc_recording
from tests.support.waiting import wait_until

pytestmark = pytest.mark.timeout(30)


# ---------------------------------------------------------------- status


def _recent_nodes(age: float = 5.5) -> list:
    since = clock.monotonic() - age
    return [
        node("root", "HEALTHY", pid=100, since=since),
        node("root.a", "HEALTHY", pid=101, since=since),
        node("root.a.b", "DEAD", pid=None, restarts=3, last_error="exit status 1", since=since),
        node("root.ab", "DONE", pid=None, since=since),
    ]


def test_status_json_is_exactly_the_documented_schema_with_wall_clock_since(served, capsys):
    served.backend.nodes = _recent_nodes(5.5)
    before = time.time()
    assert cmd_status(status_args(served.path, json=True)) == 0
    after = time.time()
    doc = json.loads(capsys.readouterr().out)
    assert list(doc) == ["nodes", "sandbox_image"]
    assert doc["sandbox_image"] is None
    since = [n.pop("since") for n in doc["nodes"]]
    assert doc["nodes"] == [
        {
            "dn": "root",
            "state": "HEALTHY",
            "pid": 100,
            "restarts": 0,
            "last_error": None,
            "facts": {},
        },
        {
            "dn": "root.a",
            "state": "HEALTHY",
            "pid": 101,
            "restarts": 0,
            "last_error": None,
            "facts": {},
        },
        {
            "dn": "root.a.b",
            "state": "DEAD",
            "pid": None,
            "restarts": 3,
            "last_error": "exit status 1",
            "facts": {},
        },
        {
            "dn": "root.ab",
            "state": "DONE",
            "pid": None,
            "restarts": 0,
            "last_error": None,
            "facts": {},
        },
    ]
    for value in since:
        assert isinstance(value, float)
        assert before - 5.5 - 0.5 <= value <= after - 5.5 + 0.5


def test_status_prints_a_tree_indented_by_dn_depth_without_colour_off_a_terminal(served, capsys):
    served.backend.nodes = _recent_nodes(5.5)
    assert cmd_status(status_args(served.path)) == 0
    assert capsys.readouterr().out == (
        "NODE          STATE         PID  RESTARTS  FOR\n"
        "root          HEALTHY       100         0  5s\n"
        "  root.a      HEALTHY       101         0  5s\n"
        "    root.a.b  DEAD            -         3  5s\n"
        "      last error: exit status 1\n"
        "  root.ab     DONE            -         0  5s\n"
    )


def _statuson_a_terminal(path: str, no_color: str | None) -> str:
    return on_a_terminal(["status", "--socket", path], no_color)


def test_status_colours_states_only_on_a_terminal_and_not_with_no_color(served):
    served.backend.nodes = _recent_nodes()
    coloured = _statuson_a_terminal(served.path, None)
    assert "\x1b[32mHEALTHY \x1b[0m" in coloured and "\x1b[1;31mDEAD    \x1b[0m" in coloured
    plain = _statuson_a_terminal(served.path, "1")
    assert "\x1b[" not in plain and "HEALTHY" in plain


def _with_sandbox_fact(present: bool) -> list:
    nodes = _recent_nodes()
    state = SandboxImageState(
        image="registry.k8s.io/pause:3.6",
        present=present,
        tarball_dir="/st/preseed/k8s.io",
        watched=True,
    )
    nodes[1] = dataclasses.replace(nodes[1], facts={SANDBOX_IMAGE_FACT: state.to_fact()})
    return nodes


def test_status_json_carries_the_sandbox_image_state_a_node_reported_as_a_fact(served, capsys):
    served.backend.nodes = _with_sandbox_fact(present=False)
    assert cmd_status(status_args(served.path, json=True)) == 0
    doc = json.loads(capsys.readouterr().out)
    fact = {
        "image": "registry.k8s.io/pause:3.6",
        "namespace": "k8s.io",
        "present": False,
        "tarball_dir": "/st/preseed/k8s.io",
        "watched": True,
    }
    assert doc["sandbox_image"] == {**fact, "dn": "root.a"}
    assert [n["facts"] for n in doc["nodes"]] == [{}, {"sandbox_image": fact}, {}, {}]


def test_status_warns_under_the_node_whose_fact_says_the_sandbox_image_is_missing(served, capsys):
    served.backend.nodes = _with_sandbox_fact(present=False)
    assert cmd_status(status_args(served.path)) == 0
    assert capsys.readouterr().out.splitlines()[2:4] == [
        "  root.a      HEALTHY       101         0  5s",
        "    warning: sandbox image 'registry.k8s.io/pause:3.6' is missing from namespace "
        "'k8s.io': pods cannot start without a registry; copy its image tarball into "
        "'/st/preseed/k8s.io': the preseed's watch imports it when the copy is complete; "
        "no restart is needed",
    ]
    served.backend.nodes = _with_sandbox_fact(present=True)
    assert cmd_status(status_args(served.path)) == 0
    assert "warning" not in capsys.readouterr().out


def test_logs_colour_warnings_and_errors_only_on_a_terminal_and_not_with_no_color(served, capsys):
    served.backend.log("root", "calm")
    served.backend.log("root", "careful", Severity.WARNING)
    served.backend.log("root", "broken", Severity.ERROR)
    coloured = on_a_terminal(["logs", "root", "--socket", served.path], None).splitlines()
    assert [line.startswith("\x1b[") for line in coloured] == [False, True, True]
    assert coloured[1].startswith("\x1b[33mroot  W") and coloured[2].endswith("broken\x1b[0m")
    assert "\x1b[" not in on_a_terminal(["logs", "root", "--socket", served.path], "1")
    assert cmd_logs(logs_args(served.path, "root")) == 0
    assert "\x1b[" not in capsys.readouterr().out


def test_logs_follow_without_n_sends_the_newest_ten_of_the_backlog_first(served):
    from actors.agent.control.client import FOLLOW_BACKLOG, logs_request

    followed = logs_request(logs_args(served.path, "root", follow=True))
    assert (followed.WhichOneof("backlog"), followed.backlog_count) == ("backlog_count", 10)
    assert FOLLOW_BACKLOG == 10
    everything = logs_request(logs_args(served.path, "root", follow=True, lines="all"))
    assert everything.WhichOneof("backlog") == "backlog_all"
    assert logs_request(logs_args(served.path, "root")).WhichOneof("backlog") == "backlog_all"


def test_status_of_a_tree_not_started_yet_says_so(served, capsys):
    served.backend.nodes = []
    assert cmd_status(status_args(served.path)) == 0
    assert capsys.readouterr().out == "no nodes: the supervision tree has not started yet\n"


# ---------------------------------------------------------------- logs


def _stored(served, dn: str = "", **kw) -> list:
    return served.backend.log_tree.read(dn, subtree=True, backlog=None, **kw).backlog


def _lines(entries: list) -> str:
    return "".join(format_entry(e) + "\n" for e in entries)


def test_logs_n_prints_the_newest_entries_of_the_backlog(served, capsys):
    for i in range(5):
        served.backend.log("root", f"line {i}")
    assert cmd_logs(logs_args(served.path, "root", lines=2)) == 0
    out = capsys.readouterr().out
    assert out == _lines(_stored(served, "root")[-2:])
    assert out.endswith("test.py:7] line 4\n") and "line 2" not in out


def test_logs_of_a_dn_is_exact_and_children_adds_its_subtree_only(served, capsys):
    for dn in ("root", "root.a", "root.a.b", "root.ab"):
        served.backend.log(dn, f"hello from {dn}")
    assert cmd_logs(logs_args(served.path, "root.a")) == 0
    assert capsys.readouterr().out == _lines(_stored(served, "root.a")[:1])
    assert cmd_logs(logs_args(served.path, "root.a", children=True)) == 0
    out = capsys.readouterr().out
    assert [line.split("  ")[0] for line in out.splitlines()] == ["root.a", "root.a.b"]
    assert cmd_logs(logs_args(served.path, None)) == 0
    assert capsys.readouterr().out == _lines(_stored(served))


def test_logs_severity_filters_leveled_entries_and_keeps_raw_lines(served, capsys):
    for severity in Severity:
        served.backend.log("root", f"at {severity.name}", severity)
    served.backend.log_tree.write_raw("root", b"a raw line\n", timestamp=1_700_000_001.0)
    assert cmd_logs(logs_args(served.path, "root", severity=Severity.WARNING)) == 0
    out = capsys.readouterr().out
    assert out == _lines(_stored(served, "root", min_severity=Severity.WARNING))
    assert [line.split("  ")[1][0] for line in out.splitlines()] == ["W", "E", "F", "R"]


def test_logs_raw_only_and_leveled_only_select_the_kind(served, capsys):
    served.backend.log("root", "leveled")
    served.backend.log_tree.write_raw("root", b"raw\n", timestamp=1_700_000_001.0)
    assert cmd_logs(logs_args(served.path, "root", raw_only=True)) == 0
    assert capsys.readouterr().out == _lines(_stored(served, "root", leveled=False))
    assert cmd_logs(logs_args(served.path, "root", leveled_only=True)) == 0
    assert capsys.readouterr().out == _lines(_stored(served, "root", raw=False))


def test_logs_json_prints_one_entry_dict_per_line(served, capsys):
    served.backend.log("root", "two\nlines", Severity.ERROR)
    served.backend.log_tree.write_raw("root", b"\xffbad utf-8\n" + b"x" * 2000 + b"\n")
    assert cmd_logs(logs_args(served.path, "root", json=True)) == 0
    got = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert got == [entry_to_dict(e) for e in _stored(served, "root")]
    assert got[2]["cut"] is True and got[2]["original_length"] == 2000


def test_logs_of_an_unknown_dn_fails_and_says_so(served, capsys):
    assert cmd_logs(logs_args(served.path, "root.nope")) == 1
    assert capsys.readouterr().err == (
        "cannot read the logs of 'root.nope': no node and no logs at dn 'root.nope'\n"
    )


def test_logs_follow_streams_a_line_written_after_it_started_and_exits_0_on_ctrl_c(served):
    served.backend.log("root", "before the call")
    cli = CliProcess(["logs", "root", "-f", "--socket", served.path])
    try:
        cli.wait_line("out", "before the call")  # backlog sent: the stream is registered
        served.backend.log("root", "written after the call started")
        cli.wait_line("out", "written after the call started")
        assert cli.interrupt() == 0
    finally:
        cli.kill()


def test_logs_follow_ends_with_exit_0_and_a_notice_when_the_agent_stops(served):
    served.backend.log("root", "before the stop")
    cli = CliProcess(["logs", "-f", "--socket", served.path])
    try:
        cli.wait_line("out", "before the stop")
        served.server.stop(5)
        assert cli.proc.wait(timeout=10) == 0
        cli.wait_line("err", "node-containerd: the agent stopped: no more log entries")
    finally:
        cli.kill()


def test_logs_follow_reports_entries_missed_by_a_slow_reader_where_they_went_missing(served):
    served.backend.log("root", "ready")
    cli = CliProcess(["logs", "root", "-f", "-n", "1", "--socket", served.path])
    try:
        cli.wait_line("out", "ready")
        # One write of 1000 lines into a stream that holds 10: 990 are dropped at once.
        served.backend.log_tree.write_raw("root", b"".join(b"burst %d\n" % i for i in range(1000)))
        assert cli.wait_line("err", "missed") == (
            "node-containerd: 990 log entries missed here: this reader was too slow "
            "and the agent does not wait for readers"
        )
        served.backend.log("root", "after the burst")
        cli.wait_line("out", "after the burst")
        assert cli.interrupt() == 0
        burst = [line.rsplit("] ", 1)[1] for line in cli.lines["out"] if "] burst" in line]
        assert burst == [f"burst {i}" for i in range(10)]
    finally:
        cli.kill()


# ---------------------------------------------------------------- restart


def test_restart_of_a_node_cancels_its_subtree_and_says_what_it_did(served, capsys):
    assert cmd_restart(restart_args(served.path, "root.a")) == 0
    assert served.backend.restarted == ["root.a"]
    assert capsys.readouterr().out == (
        "restarting root.a: cancelled it and 1 node(s) below it (root.a.b); "
        "the supervisor starts it again now\n"
    )


def test_restart_of_an_unknown_dn_fails_with_exit_1_and_says_so(served, capsys):
    assert cmd_restart(restart_args(served.path, "root.nope")) == 1
    assert served.backend.restarted == []
    assert capsys.readouterr().err == "cannot restart 'root.nope': no node 'root.nope'\n"


# ---------------------------------------------------------------- no agent, not ours


def test_every_command_exits_3_when_no_socket_file_exists(short_dir, capsys):
    path = str(short_dir / "control.sock")
    for code in (
        cmd_status(status_args(path)),
        cmd_logs(logs_args(path)),
        cmd_restart(restart_args(path, "root")),
    ):
        assert code == 3
    message = f"node-containerd is not running: no control socket at {path!r}\n"
    assert capsys.readouterr().err == message * 3


def test_status_exits_3_on_a_stale_socket_file_nobody_listens_on(short_dir, capsys):
    path = str(short_dir / "control.sock")
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(path)
    stale.close()
    assert cmd_status(status_args(path)) == 3
    assert capsys.readouterr().err == (
        f"node-containerd is not running: no control socket at {path!r}\n"
    )


def test_status_exits_4_when_the_socket_accepts_and_closes(short_dir, capsys):
    path = str(short_dir / "control.sock")
    foreign = AcceptAndClose(path)
    try:
        assert cmd_status(status_args(path)) == 4
    finally:
        foreign.close()
    assert capsys.readouterr().err == f"{path!r} is not a node-containerd control socket\n"


def test_status_exits_4_when_another_grpc_server_answers(short_dir, capsys):
    path = str(short_dir / "control.sock")
    foreign = foreign_grpc_server(path)
    try:
        assert cmd_status(status_args(path)) == 4
    finally:
        foreign.stop(0)
    assert capsys.readouterr().err == f"{path!r} is not a node-containerd control socket\n"


class _SilentHello(pb_grpc.ControlServicer):
    """An agent too busy to answer: its Hello answers after the client gave up."""

    def __init__(self) -> None:
        self.release = threading.Event()

    def Hello(self, request, context):
        self.release.wait(10)
        return pb.HelloReply(product="node-containerd", protocol=1)


def test_an_agent_that_does_not_answer_in_time_is_named_not_answering_not_foreign(
    short_dir, capsys, monkeypatch
):
    """Issue 20 item 7: a starved agent was called "not a node-containerd control socket"."""
    monkeypatch.setattr(client, "HELLO_TIMEOUT", 1.0)
    path = str(short_dir / "control.sock")
    servicer = _SilentHello()
    server = grpc.server(futures.ThreadPoolExecutor(2))
    pb_grpc.add_ControlServicer_to_server(servicer, server)
    server.add_insecure_port("unix:" + path)
    server.start()
    try:
        assert cmd_status(status_args(path)) == 1
    finally:
        servicer.release.set()
        server.stop(0)
    assert capsys.readouterr().err == (
        f"node-containerd at {path!r} is not answering: no reply to Hello within 1s\n"
    )


def test_status_answers_while_clients_that_stopped_reading_hold_every_log_slot(served, capsys):
    """Issue 20 item 7: 24 stalled backlog reads made `status` exit 4."""
    served.backend.log_tree.write_raw("root", (b"x" * 999 + b"\n") * 8192)
    channels = [grpc.insecure_channel("unix:" + served.path) for _ in range(24)]
    try:
        calls = [
            pb_grpc.ControlStub(c).Logs(pb.LogsRequest(dn="root", backlog_all=True))
            for c in channels
        ]
        wait_until(lambda: served.server.open_readers == 16, 10, "16 stalled readers")
        assert cmd_status(status_args(served.path)) == 0
        assert "root.a.b" in capsys.readouterr().out
        assert cmd_logs(logs_args(served.path, dn="root", lines=1)) == 1
        assert capsys.readouterr().err == (
            "cannot read the logs of 'root': too many log readers: at most 16 at once\n"
        )
        del calls
    finally:
        for c in channels:
            c.close()


def test_status_exits_4_when_the_path_is_not_a_socket(short_dir, capsys):
    path = short_dir / "control.sock"
    path.write_text("not a socket")
    assert cmd_status(status_args(str(path))) == 4
    assert capsys.readouterr().err == f"{str(path)!r} is not a node-containerd control socket\n"


# ---------------------------------------------------------------- the socket from the config


def test_the_socket_is_taken_from_the_config_when_not_given(served, short_dir, capsys):
    config = short_dir / "agent.toml"
    config.write_text(f'[control]\nsocket = "{served.path}"\n')
    assert cmd_status(status_args(None, config=str(config), json=True)) == 0
    assert len(json.loads(capsys.readouterr().out)["nodes"]) == 4


def test_a_bad_config_exits_2_with_its_problems(short_dir, capsys):
    config = short_dir / "agent.toml"
    config.write_text("[control]\nsockett = 1\n")
    assert cmd_status(status_args(None, config=str(config))) == 2
    assert capsys.readouterr().err == (
        f"key 'control.sockett' in {config!s}: unknown key; did you mean 'socket'?\n"
    )


def _write_parsed(served, data: bytes, fmt: str = "glog") -> None:
    from actors.logtree import ParseFormat
    from actors.logtree.parse import StreamParser

    parser = StreamParser(ParseFormat(fmt))
    parser.feed(data, 1_800_000_000.0)
    parser.close_entry()
    served.backend.log_tree.write_parsed("root", parser.take(keep_open=False))


RUNSC = (
    b"D1204 02:46:05.100000 7 boot.go:1] debug line\n"
    b"W1204 02:46:06.200000 7 boot.go:2] a warning\n"
    b"E1204 02:46:07.300000 7 boot.go:3] an error\n"
)


def test_logs_show_parsed_entries_with_their_own_time_severity_and_source(served, capsys):
    _write_parsed(served, RUNSC)
    assert cmd_logs(logs_args(served.path, "root", severity=Severity.ERROR)) == 0
    out = capsys.readouterr().out
    assert out == _lines(_stored(served, "root", min_severity=Severity.ERROR))
    assert out.endswith(" boot.go:3] an error\n") and out.startswith("root  E1204 ")
    assert cmd_logs(logs_args(served.path, "root", json=True, severity=Severity.WARNING)) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(r["severity"], r["source"], r["pid"], r["raw"]) for r in rows] == [
        ("WARNING", "boot.go:2", 7, RUNSC.splitlines()[1].decode()),
        ("ERROR", "boot.go:3", 7, RUNSC.splitlines()[2].decode()),
    ]


def test_logs_since_leaves_out_entries_older_than_their_own_time(served, capsys):
    _write_parsed(served, RUNSC)
    middle = [e for e in _stored(served, "root")][1].timestamp
    assert cmd_logs(logs_args(served.path, "root", since=middle)) == 0
    assert capsys.readouterr().out == _lines(_stored(served, "root")[1:])


def test_logs_since_takes_a_duration_or_a_time_and_names_a_bad_one() -> None:
    from actors.agent.cli import build_parser

    parser = build_parser()
    before = time.time()
    args = parser.parse_args(["logs", "--since", "2h"])
    assert before - 7200 - 1 <= args.since <= time.time() - 7200
    args = parser.parse_args(["logs", "--since", "2026-12-04T02:36:55Z"])
    assert args.since == 1796351815.0
    with pytest.raises(SystemExit):
        parser.parse_args(["logs", "--since", "yesterday"])


def test_logs_sandbox_and_container_show_only_that_pods_runsc_lines(served, capsys):
    dn, recording = "root.containerd.runsc", "runsc-pod-beside-pod.log.gz"
    for batch in attributed_batches(runsc_recording(recording)):
        served.backend.log_tree.write_parsed(dn, batch)
    pod = RUNSC_PODS[recording]["pods"][0]
    assert cmd_logs(logs_args(served.path, dn, json=True, sandbox=pod["sandbox"][:8])) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    stored = _stored(served, dn, fields={"sandbox": pod["sandbox"]})
    assert rows == [entry_to_dict(e) for e in stored]
    assert {r["fields"]["sandbox"] for r in rows} == {pod["sandbox"]}
    assert {r["kind"] for r in rows} == {"leveled", "raw"}
    assert cmd_logs(logs_args(served.path, dn, container=pod["container"][:12], lines=3)) == 0
    out = capsys.readouterr().out
    assert out == _lines(_stored(served, dn, fields={"container": pod["container"]})[-3:])
    assert f" sandbox={pod['sandbox'][:12]} container={pod['container'][:12]}" in out
