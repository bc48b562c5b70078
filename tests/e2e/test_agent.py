"""The agent end to end: default profile, real containerd, the CLI over the control socket."""

from __future__ import annotations

import json
import os
import queue
import shutil
import signal
import stat
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from actors.containerd.runtimes.runsc.access import named_grants
from actors.images.pause import pause_image_name
from actors.supervisor.process.protocol import ZYGOTE_MODULE
from tests.support.agent import DEFAULT_TREE_UP, AgentUnderTest
from tests.support.images import small_image, write_oci_archive
from tests.support.processes import cmdline, pid_alive
from tests.support.project import CLI
from tests.support.waiting import wait_until

IMAGE = "docker.io/library/e2e:1"

pytestmark = [pytest.mark.containerd, pytest.mark.timeout(180)]


@pytest.fixture(scope="module")
def agent() -> Iterator[AgentUnderTest]:
    """`bin/node-containerd run` on the default profile, one image to preseed."""
    a = AgentUnderTest(Path(tempfile.mkdtemp(prefix="nc-e2e-", dir="/tmp")))
    (a.state / "preseed" / "k8s.io").mkdir(parents=True)
    write_oci_archive(a.state / "preseed" / "k8s.io" / "e2e.tar", [small_image(IMAGE, seed=7)])
    # An operator's CNI config that CRI cannot load (so the agent writes no default
    # network beside it): containerd logs one error line of its own at start.
    (a.state / "cni" / "net.d").mkdir(parents=True)
    (a.state / "cni" / "net.d" / "00-broken.conflist").write_text("{}\n")
    a.start()
    try:
        yield a
    finally:
        a.cleanup()


def test_the_default_profile_comes_up_with_containerd_healthy_and_images_preseeded(agent):
    nodes = agent.wait_states(DEFAULT_TREE_UP)
    assert set(nodes) == set(DEFAULT_TREE_UP)
    assert all(n["last_error"] is None for n in nodes.values())
    sock = agent.state / "containerd" / "containerd.sock"
    out = subprocess.run(
        ["ctr", "-a", str(sock), "-n", "k8s.io", "images", "ls", "-q"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    # containerd's CRI plugin adds its own "sha256:<config digest>" reference in k8s.io;
    # the default profile adds the node's own sandbox image (built from catatonit).
    catatonit = shutil.which("catatonit")
    assert catatonit is not None, "catatonit: run scripts/setup"
    expected = {IMAGE, pause_image_name(Path(catatonit))}
    assert {ref for ref in out if not ref.startswith("sha256:")} == expected


def test_the_control_socket_and_the_state_dir_are_private(agent):
    agent.wait_states(DEFAULT_TREE_UP)
    assert stat.S_IMODE(os.stat(agent.state / "control.sock").st_mode) == 0o600
    # 0700, plus (when runsc is installed) an ACL letting gVisor's sandbox user
    # search it, which shows as the mask in the group bits (see SECURITY.md).
    mode = stat.S_IMODE(os.stat(agent.state).st_mode)
    grants = named_grants(agent.state)
    assert (mode, grants) in ((0o700, {}), (0o710, {"user:65534": 1}))
    assert stat.S_IMODE(os.stat(agent.state / "runsc" / "logs.fifo").st_mode) == 0o600


def test_status_over_the_plain_socket_is_what_the_grpc_client_says(agent, capsys):
    from actors.agent.control.client import cmd_status
    from tests.support.control import status_args

    agent.wait_states(DEFAULT_TREE_UP)
    plain_socket = agent.state / "control.sock.plain"
    assert stat.S_IMODE(os.stat(plain_socket).st_mode) == 0o600

    def without_since(text: str) -> dict:
        doc = json.loads(text)
        for n in doc["nodes"]:
            n.pop("since")
        return doc

    plain = without_since(agent.cli("status", "--json").stdout)
    assert cmd_status(status_args(str(agent.state / "control.sock"), json=True)) == 0
    assert plain == without_since(capsys.readouterr().out)
    tree = agent.cli("status").stdout.splitlines()
    assert "(root: started its children, which run on)" in tree[1]
    assert "(containerd's own pid " in tree[2]


def test_logs_show_containerds_boot_lines(agent):
    agent.wait_states(DEFAULT_TREE_UP)
    out = agent.cli("logs", "root.containerd", "-n", "8192").stdout
    assert "containerd successfully booted" in out
    preseed = agent.cli("logs", "root.containerd.preseed", "-n", "100").stdout
    assert IMAGE in preseed and "k8s.io" in preseed


def test_logs_severity_error_finds_containerds_own_error_with_its_own_time(agent):
    agent.wait_states(DEFAULT_TREE_UP)
    out = agent.cli("logs", "root.containerd", "--severity", "ERROR").stdout
    errors = [line for line in out.splitlines() if line.startswith("root.containerd  E")]
    assert errors, out
    # The CRI plugin cannot load the broken CNI config: containerd's level=error line.
    assert any("failed to load cni during init" in line for line in errors), out
    rows = [
        json.loads(line)
        for line in agent.cli(
            "logs", "root.containerd", "--severity", "error", "--json"
        ).stdout.splitlines()
    ]
    cni = next(r for r in rows if r["kind"] == "leveled" and "cni" in r["message"])
    assert cni["severity"] == "ERROR" and cni["fields"]["error"].startswith(
        "cni config load failed"
    )
    assert cni["raw"].startswith('time="') and "level=error" in cni["raw"]
    # Its time is containerd's own time= field, not the time the chunk reached the agent.
    assert f'time="{time.strftime("%Y-%m-%dT%H", time.gmtime(cni["time"]))}' in cni["raw"]
    assert "failed to load cni" in agent.cli("logs", "root.containerd", "--since", "1h").stdout
    later = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 3600))
    assert agent.cli("logs", "root.containerd", "--since", later).stdout == ""


