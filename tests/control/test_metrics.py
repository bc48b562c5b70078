"""The Prometheus registry on prometheus_client: names as Monogon's, the text format read by
the library's own parser, the naming rules, and the library's HTTP endpoint."""

from __future__ import annotations

import dataclasses
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from actors.agent.metrics import (
    CONTENT_TYPE,
    MAX_CONNECTIONS,
    MAX_SERIES,
    PRESEED_FAILURES,
    READ_TIMEOUT,
    REQUEST_DEADLINE,
    Metrics,
    parse_listen,
)
from actors.containerd.runtimes.sandbox_image import SANDBOX_IMAGE_FACT, SandboxImageState
from actors.logtree import LeveledEntry, LogTree, Severity
from actors.supervisor.core.events import FactChanged, StateChanged
from actors.supervisor.core.states import NodeState
from actors.supervisor.runtime import clock
from tests.support.prometheus import naming_problems, parse

pytestmark = pytest.mark.timeout(30)

NEW, HEALTHY, DEAD = NodeState.NEW, NodeState.HEALTHY, NodeState.DEAD


def _feed(metrics: Metrics, *changes: tuple[str, NodeState | None, NodeState]) -> None:
    for now, (dn, old, new) in enumerate(changes):
        metrics.observe_state(StateChanged(dn=dn, old=old, new=new), float(now))


def test_an_empty_registry_renders_every_family_with_help_and_type_only():
    types, samples = parse(Metrics().render())
    assert types == {
        "monogon_supervisor_dn_state_total": "gauge",
        # prometheus_client appends _total to every counter: Go's name is served untyped.
        "monogon_supervisor_dn_state_transition_count": "untyped",
        "node_containerd_dn_restarts_total": "counter",
        "node_containerd_dn_state_age_seconds": "gauge",
        "node_containerd_dn_last_change_timestamp_seconds": "gauge",
        "node_containerd_preseed_bytes_total": "counter",
        "node_containerd_preseed_images_total": "counter",
        "node_containerd_preseed_failures_total": "counter",
        "node_containerd_log_bytes_total": "counter",
        "node_containerd_containerd_liveness_probes_total": "counter",
        "node_containerd_sandbox_image_present": "gauge",
        "node_containerd_containerd_liveness_probe_duration_seconds": "histogram",
        "node_containerd_preseed_import_duration_seconds": "histogram",
        "node_containerd_preseed_import_bytes": "histogram",
        "node_containerd_check_sandbox_start_duration_seconds": "histogram",
    }
    assert samples == {}


def test_every_metric_of_ours_follows_the_naming_rules_and_monogons_keep_their_names():
    metrics = Metrics(LogTree())
    _feed(metrics, ("root", None, NEW), ("root", NEW, DEAD), ("root", DEAD, NEW))
    metrics.add(
        "node_containerd_preseed_failures_total", 1, {"namespace": "k8s.io", "file": "a.tar"}
    )
    metrics.add("node_containerd_containerd_liveness_probes_total", 1, {"result": "ok"})
    metrics.observe("node_containerd_containerd_liveness_probe_duration_seconds", 0.002)
    metrics.observe("node_containerd_preseed_import_bytes", 5 << 20, {"namespace": "k8s.io"})
    types, samples = parse(metrics.render())
    assert naming_problems(types) == []
    assert types["monogon_supervisor_dn_state_total"] == "gauge"
    assert types["node_containerd_log_entries_dropped_total"] == "counter"
    assert len(types) == 16
    assert samples[("node_containerd_dn_restarts_total", (("dn", "root"),))] == 1.0
    liveness = "node_containerd_containerd_liveness_probe_duration_seconds"
    assert samples[(f"{liveness}_sum", ())] == 0.002
    assert samples[(f"{liveness}_count", ())] == 1


