"""The agent as an operator meets it: found from anywhere, calm on its terminal, SIGHUP.

One agent for the module, on a config file with a JSON log and metrics, registered
in a registry directory of the module's own (the stand-in for /run/node-containerd).
The CLI runs from `/` with no `--config`, `--state` or `NODE_CONTAINERD_STATE`
unless a test says so. The SIGHUP tests come last: they change the agent's config.
"""

from __future__ import annotations

import json
import re
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.cli_agent import CLI, CliAgent
from tests.support.images import small_image, write_oci_archive
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.containerd, pytest.mark.timeout(300)]

IMAGE = "docker.io/library/operator:1"


def base_config(base: Path) -> str:
    # A CNI directory of the operator's, left empty: the agent writes no default network
    # into it, so containerd says it found none (the message under test), and no pod of
    # `check` gets a network of its own (none may touch the machine's network here).
    return (
        f'[log]\njson_file = "{base}/agent.json"\n[metrics]\nenabled = true\n'
        f'listen = "127.0.0.1:0"\n[cni]\nconf_dir = "{base}/net.d"\n'
    )


@pytest.fixture(scope="module")
def agent() -> Iterator[CliAgent]:
    base = Path(tempfile.mkdtemp(prefix="nc-op-", dir="/tmp"))
    (base / "net.d").mkdir()
    a = CliAgent(base, base / "reg", config=base_config(base))
    a.start()
    try:
        a.wait_up()
        yield a
    finally:
        a.stop()
        shutil.rmtree(base, ignore_errors=True)


# ---------------------------------------------------------------- finding the agent


def test_run_says_once_that_it_is_up_and_where_everything_is(agent: CliAgent) -> None:
    lines = [line for line in agent.stderr().splitlines() if " is up: " in line]
    assert len(lines) == 1
    assert re.fullmatch(
        r"root  I\d{4} [\d:.]+ daemon\.py:\d+\] node-containerd 0\.1\.0 is up: "
        + re.escape(
            f"state {agent.state}, control socket {agent.state}/control.sock, "
            f"containerd at {agent.state}/containerd/containerd.sock, metrics at "
        )
        + r"http://127\.0\.0\.1:\d+/metrics",
        lines[0],
    ), lines[0]


def test_runs_stderr_leaves_containerds_info_lines_and_its_cni_error_to_the_log_tree(
    agent: CliAgent,
) -> None:
    stderr = agent.stderr()
    in_tree = agent.log_messages("root.containerd")
    assert any(m.startswith("loading plugin") for m in in_tree)
    assert any(m.startswith("failed to load cni during init") for m in in_tree)
    shown = [line for line in stderr.splitlines() if line.startswith("root.containerd  ")]
    assert not [line for line in shown if "loading plugin" in line]
    assert not [line for line in shown if re.match(r"root\.containerd  E", line)]
    [cni] = [line for line in shown if "CNI" in line]
    assert cni.startswith("root.containerd  I")
    assert cni.endswith(
        f"containerd found no CNI network config in {agent.base}/net.d: pods can run on "
        "the host's network only (hostNetwork, as `node-containerd check` runs them) until "
        "one is installed"
    )


def test_from_any_directory_the_commands_find_the_one_running_agent(agent: CliAgent) -> None:
    status = agent.cli("status")
    assert status.returncode == 0, status.stderr
    assert "root.containerd.preseed" in status.stdout
    logs = agent.cli("logs", "root.containerd", "-n", "1", cwd=agent.base.parent)
    assert logs.returncode == 0, logs.stderr
    assert len(logs.stdout.splitlines()) == 1


def test_check_from_any_directory_checks_the_running_agents_containerd(agent: CliAgent) -> None:
    r = agent.cli("check", "--json", timeout=120)
    first = json.loads(r.stdout)["checks"][0]
    assert first == {
        "name": f"containerd answers on '{agent.state}/containerd/containerd.sock'",
        "ok": True,
        "cause": None,
        "skipped": None,
    }


