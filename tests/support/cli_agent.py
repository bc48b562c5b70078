"""`bin/node-containerd run --config` as an operator runs it, for the CLI's system tests.

`CliAgent` runs the real agent on a config file of its own under a base directory,
registered in a registry directory the test owns (`NODE_CONTAINERD_REGISTRY`, the
stand-in for `/run/node-containerd`), and runs CLI commands the way an operator
types them: from any directory, with no `--config`, `--state` or
`NODE_CONTAINERD_STATE` unless the test gives them. Every wait has a deadline.
`stop` ends the agent with SIGTERM by its pid, and whatever of it is left (found
by its state directory in /proc) with SIGKILL, by pid.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

REPO = Path(__file__).resolve().parents[2]
CLI = [str(REPO / "bin" / "node-containerd")]

__all__ = ["CLI", "CliAgent", "operator_env", "pids_mentioning", "wait_for"]

T = TypeVar("T")


def wait_for(what: str, probe: Callable[[], T], timeout: float = 30.0) -> T:
    """Calls `probe` until it returns something true; that value. Fails after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"{what}: not reached in {timeout:g}s")
        time.sleep(0.1)


def operator_env(registry: Path, **extra: str) -> dict[str, str]:
    """The environment of an operator's shell: no state directory chosen, our registry."""
    env = {k: v for k, v in os.environ.items() if k != "NODE_CONTAINERD_STATE"}
    return {**env, "NODE_CONTAINERD_REGISTRY": str(registry), "NO_COLOR": "1", **extra}


def pids_mentioning(text: str) -> list[int]:
    """Processes whose command line contains `text` (read from /proc)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                if text.encode() in f.read():
                    found.append(int(entry))
        except OSError:
            continue
    return found


class CliAgent:
    """The agent of `<base>/<name>.toml`, its state in `<base>/<name>`."""

    def __init__(self, base: Path, registry: Path, *, name: str = "st", config: str = "") -> None:
        self.base = base
        self.registry = registry
        self.state = base / name
        self.config = base / f"{name}.toml"
        self.stderr_path = base / f"{name}.err"
        self.write_config(config)
        self.env = operator_env(registry)
        self.proc: subprocess.Popen[bytes] | None = None

    def write_config(self, text: str) -> None:
        """Writes the config file: `state_dir`, then `text`."""
        self.config.write_text(f'state_dir = "{self.state}"\n{text}\n')

    def start(self, *extra: str) -> None:
        """Starts `run --config` (stderr to `stderr_path`), from the base directory."""
        with open(self.stderr_path, "ab") as err:
            self.proc = subprocess.Popen(
                [*CLI, "run", "--config", str(self.config), *extra],
                env=self.env,
                cwd=self.base,
                stdout=subprocess.DEVNULL,
                stderr=err,
            )

    @property
    def pid(self) -> int:
        """The agent's pid."""
        assert self.proc is not None
        return self.proc.pid

    def stderr(self) -> str:
        """What the agent wrote on stderr so far."""
        return self.stderr_path.read_text(errors="replace") if self.stderr_path.exists() else ""

    def cli(
        self,
        *args: str,
        cwd: Path | str = "/",
        env: Mapping[str, str] | None = None,
        timeout: float = 60,
    ) -> subprocess.CompletedProcess[str]:
        """Runs `node-containerd ARGS` from `cwd` (default `/`) as the operator would."""
        return subprocess.run(
            [*CLI, *args],
            env=dict(env if env is not None else self.env),
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def status(self) -> dict[str, dict[str, Any]]:
        """`status --json` of this agent, by DN; {} when it does not answer."""
        r = self.cli("status", "--json", "--state", str(self.state))
        return {n["dn"]: n for n in json.loads(r.stdout)["nodes"]} if r.returncode == 0 else {}

    def wait_up(self, timeout: float = 90) -> None:
        """Until its stderr says it is up and the preseed is HEALTHY."""

        def up() -> bool:
            assert self.proc is not None and self.proc.poll() is None, self.stderr()[-3000:]
            nodes = self.status()
            ready = nodes.get("root.containerd.preseed", {}).get("state") == "HEALTHY"
            return ready and " is up: " in self.stderr()

        wait_for(f"agent {self.state} up", up, timeout)

    def containerd_pid(self) -> int:
        """containerd's own pid: the child of root.containerd's process."""
        node = self.status()["root.containerd"]["pid"]
        for task in os.listdir(f"/proc/{node}/task"):
            with open(f"/proc/{node}/task/{task}/children") as f:
                for child in f.read().split():
                    with open(f"/proc/{child}/comm") as c:
                        if c.read().strip() == "containerd":
                            return int(child)
        raise AssertionError(f"no containerd below root.containerd (pid {node})")

    def log_messages(self, dn: str = "root") -> list[str]:
        """The messages of `dn`'s leveled entries, from the agent's log tree."""
        r = self.cli("logs", dn, "--json", "--leveled-only", "--state", str(self.state))
        assert r.returncode == 0, r.stderr
        return [json.loads(line)["message"] for line in r.stdout.splitlines()]

    def hup(self) -> None:
        """Sends SIGHUP to the agent."""
        os.kill(self.pid, signal.SIGHUP)

    def stop(self) -> int | None:
        """SIGTERM and wait (SIGKILL after 60 s); then SIGKILL what is left of it, by pid."""
        code = None
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGTERM)
                try:
                    self.proc.wait(60)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait(10)
            code = self.proc.returncode
        for pid in pids_mentioning(str(self.state)):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        return code
