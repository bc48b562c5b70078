"""A user's mistake or the machine's state is one or two lines and a documented exit code.

Never a traceback, except for a bug, which asks to be reported. The commands run as
`bin/node-containerd` does, in processes of their own; none of these starts containerd.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from actors.agent import cli as cli_module
from actors.agent import config_cli
from actors.exit_codes import ExitCode

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.timeout(120)


def operator_env(registry: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "NODE_CONTAINERD_STATE"}
    return {**env, "NODE_CONTAINERD_REGISTRY": str(registry), "NO_COLOR": "1"}


def run_cli(*args: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "actors.agent.cli", *args],
        capture_output=True,
        text=True,
        env={**env, "PYTHONPATH": str(REPO)},
        cwd=cwd,
        timeout=90,
    )


# ---------------------------------------------------------------- no agent


@pytest.mark.parametrize(
    "args",
    [
        ["status"],
        ["logs", "root.containerd", "-f"],
        ["restart", "root.containerd"],
        ["check"],
        ["pods"],
        ["images", "--json"],
    ],
)
def test_a_command_that_needs_the_agent_and_finds_none_says_where_it_looked_in_one_line(
    args: list[str], short_dir: Path
) -> None:
    r = run_cli(*args, cwd=short_dir, env=operator_env(short_dir / "reg"))
    assert (r.returncode, r.stdout) == (ExitCode.NOT_RUNNING, "")
    assert r.stderr.splitlines() == [
        f"node-containerd is not running: no agent registered in '{short_dir}/reg', and "
        f"no control socket at '{short_dir}/.node-containerd/control.sock'"
    ]


def test_import_without_an_agent_also_says_how_to_do_without_one(short_dir: Path) -> None:
    r = run_cli("import", "x.tar", cwd=short_dir, env=operator_env(short_dir / "reg"))
    assert r.returncode == ExitCode.NOT_RUNNING
    assert r.stderr.splitlines() == [
        f"node-containerd is not running: no agent registered in '{short_dir}/reg', and "
        f"no control socket at '{short_dir}/.node-containerd/control.sock'; or give "
        "containerd's socket with --address SOCK"
    ]


def test_a_stale_registry_entry_is_ignored(short_dir: Path) -> None:
    from actors.agent.registry import AgentEntry, register

    register(
        AgentEntry(
            pid=2**22 + 7,  # above the kernel's pid_max: never a live process
            version="0.1.0",
            state_dir=str(short_dir / "gone"),
            control_socket=str(short_dir / "gone" / "control.sock"),
            containerd_address=str(short_dir / "gone" / "c.sock"),
            config=None,
            cwd=str(short_dir),
        ),
        short_dir / "reg",
    )
    r = run_cli("status", cwd=short_dir, env=operator_env(short_dir / "reg"))
    assert r.returncode == ExitCode.NOT_RUNNING
    assert "no agent registered in" in r.stderr


# ---------------------------------------------------------------- run


def test_run_as_a_user_other_than_root_is_refused_up_front_in_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    assert cli_module.main(["run"]) == ExitCode.USAGE
    assert capsys.readouterr().err == (
        "node-containerd: run needs root (containerd mounts file systems and makes "
        "namespaces); start it as root, e.g. sudo node-containerd run\n"
    )


def run_with(config: str, short_dir: Path) -> subprocess.CompletedProcess[str]:
    (short_dir / "agent.toml").write_text(config)
    return run_cli(
        "run",
        "--config",
        str(short_dir / "agent.toml"),
        cwd=short_dir,
        env=operator_env(short_dir / "reg"),
    )


def assert_told(r: subprocess.CompletedProcess[str], code: ExitCode, lines: list[str]) -> None:
    assert "Traceback" not in r.stderr
    assert (r.returncode, r.stderr.splitlines()) == (code, lines)


def test_a_state_dir_that_cannot_be_made_is_one_line_naming_it(short_dir: Path) -> None:
    (short_dir / "file").write_text("")
    r = run_with(f'state_dir = "{short_dir}/file/st"\n', short_dir)
    assert_told(
        r,
        ExitCode.FAILURE,
        [
            f"node-containerd: cannot lock the state directory '{short_dir}/file/st': Not a directory"
        ],
    )


def test_a_state_dir_that_cannot_be_written_is_one_line_naming_it(short_dir: Path) -> None:
    ro = short_dir / "ro"
    ro.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(ro)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"a read-only state dir needs a tmpfs mount: {mounted.stderr.strip()}")
    try:
        r = run_with(f'state_dir = "{ro}"\n', short_dir)
    finally:
        subprocess.run(["umount", "-l", str(ro)], check=False)
    assert_told(
        r,
        ExitCode.FAILURE,
        [f"node-containerd: cannot lock the state directory '{ro}': Read-only file system"],
    )


def test_a_missing_or_non_executable_containerd_is_a_config_problem(short_dir: Path) -> None:
    missing = run_with(
        f'state_dir = "{short_dir}/st"\n[containerd]\nbinary = "{short_dir}/nope"\n', short_dir
    )
    assert missing.returncode == ExitCode.USAGE and "Traceback" not in missing.stderr
    [line] = missing.stderr.splitlines()
    assert line.startswith(
        f"key 'containerd.binary' in {short_dir}/agent.toml: '{short_dir}/nope' does not exist; "
    )
    (short_dir / "plain").write_text("#!/bin/sh\n")
    plain = run_with(
        f'state_dir = "{short_dir}/st"\n[containerd]\nbinary = "{short_dir}/plain"\n', short_dir
    )
    assert plain.returncode == ExitCode.USAGE and "Traceback" not in plain.stderr
    [line] = plain.stderr.splitlines()
    assert f"'{short_dir}/plain' is not an executable file; " in line


def test_an_unreadable_config_is_one_line(short_dir: Path) -> None:
    (short_dir / "agent.toml").mkdir()
    r = run_cli(
        "run",
        "--config",
        str(short_dir / "agent.toml"),
        cwd=short_dir,
        env=operator_env(short_dir / "reg"),
    )
    assert_told(
        r,
        ExitCode.USAGE,
        [f"config file '{short_dir}/agent.toml' cannot be read: is a directory"],
    )


def test_a_metrics_port_in_use_is_one_line_with_the_fix_and_nothing_is_left(
    short_dir: Path,
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        r = run_with(
            f'state_dir = "{short_dir}/st"\n[metrics]\nenabled = true\n'
            f'listen = "127.0.0.1:{port}"\n',
            short_dir,
        )
    assert_told(
        r,
        ExitCode.FAILURE,
        [
            f"node-containerd: cannot serve metrics on 127.0.0.1:{port}: address already in "
            "use; stop what uses it, or choose another address with [metrics] listen"
        ],
    )
    assert not (short_dir / "st" / "control.sock").exists()
    assert not list((short_dir / "reg").glob("*.json"))


def test_a_bug_prints_its_traceback_and_asks_for_a_report_with_exit_70(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def broken(args: object) -> int:
        raise RuntimeError("an invariant broke")

    monkeypatch.setattr(config_cli, "_cmd_config_default", broken)
    assert cli_module.main(["config", "default"]) == ExitCode.BUG == 70
    err = capsys.readouterr().err.splitlines()
    assert err[0] == "Traceback (most recent call last):"
    assert err[-2:] == [
        "RuntimeError: an invariant broke",
        "node-containerd: this is a bug in node-containerd 0.1.0, not something you did; "
        "please report it with the traceback above",
    ]
