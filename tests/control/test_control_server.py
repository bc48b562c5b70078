"""The control server: its socket file, its neighbours, and how its streams end."""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import sys
import threading

import grpc
import pytest

from actors.agent.control.server import ControlError, ControlServer
from actors.agent.control.wire import SocketState, probe_socket
from messages.control import control_pb2 as pb
from messages.control import control_pb2_grpc as pb_grpc
from tests.support.control import AcceptAndClose, Backend, foreign_grpc_server, node
from tests.support.project import python_env
from tests.support.waiting import wait_until

pytestmark = pytest.mark.timeout(30)


def _stub(path: str) -> tuple[grpc.Channel, pb_grpc.ControlStub]:
    channel = grpc.insecure_channel("unix:" + path)
    return channel, pb_grpc.ControlStub(channel)


def test_the_sockets_are_created_with_mode_0600_and_no_temporary_file_is_left(short_dir):
    path = short_dir / "control.sock"
    server = ControlServer(path, Backend())
    server.start()
    try:
        for name in ("control.sock", "control.sock.plain"):
            st = os.stat(short_dir / name)
            assert stat.S_ISSOCK(st.st_mode)
            assert stat.S_IMODE(st.st_mode) == 0o600
        assert sorted(os.listdir(short_dir)) == ["control.sock", "control.sock.plain"]
    finally:
        server.stop(0)
    assert os.listdir(short_dir) == []


def test_a_path_too_long_for_the_private_detour_is_bound_in_place_with_mode_0600(short_dir):
    # 105 bytes fit a socket path; the detour <deep>/.XXXXXXXX/s would take 115.
    deep = short_dir / ("d" * (102 - len(str(short_dir))))
    path = deep / "c"
    assert len(str(path)) == 105
    server = ControlServer(path, Backend())
    server.start()
    try:
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        assert os.listdir(deep) == ["c"]
        channel, stub = _stub(str(path))
        with channel:
            assert stub.Hello(pb.HelloRequest(), timeout=5).product == "node-containerd"
    finally:
        server.stop(0)
    assert not path.exists()


def test_hello_names_the_product_protocol_and_pid(served):
    channel, stub = _stub(served.path)
    with channel:
        reply = stub.Hello(pb.HelloRequest(client_version="0.1.0", protocol=1), timeout=5)
    assert (reply.product, reply.protocol, reply.pid) == ("node-containerd", 1, os.getpid())
    assert reply.version


def test_a_stale_socket_file_is_replaced(short_dir):
    path = str(short_dir / "control.sock")
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(path)
    stale.close()  # the file stays, nobody listens
    assert probe_socket(path) == SocketState.REFUSED
    server = ControlServer(path, Backend())
    server.start()
    try:
        assert probe_socket(path) == SocketState.LISTENING
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    finally:
        server.stop(0)


def test_start_refuses_a_socket_another_agent_serves(served):
    other = ControlServer(served.path, Backend())
    with pytest.raises(ControlError) as e:
        other.start()
    assert str(e.value) == (
        f"another node-containerd agent (pid {os.getpid()}) is already serving "
        f"control socket {served.path!r}"
    )
    channel, stub = _stub(served.path)
    with channel:  # the first agent still answers
        assert stub.Status(pb.StatusRequest(), timeout=5).nodes


def test_start_refuses_a_socket_another_program_listens_on(short_dir):
    path = str(short_dir / "control.sock")
    foreign = AcceptAndClose(path)
    try:
        with pytest.raises(ControlError) as e:
            ControlServer(path, Backend()).start()
        assert str(e.value) == f"control socket {path!r} is in use by another program"
    finally:
        foreign.close()


def test_start_refuses_a_path_that_is_not_a_socket(short_dir):
    path = short_dir / "control.sock"
    path.write_text("precious")
    with pytest.raises(ControlError) as e:
        ControlServer(path, Backend()).start()
    assert str(e.value) == f"control socket path {str(path)!r} exists and is not a socket"
    assert path.read_text() == "precious"


def test_stop_removes_its_socket_file_but_not_one_that_replaced_it(short_dir):
    path = str(short_dir / "control.sock")
    server = ControlServer(path, Backend())
    server.start()
    server.stop(0)
    assert not os.path.exists(path)

    server = ControlServer(path, Backend())
    server.start()
    os.unlink(path)
    newcomer = foreign_grpc_server(path)
    try:
        server.stop(0)
        assert probe_socket(path) == SocketState.LISTENING
    finally:
        newcomer.stop(0)


def test_a_follow_stream_ends_cleanly_when_the_server_stops(served):
    served.backend.log("root", "before")
    channel, stub = _stub(served.path)
    with channel:
        call = stub.Logs(pb.LogsRequest(dn="root", backlog_all=True, follow=True))
        assert next(call).lines == ["before"]
        stopper = threading.Thread(target=served.server.stop, args=(5,))
        stopper.start()
        assert list(call) == []  # no error: the stream ended with OK
        assert call.code() == grpc.StatusCode.OK
        stopper.join(timeout=10)
        assert not stopper.is_alive()


def test_a_follow_stream_releases_its_reader_when_the_client_goes_away(served):
    served.backend.log("root", "before")
    channel, stub = _stub(served.path)
    with channel:
        call = stub.Logs(pb.LogsRequest(dn="root", backlog_all=True, follow=True))
        assert next(call).lines == ["before"]
        assert served.server.open_readers == 1
        call.cancel()
    wait_until(lambda: served.server.open_readers == 0, 10, "reader closed")
    served.backend.log("root", "after")  # nobody is left to offer it to