def test_runscs_glog_lines_become_leveled_entries(agent):
    agent.wait_states(DEFAULT_TREE_UP)
    fd = os.open(agent.state / "runsc" / "logs.fifo", os.O_WRONLY | os.O_NONBLOCK)
    os.write(fd, b"W1204 02:46:05.465477   25623 sandbox.go:42] runsc e2e warning\n\tdetail\n")
    os.close(fd)
    deadline = time.monotonic() + 20
    rows: list[dict] = []
    while time.monotonic() < deadline and not rows:
        out = agent.cli("logs", "root.containerd.runsc", "--severity", "WARNING", "--json").stdout
        rows = [json.loads(line) for line in out.splitlines() if "runsc e2e warning" in line]
        time.sleep(0.2)
    (row,) = rows
    assert (row["severity"], row["source"], row["pid"]) == ("WARNING", "sandbox.go:42", 25623)
    assert row["lines"] == ["runsc e2e warning", "\tdetail"]


def test_logs_follow_streams_a_line_written_into_the_fifo(agent):
    agent.wait_states(DEFAULT_TREE_UP)
    follower = subprocess.Popen(
        [*CLI, "logs", "root.containerd.runsc", "-f", "-n", "0"],
        env=agent.env,
        stdout=subprocess.PIPE,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    reader = threading.Thread(
        target=lambda: [lines.put(line) for line in follower.stdout], daemon=True
    )
    reader.start()
    try:
        # The follower subscribes at a time we cannot see, and `-n 0` shows only what
        # comes after: write the line again until the follower prints it.
        seen = ""
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and "hello from runsc e2e" not in seen:
            fd = os.open(agent.state / "runsc" / "logs.fifo", os.O_WRONLY | os.O_NONBLOCK)
            os.write(fd, b"hello from runsc e2e\n")
            os.close(fd)
            try:
                seen = lines.get(timeout=0.5)
            except queue.Empty:
                continue
        assert "hello from runsc e2e" in seen
    finally:
        follower.send_signal(signal.SIGINT)
        assert follower.wait(10) == 0


def test_restart_restarts_only_that_node(agent):
    before = agent.wait_states(DEFAULT_TREE_UP)
    agent.cli("restart", "root.containerd.runsc")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        now = agent.status()
        if (
            now.get("root.containerd.runsc", {}).get("restarts")
            == before["root.containerd.runsc"]["restarts"] + 1
            and now["root.containerd.runsc"]["state"] == "HEALTHY"
        ):
            break
        time.sleep(0.1)
    assert now["root.containerd.runsc"]["pid"] != before["root.containerd.runsc"]["pid"]
    assert now["root.containerd"]["pid"] == before["root.containerd"]["pid"]
    assert now["root.containerd"]["restarts"] == before["root.containerd"]["restarts"]


def test_restart_of_an_unknown_dn_fails_clearly(agent):
    agent.wait_states(DEFAULT_TREE_UP)
    r = agent.cli("restart", "root.nope", check=False)
    assert r.returncode == 1
    assert "root.nope" in r.stderr


def test_a_second_agent_on_the_same_state_is_refused_having_changed_nothing(agent):
    agent.wait_states(DEFAULT_TREE_UP)
    written = [
        agent.state / "containerd" / "config.toml",
        agent.state / "runsc" / "launcher",
        agent.state / "lock",
    ]
    before = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in written if p.exists()}
    assert agent.state / "containerd" / "config.toml" in before
    other = agent.base / "other.toml"
    other.write_text('[runsc]\nflags = ["--debug-log-format=json"]\n')
    second = agent.cli("run", "--config", str(other), check=False, timeout=60)
    assert second.returncode == 1
    assert "Traceback" not in second.stderr
    assert second.stderr.strip().splitlines() == [
        f"node-containerd: another node-containerd agent (pid {agent.pid}) is already "
        f"serving {str(agent.state)!r}; stop it first, or give this one another state "
        "directory (--config with state_dir, or NODE_CONTAINERD_STATE)"
    ]
    assert {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in before} == before
    agent.wait_states(DEFAULT_TREE_UP)