def test_the_sandbox_image_gauge_follows_the_preseeds_fact_and_nothing_else():
    metrics = Metrics()
    state = SandboxImageState(
        image="registry.k8s.io/pause:3.6", present=False, tarball_dir="/p/k8s.io", watched=True
    )
    key = ("node_containerd_sandbox_image_present", (("image", "registry.k8s.io/pause:3.6"),))
    metrics.observe_fact(FactChanged(dn="root.p", key="other", value={"present": True}))
    assert parse(metrics.render())[1] == {}
    metrics.observe_fact(FactChanged(dn="root.p", key=SANDBOX_IMAGE_FACT, value=state.to_fact()))
    assert parse(metrics.render())[1] == {key: 0.0}
    present = dataclasses.replace(state, present=True).to_fact()
    metrics.observe_fact(FactChanged(dn="root.p", key=SANDBOX_IMAGE_FACT, value=present))
    assert parse(metrics.render())[1] == {key: 1.0}
    metrics.observe_fact(FactChanged(dn="root.p", key=SANDBOX_IMAGE_FACT, value=None))
    assert parse(metrics.render())[1] == {}


def test_the_age_of_each_nodes_state_is_the_time_since_its_last_change():
    metrics = Metrics()
    now = clock.monotonic()
    metrics.observe_state(StateChanged(dn="root", old=None, new=NEW), now - 100)
    metrics.observe_state(StateChanged(dn="root.a", old=None, new=NEW), now - 50)
    metrics.observe_state(StateChanged(dn="root.a", old=NEW, new=HEALTHY), now - 7)
    _, samples = parse(metrics.render())
    root = samples[("node_containerd_dn_state_age_seconds", (("dn", "root"),))]
    child = samples[("node_containerd_dn_state_age_seconds", (("dn", "root.a"),))]
    assert 100 <= root < 100 + 60
    assert 7 <= child < 7 + 60


def test_log_entries_dropped_for_slow_readers_are_counted_also_after_the_reader_closed():
    tree = LogTree()
    metrics = Metrics(tree)
    slow = tree.read("", subtree=True, stream=True, buffer=2)
    for i in range(5):
        tree.write_leveled(
            LeveledEntry.from_message("root", Severity.INFO, f"line {i}", timestamp=1.0)
        )
    dropped = ("node_containerd_log_entries_dropped_total", ())
    assert parse(metrics.render())[1][dropped] == 3.0
    slow.close()
    with tree.read("", subtree=True, stream=True, buffer=1):
        for i in range(3):
            tree.write_leveled(
                LeveledEntry.from_message("root", Severity.INFO, f"more {i}", timestamp=1.0)
            )
        assert parse(metrics.render())[1][dropped] == 5.0
    assert parse(metrics.render())[1][dropped] == 5.0


def test_a_counter_no_one_declared_is_rendered_from_its_first_increment():
    metrics = Metrics()
    name = "node_containerd_something_new_total"
    assert name not in parse(metrics.render())[0]
    metrics.add(name, 1, {"result": "ok"})
    metrics.add(name, 2, {"result": "timeout"})
    types, samples = parse(metrics.render())
    assert types[name] == "counter"
    assert {k: v for k, v in samples.items() if k[0] == name} == {
        (name, (("result", "ok"),)): 1.0,
        (name, (("result", "timeout"),)): 2.0,
    }
    metrics.add("other_runnable_things_total", 3)
    text = metrics.render()
    assert f"# HELP {name} Counter added by a runnable of the supervision tree\n" in text
    assert (
        "# HELP node_containerd_containerd_liveness_probes_total Liveness probes of containerd "
        "by root.containerd, by result (ok, fail)\n" in text
    )
    assert (
        "# HELP other_runnable_things_total Counter added by a runnable of the supervision tree\n"
        in text
    )
    assert parse(text)[1][("other_runnable_things_total", ())] == 3.0