def test_followers_beyond_the_limit_are_refused_and_status_still_answers(served):
    channel, stub = _stub(served.path)
    with channel:
        calls = [stub.Logs(pb.LogsRequest(dn="root", follow=True)) for _ in range(4)]
        wait_until(lambda: served.server.open_readers == 4, 10, "4 followers")
        with pytest.raises(grpc.RpcError) as e:
            next(stub.Logs(pb.LogsRequest(dn="root", follow=True)))
        assert e.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert e.value.details() == "too many log followers: at most 4 at once"
        assert len(stub.Status(pb.StatusRequest(), timeout=5).nodes) == 4
        for call in calls:
            call.cancel()


def test_a_slow_follower_gets_a_marker_exactly_where_it_missed_entries(served):
    served.backend.log("root", "ready")
    channel, stub = _stub(served.path)
    with channel:
        call = stub.Logs(pb.LogsRequest(dn="root", backlog_count=1, follow=True))
        assert next(call).lines == ["ready"]
        # The stream holds 10 entries (stream_buffer=10); one write of 1000 lines drops 990.
        served.backend.log_tree.write_raw("root", b"".join(b"burst %d\n" % i for i in range(1000)))
        got = [next(call) for _ in range(11)]
        assert [m.data for m in got[:10]] == [b"burst %d" % i for i in range(10)]
        assert got[10] == pb.LogEntry(kind=pb.ENTRY_KIND_MISSED, missed=990)
        served.backend.log("root", "after")
        after = next(call)
        assert (after.kind, after.lines, after.missed) == (pb.ENTRY_KIND_LEVELED, ["after"], 0)
        call.cancel()


def test_a_logs_request_with_a_bad_dn_is_refused_with_invalid_argument(served):
    channel, stub = _stub(served.path)
    with channel, pytest.raises(grpc.RpcError) as e:
        list(stub.Logs(pb.LogsRequest(dn="Root")))
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert e.value.details() == "dn 'Root' is invalid: part 'Root' does not match [a-z0-9_]{1,64}"


def _big_backlog(backend: Backend) -> None:
    """8192 raw lines of 1000 bytes: far more than gRPC sends before the client reads."""
    line = b"x" * 999 + b"\n"
    backend.log_tree.write_raw("root", line * 8192)


def test_stalled_log_readers_are_counted_then_cut_and_status_always_answers(short_dir):
    """Issue 20 item 7: 24 backlog reads whose clients stopped reading held every worker."""
    backend = Backend([node("root", "HEALTHY", pid=100)])
    _big_backlog(backend)
    path = str(short_dir / "control.sock")
    server = ControlServer(path, backend, max_followers=2, max_readers=4, stall_timeout=2.0)
    server.start()
    channels = [grpc.insecure_channel("unix:" + path) for _ in range(24)]
    try:
        calls = [
            pb_grpc.ControlStub(c).Logs(pb.LogsRequest(dn="root", backlog_all=True))
            for c in channels
        ]  # and never read
        wait_until(lambda: server.open_readers == 4, 10, "4 stalled readers")
        channel, stub = _stub(path)
        with channel:
            assert len(stub.Status(pb.StatusRequest(), timeout=5).nodes) == 1
            assert stub.Hello(pb.HelloRequest(), timeout=5).product == "node-containerd"
            with pytest.raises(grpc.RpcError) as e:
                next(stub.Logs(pb.LogsRequest(dn="root", backlog_all=True)))
            assert e.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert e.value.details() == "too many log readers: at most 4 at once"
            # A client that stopped reading is cut once the stall timeout has passed.
            wait_until(lambda: server.open_readers == 0, timeout=10, what="stalled readers cut")
            entries = list(stub.Logs(pb.LogsRequest(dn="root", backlog_all=True), timeout=30))
            assert len(entries) == 8192
        ended = []
        for call in calls:
            with pytest.raises(grpc.RpcError) as e:
                for _ in call:
                    pass
            ended.append(e.value.code())
        assert sorted(c.name for c in ended) == ["CANCELLED"] * 4 + ["RESOURCE_EXHAUSTED"] * 20
    finally:
        for c in channels:
            c.close()
        server.stop(0)


@pytest.mark.parametrize("seed", ["0", "1", "2", "3", "4", "5"])
def test_an_entrys_fields_cross_the_grpc_wire_in_the_lines_order_whatever_the_hash_seed(seed):
    # A protobuf map's iteration order follows the process's string hashes: without
    # `field_order`, the gRPC client showed a line's fields in a different order than
    # the plain socket in about half of all processes.
    code = (
        "from actors.agent.control.wire import entry_from_proto, entry_to_proto\n"
        "from actors.logtree import RawEntry\n"
        "from messages.control import control_pb2 as pb\n"
        "fields = {'type': 't', 'sandbox': 's', 'container': 'c', 'error': 'e'}\n"
        "entry = RawEntry(1, 'root.x', b'line', 4, 1.0, fields)\n"
        "wire = pb.LogEntry.FromString(entry_to_proto(entry).SerializeToString())\n"
        "print(list(entry_from_proto(wire).fields))\n"
        "del wire.field_order[:]\n"  # an agent from before the field: sorted
        "print(list(entry_from_proto(wire).fields))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        env={**python_env(), "PYTHONHASHSEED": seed},
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    assert out == [
        "['type', 'sandbox', 'container', 'error']",
        "['container', 'error', 'sandbox', 'type']",
    ]