def test_import_without_address_or_namespace_goes_into_the_agents_k8s_io(agent: CliAgent) -> None:
    tar = agent.base / "operator.tar"
    write_oci_archive(tar, [small_image(IMAGE, seed=11)])
    r = agent.cli("import", str(tar))
    assert r.returncode == 0, r.stderr
    sock = agent.state / "containerd" / "containerd.sock"
    names = subprocess.run(
        ["ctr", "-a", str(sock), "-n", "k8s.io", "images", "ls", "-q"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert IMAGE in names


def test_with_two_agents_running_a_command_lists_them_and_state_chooses(agent: CliAgent) -> None:
    other = CliAgent(agent.base, agent.registry, name="b")
    other.start()
    try:
        other.wait_up()
        r = agent.cli("status")
        assert r.returncode == 2
        assert r.stderr.splitlines() == [
            "node-containerd: 2 node-containerd agents are running on this machine "
            f"(registered in '{agent.registry}'); choose one with --state DIR:",
            f"  {other.state}   pid {other.pid}, config {other.config}",
            f"  {agent.state}  pid {agent.pid}, config {agent.config}",
        ]
        chosen = agent.cli("status", "--state", str(other.state))
        assert chosen.returncode == 0, chosen.stderr
    finally:
        assert other.stop() == 0
    assert len(list(agent.registry.glob("*.json"))) == 1  # b removed its entry
    assert agent.cli("status").returncode == 0


# ---------------------------------------------------------------- calm output


def test_logs_follow_shows_the_last_ten_entries_then_follows(agent: CliAgent) -> None:
    everything = agent.cli("logs", "root.containerd", "--json")
    seqs = [json.loads(line)["seq"] for line in everything.stdout.splitlines()]
    assert len(seqs) > 10
    follow = subprocess.Popen(
        [*CLI, "logs", "root.containerd", "-f", "--json"],
        env=agent.env,
        cwd="/",
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert follow.stdout is not None
        shown = [json.loads(follow.stdout.readline())["seq"] for _ in range(10)]
    finally:
        follow.send_signal(signal.SIGINT)
        follow.wait(10)
    assert shown == seqs[-10:]
    every = agent.cli("logs", "root.containerd", "-n", "all", "--json")
    assert [json.loads(line)["seq"] for line in every.stdout.splitlines()][: len(seqs)] == seqs


def test_status_explains_the_roots_done_and_shows_containerds_own_pid(agent: CliAgent) -> None:
    r = agent.cli("status")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    [root] = [line for line in lines if line.startswith("root ")]
    [containerd] = [line for line in lines if line.startswith("  root.containerd ")]
    assert root.split()[1] == "DONE"
    assert root.endswith("  (root: started its children, which run on)")
    assert containerd.endswith(f"  (containerd's own pid {agent.containerd_pid()})")


# ---------------------------------------------------------------- SIGHUP


def test_sighup_with_a_rotated_json_log_writes_a_new_file(agent: CliAgent) -> None:
    log = agent.base / "agent.json"
    log.rename(agent.base / "agent.json.1")
    agent.hup()
    reopened = f"reopened the JSON log file '{log}'"
    wait_until(lambda: log.exists() and reopened in log.read_text(), 30, "a new JSON log")
    assert json.loads(log.read_text().splitlines()[0])["dn"] == "root"
    assert agent.proc is not None and agent.proc.poll() is None


def test_sighup_with_a_bad_config_refuses_it_whole_and_changes_nothing(agent: CliAgent) -> None:
    before = (agent.status(), agent.containerd_pid())
    good = agent.config.read_text()
    agent.config.write_text(good + '[containerd]\nliveness_interval = "soon"\n[nope]\n')
    try:
        check = agent.cli("config", "check", str(agent.config))
        problems = check.stderr.splitlines()
        assert check.returncode == 2 and len(problems) == 2
        agent.hup()
        refused = wait_until(
            lambda: [m for m in agent.log_messages() if m.startswith("config reload refused")],
            30,
            "the refusal",
        )
        assert refused == [
            f"config reload refused: '{agent.config}' has 2 problem(s), listed below; "
            "the agent keeps running on the config it has"
        ]
        messages = agent.log_messages()
        at = messages.index(refused[0])
        assert messages[at + 1 : at + 3] == problems
    finally:
        agent.config.write_text(good)
    nodes, pid = agent.status(), agent.containerd_pid()
    assert pid == before[1]
    assert {dn: n["pid"] for dn, n in nodes.items()} == {
        dn: n["pid"] for dn, n in before[0].items()
    }


def test_sighup_with_a_changed_config_changes_log_level_and_policy_live_and_keeps_containerd(
    agent: CliAgent,
) -> None:
    pid = agent.containerd_pid()
    agent.write_config(
        base_config(agent.base).replace("[log]\n", '[log]\nmin_severity = "WARNING"\n')
        + '[containerd]\nliveness_interval = "7s"\n'
        + '[policy."root.containerd.runsc"]\nbackoff_initial = "40s"\nbackoff_jitter = 0.0\n'
    )
    agent.hup()
    expected = [
        "config reload: containerd.liveness_interval changed from '5s' to '7s', which needs "
        "a restart of the agent (and so of containerd); it stays '5s' until then",
        "config reload: log.min_severity changed from 'INFO' to 'WARNING'",
        'config reload: policy."root.containerd.runsc".backoff_initial changed from '
        "(not set) to '40s'",
        'config reload: policy."root.containerd.runsc".backoff_jitter changed from '
        "(not set) to 0.0",
    ]
    wait_until(
        lambda: (
            [m for m in agent.log_messages() if m.startswith("config reload:")][-4:] == expected
        ),
        30,
        "the reload's lines",
    )
    # The log level: the INFO lines of the reload are in the tree, not in the JSON file.
    log = agent.base / "agent.json"
    wait_until(lambda: expected[0] in log.read_text(), 30, "the WARNING line in the JSON log")
    messages = [json.loads(line).get("message") for line in log.read_text().splitlines()]
    assert expected[1] not in messages and expected[2] not in messages
    # The policy: the log pump, killed, is restarted after the new backoff.
    pump = agent.status()["root.containerd.runsc"]["pid"]
    subprocess.run(["kill", "-KILL", str(pump)], check=True)
    line = wait_until(
        lambda: [ln for ln in agent.cli("status").stdout.splitlines() if "restarting in" in ln],
        30,
        "the pump's restart timer",
    )[0]
    assert "root.containerd.runsc" in line
    seconds = int(re.search(r"restarting in (\d+)s", line).group(1))  # type: ignore[union-attr]
    assert 30 <= seconds <= 40
    assert agent.containerd_pid() == pid