def test_state_changes_give_one_hot_state_gauges_transitions_and_restarts_as_go_does():
    metrics = Metrics()
    _feed(
        metrics,
        ("root", None, NEW),
        ("root", NEW, HEALTHY),
        ("root.a", None, NEW),
        ("root.a", NEW, DEAD),
        ("root.a", DEAD, NEW),
    )
    _, samples = parse(metrics.render())
    gauge = {
        (dict(k[1])["dn"], dict(k[1])["state"]): v
        for k, v in samples.items()
        if k[0] == "monogon_supervisor_dn_state_total"
    }
    assert gauge == {
        (dn, state.value): 1.0 if state is current else 0.0
        for dn, current in (("root", HEALTHY), ("root.a", NEW))
        for state in NodeState
    }
    transitions = {
        tuple(v for _, v in k[1]): n
        for k, n in samples.items()
        if k[0] == "monogon_supervisor_dn_state_transition_count"
    }
    # Labels sort as dn, new_state, old_state; a DN's first change counts from DEAD.
    assert transitions == {
        ("root", "NODE_STATE_NEW", "NODE_STATE_DEAD"): 1.0,
        ("root", "NODE_STATE_HEALTHY", "NODE_STATE_NEW"): 1.0,
        ("root.a", "NODE_STATE_NEW", "NODE_STATE_DEAD"): 2.0,
        ("root.a", "NODE_STATE_DEAD", "NODE_STATE_NEW"): 1.0,
    }
    restarts = {k: v for k, v in samples.items() if k[0] == "node_containerd_dn_restarts_total"}
    assert restarts == {("node_containerd_dn_restarts_total", (("dn", "root.a"),)): 1.0}


def test_counters_add_up_per_label_set_and_label_values_are_escaped():
    metrics = Metrics()
    odd = 'k8s"io\\x\nz'
    metrics.add("node_containerd_preseed_bytes_total", 1000, {"namespace": "k8s.io"})
    metrics.add("node_containerd_preseed_bytes_total", 24, {"namespace": "k8s.io"})
    metrics.add("node_containerd_preseed_images_total", labels={"namespace": odd})
    metrics.add("node_containerd_log_bytes_total", 0.5)
    text = metrics.render()
    assert 'namespace="k8s\\"io\\\\x\\nz"' in text
    _, samples = parse(text)
    assert samples == {
        ("node_containerd_preseed_bytes_total", (("namespace", "k8s.io"),)): 1024.0,
        ("node_containerd_preseed_images_total", (("namespace", odd),)): 1.0,
        ("node_containerd_log_bytes_total", ()): 0.5,
    }


@pytest.mark.parametrize(
    ("name", "value", "labels", "message"),
    [
        (
            "nope",
            1,
            None,
            (
                "metric 'nope' is not a counter name a runnable may add: expected "
                "[a-zA-Z_:][a-zA-Z0-9_:]* ending in '_total', and not one of "
                "['monogon_supervisor_dn_state_total', "
                "'monogon_supervisor_dn_state_transition_count', "
                "'node_containerd_dn_restarts_total', 'node_containerd_dn_state_age_seconds', "
                "'node_containerd_log_entries_dropped_total']"
            ),
        ),
        (
            "node_containerd_dn_restarts_total",
            1,
            None,
            (
                "metric 'node_containerd_dn_restarts_total' is not a counter name a runnable may "
                "add: expected [a-zA-Z_:][a-zA-Z0-9_:]* ending in '_total', and not one of "
                "['monogon_supervisor_dn_state_total', "
                "'monogon_supervisor_dn_state_transition_count', "
                "'node_containerd_dn_restarts_total', 'node_containerd_dn_state_age_seconds', "
                "'node_containerd_log_entries_dropped_total']"
            ),
        ),
        (
            "node_containerd_log_bytes_total",
            -1,
            None,
            "counter increment -1 of 'node_containerd_log_bytes_total' is not a finite number >= 0",
        ),
        (
            "node_containerd_log_bytes_total",
            float("nan"),
            None,
            "counter increment nan of 'node_containerd_log_bytes_total' is not a finite number >= 0",
        ),
        (
            "node_containerd_log_bytes_total",
            1,
            {"bad-name": "x"},
            "label name 'bad-name' of 'node_containerd_log_bytes_total' is invalid",
        ),
    ],
)
def test_a_bad_increment_is_refused_and_changes_nothing(name, value, labels, message):
    metrics = Metrics()
    before = metrics.render()
    with pytest.raises(ValueError) as e:
        metrics.add(name, value, labels)
    assert str(e.value) == message
    assert metrics.render() == before


