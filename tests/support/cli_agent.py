"""The agent as an operator runs it, for the CLI's system tests: `CliAgent`.

`CliAgent` is the kit's `AgentUnderTest` on a config file of its own under a base
directory (`<base>/<name>.toml`, state `<base>/<name>`), registered in a registry
directory the test owns (`NODE_CONTAINERD_REGISTRY`, the stand-in for
`/run/node-containerd`); its `cli` runs commands the way an operator types them:
from `/`, with no `--config`, `--state` or `NODE_CONTAINERD_STATE` unless the test
gives them.
"""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Mapping
from pathlib import Path
from subprocess import CompletedProcess

from tests.support.agent import AgentUnderTest
from tests.support.processes import pids_mentioning
from tests.support.project import CLI
from tests.support.waiting import wait_until

__all__ = ["CLI", "CliAgent", "operator_env"]


def operator_env(registry: Path, **extra: str) -> dict[str, str]:
    """The environment of an operator's shell: no state directory chosen, our registry."""
    env = {k: v for k, v in os.environ.items() if k != "NODE_CONTAINERD_STATE"}
    return {**env, "NODE_CONTAINERD_REGISTRY": str(registry), "NO_COLOR": "1", **extra}


class CliAgent(AgentUnderTest):
    """The agent of `<base>/<name>.toml`, its state in `<base>/<name>`."""

    def __init__(self, base: Path, registry: Path, *, name: str = "st", config: str = "") -> None:
        super().__init__(
            base,
            config=base / f"{name}.toml",
            state=base / name,
            env=operator_env(registry),
            stderr=base / f"{name}.err",
        )
        #: The registry directory the agent registers in.
        self.registry = registry
        self.write_config(config)

    def write_config(self, text: str) -> None:
        """Writes the config file: `state_dir`, then `text`."""
        assert self.config is not None
        self.config.write_text(f'state_dir = "{self.state}"\n{text}\n')

    def cli(  # type: ignore[override]
        self,
        *args: str,
        cwd: Path | str = "/",
        env: Mapping[str, str] | None = None,
        timeout: float = 60,
    ) -> CompletedProcess[str]:
        """Runs `node-containerd ARGS` from `cwd` (default `/`) as the operator would."""
        return super().cli(*args, check=False, timeout=timeout, cwd=cwd, env=env)

    def status(self) -> dict[str, dict[str, object]]:
        """`status --json` of this agent, by DN; {} when it does not answer."""
        r = self.cli("status", "--json", "--state", str(self.state))
        return {n["dn"]: n for n in json.loads(r.stdout)["nodes"]} if r.returncode == 0 else {}

    def wait_up(self, timeout: float = 90) -> None:
        """Until its stderr says it is up and the preseed is HEALTHY."""

        def up() -> bool:
            assert self.exited() is None, self.stderr()[-3000:]
            nodes = self.status()
            ready = nodes.get("root.containerd.preseed", {}).get("state") == "HEALTHY"
            return ready and " is up: " in self.stderr()

        wait_until(up, timeout, f"agent {self.state} up", interval=0.1)

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
        code = self.terminate(60) if self.proc is not None else None
        if self.proc is not None and code is None:
            self.kill()
        for pid in pids_mentioning(str(self.state)):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        return code
