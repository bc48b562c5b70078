"""The plain control socket says exactly what the gRPC client says, the CLI uses it, and
nothing a client sends (or does not send) stops it."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import re
import shutil
import socket
import struct
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from actors.agent.control import plain_server
from actors.agent.control.client import cmd_logs, cmd_restart, cmd_status
from actors.agent.control.plain import (
    MAX_REQUEST,
    PLAIN_SUFFIX,
    read_frame,
    run_command,
    write_frame,
)
from actors.agent.control.plain_server import PlainServer
from actors.agent.control.server import ControlError, ControlServer
from actors.containerd.core.dns import CONTAINERD_DN
from actors.containerd.runtimes.sandbox_image import SANDBOX_IMAGE_FACT, SandboxImageState
from actors.logtree import Severity
from actors.supervisor.runtime import clock
from tests.support.control import (
    AcceptAndClose,
    Backend,
    logs_args,
    node,
    on_a_terminal,
    restart_args,
    status_args,
)
from tests.support.log_entries import RUNSC_PODS, attributed_batches, runsc_recording
from tests.support.project import CLI, python_env

pytestmark = pytest.mark.timeout(60)

PRODUCT = "node-containerd"


def _said(capsys: Any, code: int | None) -> tuple:
    return (code, *capsys.readouterr())


def _both(capsys: Any, op: str, grpc_command: Callable[[Any], int], args: Any) -> tuple:
    """(what the plain socket made the CLI say, what the gRPC client says)."""
    plain = _said(capsys, run_command(op, args))
    return plain, _said(capsys, grpc_command(args))


@pytest.fixture
def a_containerd_child(tmp_path: Path) -> Iterator[int]:
    """A child of this process whose command is `containerd` (as the agent's node has)."""
    binary = tmp_path / "containerd"  # a process's command is its program's file name
    shutil.copy(shutil.which("sleep") or "/bin/sleep", binary)
    proc = subprocess.Popen([str(binary), "60"])
    try:
        yield proc.pid
    finally:
        proc.kill()
        proc.wait()


def _agent_like_nodes() -> list:
    since = clock.monotonic() - 5.5
    state = SandboxImageState(
        image="registry.k8s.io/pause:3.6",
        present=False,
        tarball_dir="/st/preseed/k8s.io",
        watched=True,
    )
    return [
        node("root", "DONE", pid=None, since=since),
        node(CONTAINERD_DN, "HEALTHY", pid=os.getpid(), since=since),
        dataclasses.replace(
            node("root.containerd.preseed", "HEALTHY", pid=101, since=since),
            facts={SANDBOX_IMAGE_FACT: state.to_fact()},
        ),
        node("root.x", "DEAD", pid=None, restarts=3, last_error="exit status 1", since=since),
    ]


def test_status_over_the_plain_socket_is_the_grpc_clients_view_with_notes_and_warnings(
    served, capsys, a_containerd_child
):
    served.backend.nodes = _agent_like_nodes()
    plain, grpc_said = _both(capsys, "status", cmd_status, status_args(served.path))
    assert plain == grpc_said
    lines = plain[1].splitlines()
    assert lines[1].endswith("(root: started its children, which run on)")
    assert lines[2].endswith(f"(containerd's own pid {a_containerd_child})")
    assert lines[4].startswith("      warning: sandbox image 'registry.k8s.io/pause:3.6'")
    assert lines[6] == "    last error: exit status 1"


def test_status_json_over_the_plain_socket_is_the_grpc_clients_document(served, capsys):
    served.backend.nodes = _agent_like_nodes()
    args = status_args(served.path, json=True)
    plain, grpc_said = _both(capsys, "status", cmd_status, args)

    def without_since(said: tuple) -> tuple:
        doc = json.loads(said[1])
        for n in doc["nodes"]:
            n.pop("since")
        return said[0], doc, said[2]

    assert without_since(plain) == without_since(grpc_said)
    assert json.loads(plain[1])["sandbox_image"]["dn"] == "root.containerd.preseed"


@pytest.mark.parametrize(
    "options",
    [
        {"lines": 2},
        {"lines": "all"},
        {"dn": None},
        {"dn": "root.a", "children": True},
        {"severity": Severity.WARNING, "json": True},
        {"since": 1_700_000_000.5},
        {"raw_only": True},
        {"leveled_only": True},
        {"dn": "root.nope"},
    ],
)
def test_logs_over_the_plain_socket_are_the_grpc_clients_lines(served, capsys, options):
    for i, dn in enumerate(("root", "root.a", "root.a.b", "root", "root.a")):
        served.backend.log(dn, f"line {i}", timestamp=1_700_000_000.0 + i)
    served.backend.log("root", "careful", severity=Severity.WARNING)
    plain, grpc_said = _both(capsys, "logs", cmd_logs, logs_args(served.path, **options))
    assert plain == grpc_said


@pytest.mark.parametrize("key", ["sandbox", "container"])
def test_logs_of_one_sandbox_over_the_plain_socket_are_the_grpc_clients_lines(served, capsys, key):
    dn, recording = "root.containerd.runsc", "runsc-pod-beside-pod.log.gz"
    for batch in attributed_batches(runsc_recording(recording)):
        served.backend.log_tree.write_parsed(dn, batch)
    prefix = RUNSC_PODS[recording]["pods"][1][key][:10]
    args = logs_args(served.path, dn, json=True, **{key: prefix})
    plain, grpc_said = _both(capsys, "logs", cmd_logs, args)
    assert plain == grpc_said
    rows = [json.loads(line) for line in plain[1].splitlines()]
    assert len(rows) > 100 and all(r["fields"][key].startswith(prefix) for r in rows)


def test_logs_over_the_plain_socket_are_coloured_on_a_terminal_unless_no_color(served):
    served.backend.log("root", "calm")
    served.backend.log("root", "careful", Severity.WARNING)
    os.unlink(served.path)  # the gRPC socket's file: only the plain socket can answer
    coloured = on_a_terminal(["logs", "root", "--socket", served.path], None).splitlines()
    assert [line.startswith("\x1b[") for line in coloured] == [False, True]
    assert coloured[1].startswith("\x1b[33mroot  W") and coloured[1].endswith("careful\x1b[0m")
    assert "\x1b[" not in on_a_terminal(["logs", "root", "--socket", served.path], "1")
    status = on_a_terminal(["status", "--socket", served.path], None)
    assert "\x1b[32mHEALTHY \x1b[0m" in status


def test_restart_over_the_plain_socket_says_what_the_grpc_client_says(served, capsys):
    args = restart_args(served.path, "root.a")
    assert (
        _both(capsys, "restart", cmd_restart, args)
        == (
            (
                0,
                "restarting root.a: cancelled it and 1 node(s) below it (root.a.b); "
                "the supervisor starts it again now\n",
                "",
            ),
        )
        * 2
    )
    nope = restart_args(served.path, "root.nope")
    assert (
        _both(capsys, "restart", cmd_restart, nope)
        == ((1, "", "cannot restart 'root.nope': no node 'root.nope'\n"),) * 2
    )
    assert served.backend.restarted == ["root.a", "root.a"]


def test_logs_follow_and_an_agent_without_the_plain_socket_are_left_to_grpc(served, capsys):
    assert run_command("logs", logs_args(served.path, follow=True)) is None
    os.unlink(served.path + PLAIN_SUFFIX)  # as an older agent serves it
    assert run_command("status", status_args(served.path)) is None
    assert capsys.readouterr() == ("", "")


def test_no_control_socket_is_not_running_where_the_command_looked(short_dir, capsys):
    path = str(short_dir / "control.sock")
    args = status_args(path, where="no agent registered in '/r', and no control socket at 'x'")
    assert run_command("status", args) == 3
    assert capsys.readouterr().err == (
        "node-containerd is not running: no agent registered in '/r', and no control "
        "socket at 'x'\n"
    )


def test_status_loads_neither_grpc_nor_protobuf_nor_the_config(served):
    served.backend.nodes = _agent_like_nodes()
    code = (
        "import sys\n"
        "from actors.agent.cli import main\n"
        "code = main(['status', '--socket', sys.argv[1]])\n"
        "heavy = [m for m in ('grpc', 'google.protobuf', 'actors.config.load',"
        " 'actors.config.schema', 'pykka') if m in sys.modules]\n"
        "print(code, heavy)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, served.path],
        env=python_env(),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert out.stdout.splitlines()[0].startswith("NODE ")
    assert out.stdout.splitlines()[-1] == "0 []", out.stderr


# ---------------------------------------------------------------- hostile clients


def _ask(path: str, data: bytes) -> dict[str, Any]:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(20)
        sock.connect(path + PLAIN_SUFFIX)
        with contextlib.suppress(BrokenPipeError):  # refused before it was all sent
            sock.sendall(data)
        return read_frame(sock)


def _frame(payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + payload


def _usage(err: str) -> dict[str, Any]:
    return {"product": PRODUCT, "code": 2, "out": "", "err": err}


def _request(**fields: Any) -> bytes:
    doc = {"product": PRODUCT, "protocol": 1, **fields}
    return _frame(json.dumps(doc).encode())


def test_an_unknown_op_is_answered_as_unknown_so_a_newer_client_falls_back(served):
    assert _ask(served.path, _request(op="reboot")) == {
        **_usage("cannot run 'reboot': unknown to this agent\n"),
        "unknown_op": True,
    }


@pytest.mark.parametrize(
    ("data", "err"),
    [
        (_frame(b"{not json"), "cannot read the request: frame is not JSON: "),
        (_frame(b"\xff\xfe"), "cannot read the request: frame is not JSON: "),
        (_frame(b"[1, 2]"), "cannot read the request: frame is a list, not an object\n"),
        (
            struct.pack(">I", 0xFFFFFFFF),
            f"cannot read the request: frame of 4294967295 bytes exceeds {MAX_REQUEST}\n",
        ),
        (
            _frame(b"x" * (MAX_REQUEST + 1)),
            f"cannot read the request: frame of {MAX_REQUEST + 1} bytes exceeds {MAX_REQUEST}\n",
        ),
        (
            _frame(json.dumps({"product": PRODUCT, "protocol": 99, "op": "status"}).encode()),
            "cannot answer: this agent speaks plain protocol 1 of 'node-containerd'\n",
        ),
        (_request(op="logs", lines="x"), "cannot run 'logs': field 'lines' is 'x', not a count\n"),
        (_request(op="logs", lines=-1), "cannot run 'logs': field 'lines' is -1, not a count\n"),
        (
            _request(op="logs", dn=5),
            "cannot run 'logs': field 'dn' is 5, not of the right type\n",
        ),
        (
            _request(op="logs", severity="LOUD"),
            "cannot run 'logs': field 'severity' is 'LOUD', not a severity\n",
        ),
        (_request(op="restart"), "cannot run 'restart': field 'dn' is missing\n"),
        (
            _request(op="status", json=1),
            "cannot run 'status': field 'json' is 1, not of the right type\n",
        ),
    ],
)
def test_a_malformed_request_gets_an_error_answer_and_the_server_answers_on(served, data, err):
    answer = _ask(served.path, data)
    assert answer["err"].startswith(err) and answer == _usage(answer["err"])
    assert _ask(served.path, _request(op="status"))["code"] == 0


def test_a_silent_client_is_dropped_and_never_holds_up_the_others(served, monkeypatch):
    monkeypatch.setattr(plain_server, "REQUEST_TIMEOUT", 0.5)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as silent:
        silent.settimeout(20)
        silent.connect(served.path + PLAIN_SUFFIX)
        silent.sendall(b"\x00\x00")  # half a length, then nothing
        assert _ask(served.path, _request(op="status"))["code"] == 0
        assert silent.recv(1) == b""  # dropped when its time was up, without an answer


def test_clients_beyond_the_limit_are_refused_at_once_and_served_again_later(
    served, short_dir, monkeypatch
):
    monkeypatch.setattr(plain_server, "REQUEST_TIMEOUT", 1.0)
    path = str(short_dir / "other.sock")
    server = PlainServer(path + PLAIN_SUFFIX, served.server._servicer, max_clients=1)
    server.start()
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as silent:
            silent.settimeout(20)
            silent.connect(path + PLAIN_SUFFIX)
            busy = _ask(path, _request(op="status"))
            assert busy == {
                "product": PRODUCT,
                "code": 1,
                "out": "",
                "err": "node-containerd refused the call: at most 1 clients at once\n",
            }
            assert silent.recv(1) == b""
        for _ in range(100):  # the silent client's slot comes back once its thread ends
            if _ask(path, _request(op="status"))["code"] == 0:
                break
        else:
            pytest.fail("the slot of a dropped client never came back")
    finally:
        server.stop()
    assert not os.path.exists(path + PLAIN_SUFFIX)


def test_stop_does_not_wait_for_a_silent_client(short_dir):
    path = str(short_dir / "control.sock")
    server = ControlServer(path, Backend([node("root")]))
    server.start()
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as silent:
        silent.connect(path + PLAIN_SUFFIX)
        server.stop(0)  # returns: the per-connection threads do not hold it
        assert sorted(os.listdir(short_dir)) == []


def test_a_plain_path_someone_answers_on_is_refused_and_the_grpc_socket_removed(short_dir):
    path = str(short_dir / "control.sock")
    squatter = AcceptAndClose(path + PLAIN_SUFFIX)
    try:
        server = ControlServer(path, Backend())
        with pytest.raises(ControlError) as caught:
            server.start()
        assert str(caught.value) == (
            f"control socket {path + PLAIN_SUFFIX!r} is in use by another program"
        )
        assert sorted(os.listdir(short_dir)) == ["control.sock.plain"]
    finally:
        squatter.close()


def test_a_stale_plain_socket_file_is_replaced(short_dir):
    path = str(short_dir / "control.sock")
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(path + PLAIN_SUFFIX)
    stale.close()  # the file stays, nobody listens
    server = ControlServer(path, Backend([node("root")]))
    server.start()
    try:
        assert _ask(path, _request(op="status"))["code"] == 0
    finally:
        server.stop(0)


# ---------------------------------------------------------------- import


def _import_args(files: list[str], **kw: Any) -> argparse.Namespace:
    values = {
        "address": None,
        "namespace": "plain",
        "files": files,
        "all_platforms": False,
        "platform": None,
        "skip_missing": False,
        "unpack": False,
        "snapshotter": "overlayfs",
        "timeout": 30.0,
        "label": [("a", "b")],
        "json": False,
    }
    values.update(kw)
    return argparse.Namespace(**values)


def _same_import(said: tuple, namespace: str) -> tuple:
    """What an import said, without its namespace's name, its duration and what it sent
    (containerd shares blobs between namespaces, so the second import sends none)."""
    masks = [
        (r"\d+\.\d+s\)", "Ts)"),
        (r"\([^()]* sent, \d+ blobs already present", "(SENT"),
        (r'"bytes_sent": \d+', '"bytes_sent": N'),
    ]
    out = []
    for text in map(str, said):
        text = text.replace(namespace, "NS")
        for pattern, replacement in masks:
            text = re.sub(pattern, replacement, text)
        out.append(text)
    return tuple(out)


def _tarball(directory: Path) -> Path:
    from tests.support.images.blob_store import BlobStore, layer_tar, named, write_store_archive

    store = BlobStore(directory)
    (directory / "f").write_bytes(b"hello")
    layer = layer_tar(directory / "l.tar", {"f": directory / "f"})
    return write_store_archive(
        directory / "one.tar", store, [named(store.image([layer]), "docker.io/t/one:1", "1")]
    )


@pytest.fixture
def served_with_containerd(short_dir: Path, containerd: Any) -> Iterator[tuple[str, Any]]:
    path = str(short_dir / "control.sock")
    server = ControlServer(path, Backend([node("root")]), containerd_address=containerd.address)
    server.start()
    try:
        yield path, containerd
    finally:
        server.stop(0)


def test_import_over_the_plain_socket_says_what_the_local_import_says(
    served_with_containerd, short_dir, capsys
):
    from actors.preseed.cli import run_import

    path, containerd = served_with_containerd
    tarball = _tarball(short_dir)
    missing = str(short_dir / "missing.tar")
    cases = [(f, j) for f in ([str(tarball)], [str(tarball), missing]) for j in (False, True)]
    for i, (files, as_json) in enumerate(cases):
        args = _import_args(files, json=as_json, namespace=f"ns{i}")
        args.socket = path
        plain = _said(capsys, run_command("import", args))
        args.namespace, args.address = f"ns{i}local", containerd.address
        local = _said(capsys, run_import(args, sys.stdout, sys.stderr))
        assert _same_import(plain, f"ns{i}") == _same_import(local, f"ns{i}local")
        assert plain[0] == (0 if len(files) == 1 else 1)


def test_import_without_address_is_done_by_the_running_agent_without_grpc_here(
    served_with_containerd, short_dir
):
    _, containerd = served_with_containerd
    _tarball(short_dir)
    code = (
        "import sys\n"
        "from actors.agent.cli import main\n"
        # A relative path, as the shell means it: the agent runs elsewhere.
        "code = main(['import', '--state', sys.argv[1], '--namespace', 'byagent', 'one.tar'])\n"
        "print(code, [m for m in ('grpc', 'google.protobuf') if m in sys.modules])\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(short_dir)],
        env=python_env(),
        cwd=short_dir,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.stdout.splitlines()[-1] == "0 []", out.stderr
    assert out.stdout.startswith(
        "imported preseed bundle 'byagent/one.tar' into namespace 'byagent': docker.io/t/one:1"
    ), out.stdout
    listed = subprocess.run(
        ["ctr", "-a", containerd.address, "-n", "byagent", "images", "ls", "-q"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert listed.stdout.split() == ["docker.io/t/one:1"]


def test_import_without_an_agent_is_not_running_and_says_how_to_do_without(short_dir):
    tarball = _tarball(short_dir)
    out = subprocess.run(
        [*CLI, "import", "--state", str(short_dir), str(tarball)],
        env=python_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (out.returncode, out.stdout) == (3, "")
    assert out.stderr == (
        f"node-containerd is not running: no control socket at "
        f"{str(short_dir / 'control.sock')!r}; or give containerd's socket with --address SOCK\n"
    )


def test_a_plain_path_whose_private_detour_is_too_long_is_left_out_and_grpc_answers(
    short_dir, capsys
):
    # <deep>/c.plain fits in 107 bytes; the detour <deep>/.XXXXXXXX/s would take 109.
    deep = short_dir / ("d" * (97 - len(str(short_dir)) - 1))
    path = str(deep / "c")
    assert (len(path + PLAIN_SUFFIX), len(str(deep)) + len("/.XXXXXXXX/s")) == (105, 109)
    server = ControlServer(path, Backend([node("root", since=clock.monotonic())]))
    server.start()
    try:
        assert os.listdir(deep) == ["c"]
        assert run_command("status", status_args(path)) is None  # the CLI speaks gRPC
        assert cmd_status(status_args(path)) == 0
        assert capsys.readouterr().out.startswith("NODE ")
    finally:
        server.stop(0)


def test_an_import_for_a_terminal_streams_its_progress_line_before_the_answer(
    served_with_containerd, short_dir
):
    path, _ = served_with_containerd
    request = {
        "product": PRODUCT,
        "protocol": 1,
        "op": "import",
        **vars(_import_args([str(_tarball(short_dir))], namespace="progress")),
        "label": [],
        "progress": True,
    }
    del request["address"]
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(30)
        sock.connect(path + PLAIN_SUFFIX)
        write_frame(sock, request)
        frames = [read_frame(sock)]
        while "code" not in frames[-1]:
            frames.append(read_frame(sock))
    parts, answer = frames[:-1], frames[-1]
    assert parts and all(set(p) == {"err_part"} for p in parts)
    assert all(p["err_part"].startswith("\r\x1b[K") for p in parts)
    assert "progress/one.tar" in "".join(p["err_part"] for p in parts)
    assert (answer["code"], answer["err"]) == (0, "")
    assert answer["out"].startswith("imported preseed bundle 'progress/one.tar'")