@pytest.mark.parametrize(
    ("listen", "address"),
    [
        ("127.0.0.1:9464", ("127.0.0.1", 9464)),
        ("[::1]:9464", ("::1", 9464)),
        ("::1:0", ("::1", 0)),
        ("localhost:80", ("localhost", 80)),
    ],
)
def test_listen_addresses_are_read_as_host_and_port(listen, address):
    assert parse_listen(listen) == address


@pytest.mark.parametrize("listen", ["127.0.0.1", "127.0.0.1:http", "127.0.0.1:70000"])
def test_a_listen_address_without_a_valid_port_is_refused(listen):
    with pytest.raises(ValueError) as e:
        parse_listen(listen)
    assert str(e.value) == f"metrics listen address {listen!r} is invalid: expected host:port"


@pytest.mark.parametrize("listen", [("127.0.0.1", 0), "127.0.0.1:0"])
def test_the_endpoint_serves_the_registry_over_http_on_loopback(listen):
    metrics = Metrics()
    _feed(metrics, ("root", None, NEW))
    metrics.add("node_containerd_preseed_images_total", 2, {"namespace": "k8s.io"})
    server = metrics.serve(listen)
    try:
        host, port = server.server_address[:2]
        assert host == "127.0.0.1" and port > 0
        with urllib.request.urlopen(server.url, timeout=10) as reply:
            assert reply.status == 200
            assert reply.headers["Content-Type"] == CONTENT_TYPE
            body = reply.read().decode()
        # The same registry, but for the age of the states, which grows between reads.
        served_types, served = parse(body)
        types, samples = parse(metrics.render())
        assert served_types == types
        age = "node_containerd_dn_state_age_seconds"
        assert {k: v for k, v in served.items() if k[0] != age} == {
            k: v for k, v in samples.items() if k[0] != age
        }
        assert served[("node_containerd_preseed_images_total", (("namespace", "k8s.io"),))] == 2
    finally:
        server.shutdown()
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(server.url, timeout=10)


def _has_ipv6_loopback() -> bool:
    import socket

    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


@pytest.mark.skipif(not _has_ipv6_loopback(), reason="no IPv6 loopback here")
def test_the_endpoint_serves_on_an_ipv6_loopback_address():
    metrics = Metrics()
    server = metrics.serve("[::1]:0")
    try:
        assert server.server_address[0] == "::1"
        assert server.url.startswith("http://[::1]:")
        with urllib.request.urlopen(server.url, timeout=10) as reply:
            types, _ = parse(reply.read().decode())
        assert types["monogon_supervisor_dn_state_total"] == "gauge"
    finally:
        server.shutdown()


def test_a_counter_keeps_at_most_max_series_and_counts_the_rest_in_its_other_series():
    """Issue 20 item 11: 10,000 junk preseed files made 10,000 failure series."""
    metrics = Metrics()
    for i in range(10_000):
        metrics.add(PRESEED_FAILURES, 1, {"namespace": "k8s.io", "file": f"junk{i:05}.tar"})
    _, samples = parse(metrics.render())
    series = {k: v for k, v in samples.items() if k[0] == PRESEED_FAILURES}
    other = (PRESEED_FAILURES, (("file", ""), ("namespace", "")))
    assert len(series) == MAX_SERIES + 1
    assert series[other] == 10_000 - MAX_SERIES
    assert series[(PRESEED_FAILURES, (("file", "junk00000.tar"), ("namespace", "k8s.io")))] == 1
    assert sum(series.values()) == 10_000
    metrics.add(PRESEED_FAILURES, 1, {"namespace": "k8s.io", "file": "junk00001.tar"})
    _, samples = parse(metrics.render())
    assert samples[(PRESEED_FAILURES, (("file", "junk00001.tar"), ("namespace", "k8s.io")))] == 2


