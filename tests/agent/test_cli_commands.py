"""The command line: help, version, exit codes, config commands, dispatch, lazy imports."""

from __future__ import annotations

import argparse
import importlib.util
import os
import subprocess
import sys
import types
from pathlib import Path

import pytest

from actors.agent.cli import main
from actors.config import default_toml
from actors.exit_codes import ExitCode, exit_codes_help
from actors.supervisor.core.severity import Severity

REPO = Path(__file__).resolve().parents[2]
HAS_PRESEED_CLI = importlib.util.find_spec("actors.preseed.cli") is not None


@pytest.fixture
def env(short_dir: Path) -> dict[str, str]:
    return {**os.environ, "NODE_CONTAINERD_STATE": str(short_dir / "s")}


def cli(*args: str, env: dict[str, str], stdin: str = "") -> subprocess.CompletedProcess[str]:
    """Runs `python -m actors.agent.cli ARGS` as bin/node-containerd does."""
    return subprocess.run(
        [sys.executable, "-m", "actors.agent.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        input=stdin,
        timeout=60,
    )


def _python(script: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """`script` run by a fresh interpreter in the checkout."""
    return subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=60,
    )


def test_version_prints_the_program_name_and_version(env: dict[str, str]) -> None:
    r = cli("--version", env=env)
    assert (r.returncode, r.stdout, r.stderr) == (0, "node-containerd 0.1.0\n", "")


def test_help_lists_every_command_the_environment_and_the_exit_codes(env: dict[str, str]) -> None:
    r = cli("--help", env=env)
    assert r.returncode == 0
    assert r.stdout.startswith("usage: node-containerd [-h] [--version] COMMAND ...\n")
    for line in (
        "    run       run the agent in the foreground",
        "    status    show every node of the running agent",
        "    logs      show or follow the log of a node",
        "    restart   restart a node and its subtree now",
        "    import    ",
        "    preseed   ",
        "    config    print the default config, or check a config file",
        "    image     build the node's own sandbox image as a tarball",
        "  NODE_CONTAINERD_STATE     the state directory when the config names none",
        "  NODE_CONTAINERD_REGISTRY  where agents register (default:",
        "  else the one agent registered in /run/node-containerd (from any directory;",
        "  2    bad usage or a bad config file; nothing was started",
        "  3    the agent is not running (no control socket, or nobody listens on it)",
        "  70   a bug in node-containerd: a traceback and a request to report it",
        "  141  stdout was closed early (e.g. piped into `head`)",
    ):
        assert line in r.stdout


@pytest.mark.parametrize(
    "command",
    [
        "run",
        "status",
        "logs",
        "restart",
        "config",
        "config default",
        "config check",
        "image",
        "image build-pause",
    ],
)
def test_every_command_has_its_own_help(command: str, env: dict[str, str]) -> None:
    r = cli(*command.split(), "--help", env=env)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith(f"usage: node-containerd {command} [-h]")
    assert "exit codes:\n  0 " in r.stdout


def test_an_exit_codes_block_is_rendered_from_the_one_exit_code_enum() -> None:
    assert exit_codes_help({ExitCode.OK: "ok", ExitCode.INTERRUPTED: "interrupted"}) == (
        "exit codes:\n  0    ok\n  130  interrupted"
    )


@pytest.mark.skipif(not HAS_PRESEED_CLI, reason="actors.preseed.cli is not there yet")
@pytest.mark.parametrize("command", ["import", "preseed"])
def test_the_preseed_commands_have_help(command: str, env: dict[str, str]) -> None:
    r = cli(command, "--help", env=env)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith(f"usage: node-containerd {command}")


def test_no_command_is_a_usage_error(env: dict[str, str]) -> None:
    r = cli(env=env)
    assert (r.returncode, r.stdout) == (2, "")
    assert r.stderr == (
        "usage: node-containerd [-h] [--version] COMMAND ...\n"
        "node-containerd: error: a command is required\n"
    )
    r = cli("config", env=env)
    assert (r.returncode, r.stderr) == (
        2,
        "usage: node-containerd config [-h] ACTION ...\n"
        "node-containerd config: error: an action is required\n",
    )


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (
            ["restart", "Root"],
            "argument DN: 'Root' is not a DN: names of [a-z0-9_] joined by "
            "dots, e.g. root.containerd",
        ),
        (["restart"], "the following arguments are required: DN"),
        (
            ["logs", "-n", "-1"],
            "argument -n/--lines: '-1' is not a count: use an integer >= 0, or all",
        ),
        (
            ["logs", "-n", "x"],
            "argument -n/--lines: 'x' is not a count: use an integer >= 0, or all",
        ),
        (
            ["logs", "--severity", "verbose"],
            "argument --severity: 'verbose' is not a severity: "
            "use one of DEBUG, INFO, WARNING, ERROR, FATAL",
        ),
        (
            ["logs", "--raw-only", "--leveled-only"],
            "argument --leveled-only: not allowed with argument --raw-only",
        ),
        (
            ["frobnicate"],
            "argument COMMAND: invalid choice: 'frobnicate' (choose from "
            "'run', 'status', 'logs', 'restart', 'import', 'preseed', 'config', 'check', "
            "'image', 'pods', 'ps', 'images', 'inspect', 'logs-of', 'stopp', 'rmp')",
        ),
    ],
)
def test_bad_arguments_exit_2_with_argparse_s_message(
    args: list[str], error: str, env: dict[str, str]
) -> None:
    r = cli(*args, env=env)
    assert r.returncode == 2
    assert r.stderr.splitlines()[-1].endswith(f" error: {error}")