def test_a_root_frozen_for_five_seconds_blames_none_of_its_children(agent):
    before = agent.wait_states(DEFAULT_TREE_UP)
    os.kill(agent.pid, signal.SIGSTOP)
    try:
        time.sleep(5)  # the freeze under test: 5 heartbeat intervals
    finally:
        os.kill(agent.pid, signal.SIGCONT)
    # Overdue timers fire at once on resume; watch one whole liveness window after it.
    deadline = time.monotonic() + 4
    while time.monotonic() < deadline:
        nodes = agent.wait_states(DEFAULT_TREE_UP, timeout=10)
        assert {dn: (n["pid"], n["restarts"]) for dn, n in nodes.items()} == {
            dn: (n["pid"], n["restarts"]) for dn, n in before.items()
        }
        time.sleep(0.2)


def _zygotes(agent: AgentUnderTest, nodes: dict) -> list[int]:
    """The agent's zygote: a child of the root with the zygote's command line, not a node."""
    node_pids = {n["pid"] for n in nodes.values() if n["pid"]}
    children = []
    for task in os.listdir(f"/proc/{agent.pid}/task"):
        with open(f"/proc/{agent.pid}/task/{task}/children") as f:
            children += [int(p) for p in f.read().split()]
    return [p for p in children if p not in node_pids and ZYGOTE_MODULE in cmdline(p)]


def test_the_runnables_are_forked_and_a_killed_zygote_comes_back_leaving_them_running(agent):
    nodes = agent.wait_states(DEFAULT_TREE_UP)
    running = {dn: n["pid"] for dn, n in nodes.items() if n["pid"]}
    assert all(ZYGOTE_MODULE in cmdline(pid) for pid in running.values()), running
    (zygote,) = _zygotes(agent, nodes)
    os.kill(zygote, signal.SIGKILL)
    back = wait_until(
        lambda: [p for p in _zygotes(agent, agent.status()) if p != zygote], 20, "a new zygote"
    )
    assert len(back) == 1
    after = agent.wait_states(DEFAULT_TREE_UP)
    assert {dn: n["pid"] for dn, n in after.items() if n["pid"]} == running
    said = agent.cli("logs", "root", "-n", "200").stdout
    assert f"zygote (pid {zygote}) ended: killed by signal SIGKILL" in said, said
    assert f"zygote started again (pid {back[0]})" in said, said


def test_sigterm_stops_everything_and_exits_zero(agent):
    nodes = agent.wait_states(DEFAULT_TREE_UP)
    pids = [n["pid"] for n in nodes.values() if n["pid"]]
    containerd_pids = subprocess.run(
        ["pgrep", "-f", f"containerd --config {agent.state}"], capture_output=True, text=True
    ).stdout.split()
    assert containerd_pids
    assert agent.terminate(60) == 0, agent.stderr()
    left = [p for p in pids + [int(x) for x in containerd_pids] if pid_alive(p)]
    assert left == []
    r = agent.cli("status", check=False)
    assert r.returncode == 3
    assert "not running" in r.stderr


def test_sigterm_with_a_read_only_state_dir_stops_cleanly_with_one_warning():
    base = Path(tempfile.mkdtemp(prefix="nc-e2e-ro-", dir="/tmp"))
    a = AgentUnderTest(base)
    a.start()
    mounted = False
    try:
        a.wait_states(DEFAULT_TREE_UP)
        subprocess.run(["mount", "--bind", a.state, a.state], check=True)
        mounted = True
        subprocess.run(["mount", "-o", "remount,bind,ro", a.state], check=True)
        assert a.terminate(60) == 0, a.stderr()
        err = a.stderr()
        assert "Traceback" not in err
        assert (
            f"node-containerd: warning: stopping the control socket: cannot remove the "
            f"control socket {str(a.state / 'control.sock')!r}: Read-only file system"
        ) in err.splitlines()
    finally:
        if mounted:
            subprocess.run(["umount", a.state], check=False)
        a.cleanup()