_SERVE = (
    "import sys\n"
    "from actors.agent.metrics import Metrics\n"
    "server = Metrics().serve(('127.0.0.1', 0))\n"
    "print(server.server_address[1], flush=True)\n"
    "sys.stdin.read()\n"
)


def _threads_and_fds(pid: int) -> tuple[int, int]:
    status = Path(f"/proc/{pid}/status").read_text()
    threads = int(next(line for line in status.splitlines() if line.startswith("Threads:"))[8:])
    return threads, len(os.listdir(f"/proc/{pid}/fd"))


def _dribble(sock: socket.socket, started: float, cut: list[float]) -> None:
    """Sends a byte now and then, below the read timeout; notes when the server cut it."""
    while time.monotonic() - started < REQUEST_DEADLINE + READ_TIMEOUT + 10:
        try:
            sock.sendall(b"X")
        except OSError:
            cut.append(time.monotonic() - started)
            return
        time.sleep(READ_TIMEOUT / 4)


@pytest.mark.timeout(90)
def test_half_sent_requests_cost_at_most_the_connection_limit_and_end_by_their_deadline():
    """Issue 20 item 11: a client's half-sent requests held 454 threads and 449 fds."""
    root = Path(__file__).resolve().parents[2]
    proc = subprocess.Popen(
        [sys.executable, "-c", _SERVE],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=dict(os.environ, PYTHONPATH=str(root)),
    )
    clients: list[socket.socket] = []
    try:
        assert proc.stdout is not None
        port = int(proc.stdout.readline())
        url = f"http://127.0.0.1:{port}/metrics"
        base = _threads_and_fds(proc.pid)
        urllib.request.urlopen(url, timeout=10).read()
        started = time.monotonic()
        # One client sends a byte now and then, below the read timeout: only the
        # request's deadline ends it. The others send half a request and wait.
        dribbler = socket.create_connection(("127.0.0.1", port), timeout=10)
        dribbler.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
        cut: list[float] = []
        thread = threading.Thread(target=_dribble, args=(dribbler, started, cut))
        thread.start()
        clients.append(dribbler)
        peak = base
        for _ in range(199):
            c = socket.create_connection(("127.0.0.1", port), timeout=10)
            c.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")  # never the blank line
            clients.append(c)
            peak = max(peak, _threads_and_fds(proc.pid))
        while time.monotonic() - started < READ_TIMEOUT - 1:
            peak = max(peak, _threads_and_fds(proc.pid))
            time.sleep(0.05)
        thread.join()
        assert peak[0] <= base[0] + MAX_CONNECTIONS, (peak, base)
        # Each connection is one descriptor; one beyond the limit is held while it is closed.
        assert peak[1] <= base[1] + MAX_CONNECTIONS + 2, (peak, base)
        assert cut and REQUEST_DEADLINE - 1 <= cut[0] <= REQUEST_DEADLINE + READ_TIMEOUT, cut
        # Every other connection ended by the read timeout, or was closed at once (those the
        # kernel queued late end within a read timeout of their accept).
        end = time.monotonic() + READ_TIMEOUT + 2
        while _threads_and_fds(proc.pid) != base and time.monotonic() < end:
            time.sleep(0.05)
        assert _threads_and_fds(proc.pid) == base
        with urllib.request.urlopen(url, timeout=10) as reply:
            assert reply.status == 200
    finally:
        for c in clients:
            c.close()
        proc.kill()
        proc.wait(10)