def test_config_default_prints_the_profile_and_passes_config_check(
    short_dir: Path, env: dict[str, str]
) -> None:
    r = cli("config", "default", env=env)
    assert (r.returncode, r.stdout, r.stderr) == (0, default_toml(), "")
    (short_dir / "agent.toml").write_text(r.stdout)
    checked = cli("config", "check", str(short_dir / "agent.toml"), env=env)
    assert (checked.returncode, checked.stdout, checked.stderr) == (
        0,
        f"{short_dir}/agent.toml: ok\n",
        "",
    )
    piped = cli("config", "check", "-", env=env, stdin=r.stdout)
    assert (piped.returncode, piped.stdout) == (0, "<stdin>: ok\n")


def test_config_check_prints_every_problem_of_every_file_and_exits_2(
    short_dir: Path, env: dict[str, str]
) -> None:
    (short_dir / "good.toml").write_text("")
    (short_dir / "bad.toml").write_text('[runsc]\nmode = "0666"\n[log]\nstderr = "no"\n')
    r = cli(
        "config",
        "check",
        str(short_dir / "bad.toml"),
        str(short_dir / "good.toml"),
        str(short_dir / "absent.toml"),
        env=env,
    )
    assert r.returncode == 2
    assert r.stdout == f"{short_dir}/good.toml: ok\n"
    assert r.stderr == (
        f"key 'runsc.mode' in {short_dir}/bad.toml: '0666' is world-writable; "
        'use a mode without the 0002 bit, e.g. "0600"\n'
        f"key 'log.stderr' in {short_dir}/bad.toml: 'no' is a string; use true or false\n"
        f"config file '{short_dir}/absent.toml' cannot be read: no such file or directory\n"
    )


def test_run_refuses_a_bad_config_before_starting_anything(
    short_dir: Path, env: dict[str, str]
) -> None:
    (short_dir / "bad.toml").write_text('[containerd]\nbinary = "/nonexistent/containerd"\n')
    # The zygote is spawned before the config is read (it loads while the config is
    # checked): a refused config ends it, and nothing else was started or written.
    script = (
        "import os, time\n"
        "from actors.agent.cli import main\n"
        f"rc = main(['run', '--config', {str(short_dir / 'bad.toml')!r}])\n"
        "def kids():\n"
        "    out = []\n"
        "    for t in os.listdir('/proc/self/task'):\n"
        "        out += open(f'/proc/self/task/{t}/children').read().split()\n"
        "    return out\n"
        "end = time.monotonic() + 5\n"
        "while kids() and time.monotonic() < end:\n"
        "    time.sleep(0.01)\n"
        "print(rc, kids(), sorted(os.listdir(os.environ['NODE_CONTAINERD_STATE']))\n"
        "      if os.path.exists(os.environ['NODE_CONTAINERD_STATE']) else None)\n"
    )
    r = _python(script, env)
    assert r.stdout == "2 [] None\n", r.stderr
    assert r.stderr == (
        f"key 'containerd.binary' in {short_dir}/bad.toml: '/nonexistent/containerd' does not "
        "exist; install containerd (Debian: apt-get install containerd) or set "
        "containerd.binary to its path\n"
    )
    assert not (short_dir / "s").exists()


@pytest.fixture
def fake_control(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, argparse.Namespace]]:
    """Replaces actors.agent.control.client with one that records its calls."""
    calls: list[tuple[str, argparse.Namespace]] = []
    fake = types.ModuleType("actors.agent.control.client")
    for name in ("cmd_status", "cmd_logs", "cmd_restart"):
        setattr(fake, name, lambda args, name=name: calls.append((name, args)) or 0)
    monkeypatch.setitem(sys.modules, "actors.agent.control.client", fake)
    # No plain socket answers: every command goes on to the (fake) gRPC client.
    plain = types.ModuleType("actors.agent.control.plain")
    plain.run_command = lambda op, args: None
    monkeypatch.setitem(sys.modules, "actors.agent.control.plain", plain)
    return calls


