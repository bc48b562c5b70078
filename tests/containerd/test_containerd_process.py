"""ContainerdProcessActor with Debian's real containerd, driven by a fake node.

No supervisor here: the actor gets a `FakeNode` that records HEALTHY, the children
asked for and the logs. The supervised runs are in test_containerd_tree.py.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import json
import os
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from actors.containerd.children import child_specs
from actors.containerd.core.spec import ContainerdSpec, PreseedSpec
from actors.containerd.process import ContainerdOutcome, run_containerd
from actors.containerd.runtimes.binary import containerd_version
from messages.specs import spec_from_wire, spec_to_wire
from tests.support.containerd_daemon import ContainerdDaemon
from tests.support.nodes import FakeNode
from tests.support.processes import pid_alive
from tests.support.project import python_env, python_module
from tests.support.specs import containerd_spec_in, preseed_spec
from tests.support.waiting import in_thread, wait_until

pytestmark = pytest.mark.containerd

CONTAINERD = shutil.which("containerd") or "/usr/bin/containerd"


@pytest.fixture(scope="module")
def base() -> Iterator[Path]:
    """One state directory and config for the module; each test runs its own containerd."""
    path = Path(tempfile.mkdtemp(prefix="nc-proc-", dir="/tmp"))
    ContainerdDaemon(path).write_config()
    (path / "tmp").mkdir()
    yield path
    shutil.rmtree(path, ignore_errors=True)


def make_spec(base: Path, **overrides: object) -> ContainerdSpec:
    fields: dict[str, object] = {"ready_timeout": 20.0, "stop_timeout": 5.0, **overrides}
    return containerd_spec_in(base, **fields)


def fake_binary(base: Path, name: str, script: str) -> str:
    path = base / name
    path.write_text("#!/bin/sh\n" + script)
    path.chmod(0o755)
    return str(path)


def running_with(config: str) -> list[int]:
    """Pids of live processes whose command line mentions `config`."""
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    cmdline = f.read().split(b"\0")
            except OSError:
                continue
            if config.encode() in cmdline and pid_alive(int(entry)):
                pids.append(int(entry))
    return pids


def nobody_answers(path: str) -> bool:
    """Whether a connect to the unix socket `path` is refused (or there is none)."""
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.settimeout(1.0)
    try:
        probe.connect(path)
    except (ConnectionRefusedError, FileNotFoundError):
        return True
    except OSError:
        return False
    finally:
        probe.close()
    return False


def started_pid(
    node: FakeNode, outcome: concurrent.futures.Future[ContainerdOutcome] | None = None
) -> int:
    """The pid containerd was started with; fails at once, naming the outcome, if the
    run ended before it started (a setup error is an outcome, not a log line)."""
    deadline = time.monotonic() + 20
    while outcome is not None and not outcome.done() and time.monotonic() < deadline:
        if any("started containerd" in m for m in node.messages()):
            break
        time.sleep(0.05)
    if outcome is not None and outcome.done():
        assert any("started containerd" in m for m in node.messages()), outcome.result()
    message = node.wait_message("started containerd", timeout=max(0.1, deadline - time.monotonic()))
    return int(message.rsplit("pid ", 1)[1].rstrip(")"))


def test_the_node_is_healthy_only_once_containerd_answers(base: Path) -> None:
    spec = make_spec(base)
    node = FakeNode()
    outcome = in_thread(run_containerd, spec, node)
    assert node.healthy.wait(20), f"not HEALTHY within 20s: {node.messages()}"
    answer = subprocess.run(
        ["ctr", "-a", spec.address, "version"],
        capture_output=True,
        text=True,
        timeout=20,
        check=False,
    )
    node.cancel()
    assert outcome.result(timeout=20) == ContainerdOutcome(canceled=True)
    assert answer.returncode == 0, answer.stderr
    assert node.healthy_count == 1
    assert node.children == [dict(child_specs(spec))]
    assert b"containerd successfully booted" in node.raw.data()
    messages = node.messages()
    assert "containerd notify: READY=1" in messages
    ready = [m for m in messages if " is ready, " in m]
    version = containerd_version(spec.binary)  # this run's containerd: 1.6, 1.7 or 2.x
    assert len(ready) == 1 and ready[0].startswith(f"containerd {version}"), messages
    assert stat.S_IMODE(os.lstat(spec.fifo).st_mode) == 0o600


def test_a_missing_notify_directory_is_created_private(base: Path) -> None:
    notify_dir = base / "run"
    spec = make_spec(base, notify_dir=str(notify_dir))
    node = FakeNode()
    outcome = in_thread(run_containerd, spec, node)
    assert node.healthy.wait(20), node.messages()
    mode = stat.S_IMODE(os.lstat(notify_dir).st_mode)
    node.cancel()
    assert outcome.result(timeout=20) == ContainerdOutcome(canceled=True)
    assert mode == 0o700


def test_the_children_are_the_pump_and_a_preseed_that_says_it_is_disabled(base: Path) -> None:
    spec = make_spec(base)
    assert dict(child_specs(spec)) == {
        "runsc": ("actors.containerd.logpump:run", {"fifo": spec.fifo, "pipe_size": 1 << 20}),
        "preseed": ("actors.containerd.children:preseed_disabled", {}),
    }
    preseed = preseed_spec(base)
    enabled = dataclasses.replace(spec, preseed=preseed)
    target, wire = dict(child_specs(enabled))["preseed"]
    assert target == "actors.preseed.service.runnable:run"
    assert spec_from_wire(PreseedSpec, wire) == preseed


def test_a_cancel_stops_containerd_with_sigterm_and_leaves_nothing(base: Path) -> None:
    spec = make_spec(base)
    node = FakeNode()
    outcome = in_thread(run_containerd, spec, node)
    assert node.healthy.wait(20)
    pid = started_pid(node)
    node.cancel()
    assert outcome.result(timeout=20) == ContainerdOutcome(canceled=True)
    messages = node.messages()
    # containerd says STOPPING=1 and exits 0 only when it got a SIGTERM, not a SIGKILL.
    assert "containerd notify: STOPPING=1" in messages
    assert "containerd exited: exit status 0" in messages
    assert not pid_alive(pid)
    assert running_with(spec.config) == []
    assert not os.path.exists(spec.notify_socket)


def test_containerd_dying_fails_the_node_naming_the_exit_status(base: Path) -> None:
    spec = make_spec(base)
    node = FakeNode()
    outcome = in_thread(run_containerd, spec, node)
    assert node.healthy.wait(20)
    os.kill(started_pid(node), signal.SIGKILL)
    assert outcome.result(timeout=20) == ContainerdOutcome(
        error=f"containerd {CONTAINERD!r} exited: killed by signal SIGKILL"
    )


def test_a_teardown_error_on_a_read_only_state_dir_still_ends_the_run(base: Path) -> None:
    # ext4's errors=remount-ro: the notify socket cannot be removed when containerd dies.
    notify_dir = base / "ro-run"
    notify_dir.mkdir(exist_ok=True)
    spec = make_spec(base, notify_dir=str(notify_dir))
    node = FakeNode()
    outcome = in_thread(run_containerd, spec, node)
    assert node.healthy.wait(20)
    subprocess.run(["mount", "--bind", notify_dir, notify_dir], check=True)
    try:
        subprocess.run(["mount", "-o", "remount,bind,ro", notify_dir], check=True)
        os.kill(started_pid(node), signal.SIGKILL)
        assert outcome.result(timeout=20) == ContainerdOutcome(
            error=f"containerd {CONTAINERD!r} exited: killed by signal SIGKILL"
        )
    finally:
        subprocess.run(["umount", notify_dir], check=False)
    errors = node.messages("ERROR")
    assert len(errors) == 1 and errors[0].startswith(
        "cleanup after containerd: closing the notify socket: "
    )
    assert "Read-only file system" in errors[0]
    assert [check() for check in node.vouched] == [True]  # its end was reported


def test_sockets_left_by_a_killed_containerd_do_not_block_the_next_start(base: Path) -> None:
    spec = make_spec(base)
    first = FakeNode()
    outcome = in_thread(run_containerd, spec, first)
    assert first.healthy.wait(20)
    os.kill(started_pid(first), signal.SIGKILL)
    assert outcome.result(timeout=20).error is not None
    assert os.path.exists(spec.address)  # the dead containerd left its socket

    second = FakeNode()
    outcome = in_thread(run_containerd, spec, second)
    assert second.healthy.wait(20), second.messages()
    second.cancel()
    assert outcome.result(timeout=20) == ContainerdOutcome(canceled=True)
    assert f"removed stale socket {spec.address!r} left by an earlier containerd" in (
        second.messages()
    )


def test_a_live_process_on_containerds_socket_fails_the_start(base: Path) -> None:
    spec = make_spec(base)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as squatter:
        if os.path.exists(spec.address):
            os.unlink(spec.address)
        squatter.bind(spec.address)
        squatter.listen()
        node = FakeNode()
        assert run_containerd(spec, node) == ContainerdOutcome(
            error=(
                f"socket {spec.address!r} is in use: "
                "another process (an earlier containerd?) answers on it"
            )
        )
    os.unlink(spec.address)
    assert node.children == [] and node.healthy_count == 0


def test_a_containerd_that_never_says_ready_fails_after_the_timeout_and_is_killed(
    base: Path,
) -> None:
    binary = fake_binary(base, "never-ready", "exec sleep 1000\n")
    spec = make_spec(base, binary=binary, ready_timeout=0.5)
    node = FakeNode()
    began = time.monotonic()
    outcome = run_containerd(spec, node)
    elapsed = time.monotonic() - began
    assert outcome == ContainerdOutcome(
        error=(
            "containerd did not become ready within 0.5s: "
            f"no READY=1 on notify socket {spec.notify_socket!r}"
        )
    )
    assert 0.5 <= elapsed < 5
    assert node.healthy_count == 0
    assert running_with(spec.config) == []


def test_a_containerd_ignoring_sigterm_is_killed_after_the_stop_timeout(base: Path) -> None:
    binary = fake_binary(base, "stubborn", "trap '' TERM\necho stubborn up\nexec sleep 1000\n")
    spec = make_spec(base, binary=binary, stop_timeout=0.3)
    node = FakeNode()
    outcome = in_thread(run_containerd, spec, node)
    pid = started_pid(node)
    node.raw.wait_for(lambda data: b"stubborn up\n" in data, timeout=10)
    began = time.monotonic()
    node.cancel()
    assert outcome.result(timeout=20) == ContainerdOutcome(canceled=True)
    assert time.monotonic() - began >= 0.3
    assert "containerd did not stop within 0.3s of SIGTERM: sending SIGKILL" in node.messages(
        "WARNING"
    )
    assert "containerd exited: killed by signal SIGKILL" in node.messages()
    assert not pid_alive(pid)


def test_containerds_last_words_are_logged_before_the_failure(base: Path) -> None:
    config = base / "bad.toml"
    config.write_text(
        f'version = 2\noom_score = "high"\n[grpc]\n  address = "{base / "containerd.sock"}"\n'
    )
    spec = make_spec(base, config=str(config))
    node = FakeNode()
    assert run_containerd(spec, node) == ContainerdOutcome(
        error=f"containerd {CONTAINERD!r} exited: exit status 1"
    )
    assert b"failed to unmarshal TOML" in node.raw.data()


def test_a_binary_that_is_not_executable_fails_the_start_naming_it(base: Path) -> None:
    spec = make_spec(base, binary="/nonexistent/containerd")
    assert run_containerd(spec, FakeNode()) == ContainerdOutcome(
        error="containerd binary '/nonexistent/containerd' is not an executable file"
    )


def test_a_config_serving_another_address_is_refused(base: Path) -> None:
    spec = make_spec(base, address="/tmp/elsewhere.sock")
    assert run_containerd(spec, FakeNode()) == ContainerdOutcome(
        error=(
            f"containerd config {spec.config!r} serves grpc on "
            f"{str(base / 'containerd.sock')!r}, not on address '/tmp/elsewhere.sock'"
        )
    )


def test_containerd_dies_with_the_process_that_runs_it(base: Path) -> None:
    spec = make_spec(base)
    child = subprocess.Popen(
        python_module("tests.support.programs.containerd_child", json.dumps(spec_to_wire(spec))),
        env=python_env(),
        stdout=subprocess.PIPE,
    )
    try:
        assert child.stdout is not None
        pid = int(child.stdout.readline())
        assert child.stdout.readline() == b"healthy\n"
        assert pid_alive(pid)
        child.kill()  # no cancel, no SIGTERM: only the parent-death signal can act
        child.wait(timeout=10)
        wait_until(lambda: not pid_alive(pid), 10, "containerd died with its parent")
        # Nothing it started may keep its socket: the next start must find it stale.
        wait_until(lambda: nobody_answers(spec.address), 10, "nobody answers on its socket")
    finally:
        child.kill()
        child.wait(timeout=10)
        if child.stdout is not None:
            child.stdout.close()


def test_containerd_finds_the_shims_of_its_own_release_before_those_on_its_path(
    base: Path,
) -> None:
    # With NC_CONTAINERD=sid the binary is 2.1's, and the spec's PATH holds /usr/bin,
    # where Debian 12's 1.6 shim lies: containerd must still run its own release's.
    spec = make_spec(base)
    node = FakeNode()
    outcome = in_thread(run_containerd, spec, node)
    pid = started_pid(node, outcome)
    assert node.healthy.wait(20), f"not HEALTHY within 20s: {node.messages()}"
    with open(f"/proc/{pid}/environ", "rb") as f:
        env = dict(kv.split("=", 1) for kv in f.read().decode().split("\0") if kv)
    node.cancel()
    assert outcome.result(timeout=20) == ContainerdOutcome(canceled=True)
    own = os.path.dirname(CONTAINERD)
    assert env["PATH"] == ":".join([own, *(d for d in spec.path.split(":") if d != own)])
    shim = shutil.which("containerd-shim-runc-v2", path=env["PATH"])
    assert shim == os.path.join(own, "containerd-shim-runc-v2")