def test_a_histogram_counts_each_observation_in_every_bucket_at_or_above_it():
    metrics = Metrics()
    name = "node_containerd_check_sandbox_start_duration_seconds"
    for seconds in (0.2, 0.25, 3.0, 75.0):
        metrics.observe(name, seconds, {"handler": "runsc"})
    _, samples = parse(metrics.render())
    buckets = {
        dict(labels)["le"]: value
        for (sample, labels), value in samples.items()
        if sample == f"{name}_bucket"
    }
    assert buckets == {
        "0.05": 0,
        "0.1": 0,
        "0.25": 2,  # a bucket's bound is inclusive (le)
        "0.5": 2,
        "1.0": 2,
        "2.5": 2,
        "5.0": 3,
        "10.0": 3,
        "30.0": 3,
        "60.0": 3,
        "+Inf": 4,
    }
    assert samples[(f"{name}_count", (("handler", "runsc"),))] == 4
    assert samples[(f"{name}_sum", (("handler", "runsc"),))] == 78.45


def test_a_histogram_refuses_an_unknown_name_wrong_labels_and_a_negative_value():
    metrics = Metrics()
    seconds = "node_containerd_preseed_import_duration_seconds"
    with pytest.raises(ValueError) as unknown:
        metrics.observe("node_containerd_made_up_seconds", 1.0)
    assert str(unknown.value).startswith(
        "metric 'node_containerd_made_up_seconds' is not a histogram: expected one of ["
    )
    with pytest.raises(ValueError) as labels:
        metrics.observe(seconds, 1.0, {"file": "a.tar"})
    assert str(labels.value) == (
        f"histogram {seconds!r} takes the labels ['namespace'], not ['file']"
    )
    with pytest.raises(ValueError) as negative:
        metrics.observe(seconds, -1.0, {"namespace": "k8s.io"})
    assert str(negative.value) == f"observation -1.0 of {seconds!r} is not a finite number >= 0"
    _, samples = parse(metrics.render())
    assert samples == {}


def test_a_runnables_metric_message_goes_to_its_counter_or_its_histogram_by_kind():
    from messages.wire import MetricAdd

    metrics = Metrics()
    labels = {"namespace": "k8s.io"}
    metrics.take(MetricAdd(name="node_containerd_preseed_bytes_total", value=7, labels=labels))
    metrics.take(
        MetricAdd(
            name="node_containerd_preseed_import_bytes", value=7, labels=labels, kind="histogram"
        )
    )
    _, samples = parse(metrics.render())
    key = (("namespace", "k8s.io"),)
    assert samples[("node_containerd_preseed_bytes_total", key)] == 7
    assert samples[("node_containerd_preseed_import_bytes_count", key)] == 1
    with pytest.raises(ValueError):
        metrics.take(
            MetricAdd(
                name="node_containerd_preseed_bytes_total", value=1, labels={}, kind="histogram"
            )
        )


def test_report_check_records_sandbox_starts_refuses_a_bad_one_and_says_when_metrics_are_off(
    short_dir: Path,
):
    import grpc

    from actors.agent.control.server import ControlServer
    from messages.control import control_pb2 as pb
    from messages.control import control_pb2_grpc as pb_grpc
    from tests.support.control import Backend

    name = "node_containerd_check_sandbox_start_duration_seconds"
    metrics = Metrics()
    for path, observe in ((short_dir / "on.sock", metrics.observe), (short_dir / "off.sock", None)):
        server = ControlServer(path, Backend(), observe=observe)
        server.start()
        try:
            with grpc.insecure_channel(f"unix:{path}") as channel:
                stub = pb_grpc.ControlStub(channel)
                starts = [pb.SandboxStart(handler="runc", seconds=0.3)]
                reply = stub.ReportCheck(pb.ReportCheckRequest(sandbox_starts=starts), timeout=5)
                assert reply.recorded is (observe is not None)
                if observe is None:
                    continue
                bad = [pb.SandboxStart(handler="runsc", seconds=-1.0)]
                with pytest.raises(grpc.RpcError) as e:
                    stub.ReportCheck(pb.ReportCheckRequest(sandbox_starts=bad), timeout=5)
                assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
                assert e.value.details() == (
                    f"observation -1.0 of {name!r} is not a finite number >= 0"
                )
        finally:
            server.stop(0)
    _, samples = parse(metrics.render())
    assert samples[(f"{name}_count", (("handler", "runc"),))] == 1
    assert (f"{name}_count", (("handler", "runsc"),)) not in samples