def test_control_commands_get_their_options_and_the_socket_of_the_config(
    short_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    fake_control: list[tuple[str, argparse.Namespace]],
) -> None:
    monkeypatch.setenv("NODE_CONTAINERD_STATE", str(short_dir / "s"))
    (short_dir / "agent.toml").write_text('[control]\nsocket = "/tmp/nc.sock"\n')
    assert main(["status", "--json"]) == 0
    assert (
        main(
            [
                "logs",
                "root.containerd",
                "-f",
                "--children",
                "-n",
                "5",
                "--severity",
                "warning",
                "--json",
                "--raw-only",
                "--config",
                str(short_dir / "agent.toml"),
            ]
        )
        == 0
    )
    assert main(["restart", "root.containerd.runsc", "--socket", "/tmp/other.sock"]) == 0
    assert main(["logs"]) == 0
    assert [(name, vars(args)) for name, args in fake_control] == [
        (
            "cmd_status",
            {
                "json": True,
                "socket": f"{short_dir}/s/control.sock",
                "config": None,
                "state": None,
                "where": f"no control socket at '{short_dir}/s/control.sock'",
                "handler": fake_control[0][1].handler,
            },
        ),
        (
            "cmd_logs",
            {
                "dn": "root.containerd",
                "follow": True,
                "children": True,
                "lines": 5,
                "severity": Severity.WARNING,
                "since": None,
                "sandbox": None,
                "container": None,
                "json": True,
                "raw_only": True,
                "leveled_only": False,
                "socket": "/tmp/nc.sock",
                "config": str(short_dir / "agent.toml"),
                "state": None,
                "where": "no control socket at '/tmp/nc.sock'",
                "handler": fake_control[1][1].handler,
            },
        ),
        (
            "cmd_restart",
            {
                "dn": "root.containerd.runsc",
                "socket": "/tmp/other.sock",
                "config": None,
                "state": None,
                "where": "no control socket at '/tmp/other.sock'",
                "handler": fake_control[2][1].handler,
            },
        ),
        (
            "cmd_logs",
            {
                "dn": None,
                "follow": False,
                "children": False,
                "lines": None,
                "severity": None,
                "since": None,
                "sandbox": None,
                "container": None,
                "json": False,
                "raw_only": False,
                "leveled_only": False,
                "socket": f"{short_dir}/s/control.sock",
                "config": None,
                "state": None,
                "where": f"no control socket at '{short_dir}/s/control.sock'",
                "handler": fake_control[3][1].handler,
            },
        ),
    ]


def test_control_commands_refuse_a_bad_config_with_exit_2(
    short_dir: Path,
    fake_control: list[tuple[str, argparse.Namespace]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    (short_dir / "agent.toml").write_text("[control]\nsocket = 5\n")
    assert main(["status", "--config", str(short_dir / "agent.toml")]) == ExitCode.USAGE
    assert capsys.readouterr().err == (
        f"key 'control.socket' in {short_dir}/agent.toml: 5 is an integer; "
        'use a path, or "" for the default\n'
    )
    assert fake_control == []


@pytest.mark.skipif(
    importlib.util.find_spec("actors.agent.control.client") is None,
    reason="actors.agent.control.client is not there yet",
)
def test_status_with_no_agent_running_exits_3(short_dir: Path, env: dict[str, str]) -> None:
    r = cli("status", env=env)
    assert r.returncode == ExitCode.NOT_RUNNING, r.stderr
    assert str(short_dir / "s" / "control.sock") in r.stderr


def test_help_and_config_commands_import_neither_grpc_nor_pykka(
    short_dir: Path, env: dict[str, str]
) -> None:
    (short_dir / "agent.toml").write_text(default_toml())
    script = (
        "import contextlib, io, sys\n"
        "from actors.agent.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    codes = [main(['--help']), main(['run', '--help']), main(['logs', '--help']),\n"
        "             main(['config', 'default']),\n"
        f"             main(['config', 'check', {str(short_dir / 'agent.toml')!r}])]\n"
        "heavy = sorted({m.split('.')[0] for m in sys.modules} & {'grpc', 'pykka', 'msgpack'})\n"
        "print(codes, heavy)\n"
    )
    r = _python(script, env)
    assert (r.stdout, r.stderr) == ("[0, 0, 0, 0, 0] []\n", "")


def test_run_has_its_zygote_on_the_way_before_it_loads_the_agent(env: dict[str, str]) -> None:
    # `run` spawns the zygote with only `actors.agent.preload` loaded: the config, the
    # agent and the supervision runtime (~150 ms of imports) load while the zygote loads
    # the runnables' modules, not before it starts.
    script = (
        "import sys\n"
        "import actors.agent.cli, actors.agent.preload\n"
        "heavy = {'actors.config.load', 'actors.config.schema', 'actors.agent.daemon',\n"
        "         'actors.agent.running', 'actors.supervisor.core.events', 'messages.wire',\n"
        "         'actors.supervisor.runtime.actor', 'pykka', 'grpc', 'msgpack'}\n"
        "print(sorted(heavy & set(sys.modules)))\n"
    )
    r = _python(script, env)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]"
