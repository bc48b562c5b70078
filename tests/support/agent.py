"""The one agent-under-test driver: `node-containerd run` in a child process, and its CLI.

`AgentUnderTest` runs the real agent (`bin/node-containerd`, or an installed console
script) on a state directory `<base>/st`, with its stderr in a file, in a session of
its own. The test reads it the way an operator does: `status` and `cli` run the CLI
against it; `wait_states` polls `status --json` until the tree is where the test wants
it. `terminate` is SIGTERM and the exit code; `cleanup` leaves nothing behind (the
pods it ran, processes whose command line names its state directory, mounts under
its base, the base itself). The end-to-end tests, the pod tests, the installed-wheel
test, the disk-full test, `bench/pods` and the chaos soak all drive the agent with it.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from actors.containerd.api.cri import CriClient, CriError, PodRun
from tests.support.processes import child_named, pids_mentioning
from tests.support.project import CLI
from tests.support.waiting import wait_until

__all__ = ["DEFAULT_TREE_UP", "PRESEEDED", "AgentUnderTest", "Nodes"]

#: `status --json`'s nodes by DN.
Nodes = dict[str, dict[str, Any]]

#: The default profile's tree once up (the preseed is HEALTHY after its initial pass,
#: then watching its directory).
DEFAULT_TREE_UP: Mapping[str, str] = {
    "root": "DONE",
    "root.containerd": "HEALTHY",
    "root.containerd.runsc": "HEALTHY",
    "root.containerd.preseed": "HEALTHY",
}
#: containerd up and the initial preseed done (HEALTHY, or DONE without the watch).
PRESEEDED: Mapping[str, str | tuple[str, ...]] = {
    "root.containerd": "HEALTHY",
    "root.containerd.preseed": ("HEALTHY", "DONE"),
}


class AgentUnderTest:
    """The agent on the state directory `<base>/st` (or `state`), and the CLI against it."""

    def __init__(
        self,
        base: Path,
        *,
        config: Path | None = None,
        state: Path | None = None,
        command: Sequence[str | Path] = CLI,
        cwd: Path | None = None,
        env: Mapping[str, str] | None = None,
        stderr: Path | None = None,
        own_netns: bool = False,
    ) -> None:
        """Describes the agent; nothing runs until `start`.

        Args:
            base: the directory the test owns; `cleanup` removes it.
            config: the config file `run` and the CLI are given (`--config`); without
                one, the state directory comes from `NODE_CONTAINERD_STATE`.
            state: the state directory (default `<base>/st`).
            command: the agent's program: `bin/node-containerd`, or an installed script.
            cwd: where the agent and the CLI run (default `base`).
            env: their environment (default: this process's, with `NO_COLOR=1` and
                `NODE_CONTAINERD_STATE`).
            stderr: the file the agent's stderr is appended to (default `<base>/agent.err`).
            own_netns: run the agent (and so containerd, the CNI plugins it runs, the
                bridge, its addresses and its iptables rules) in a network namespace of
                its own with only `lo` up (`unshare --net`), and the CLI in it too: pods
                with their own network then touch nothing of the machine's network.
        """
        #: The test's directory, removed by `cleanup`.
        self.base = base
        #: The agent's state directory.
        self.state = state or base / "st"
        #: The config file given to `run` and to the CLI, if any.
        self.config = config
        #: The agent's program.
        self.command = [str(part) for part in command]
        #: The working directory of the agent and of the CLI.
        self.cwd = cwd or base
        #: The environment of the agent and of the CLI; a test may add to it before `start`.
        self.env = (
            dict(os.environ, NO_COLOR="1", NODE_CONTAINERD_STATE=str(self.state))
            if env is None
            else dict(env)
        )
        #: The file holding the agent's stderr.
        self.stderr_path = stderr or base / "agent.err"
        #: The agent's process, once started.
        self.proc: subprocess.Popen[str] | None = None
        #: Whether the agent runs in a network namespace of its own.
        self.own_netns = own_netns
        self._client: CriClient | None = None

    def in_netns(self, argv: list[str]) -> list[str]:
        """`argv` to run in the agent's network namespace (as it is without `own_netns`)."""
        if not self.own_netns or self.proc is None or self.proc.poll() is not None:
            return argv
        return ["nsenter", f"--net=/proc/{self.proc.pid}/ns/net", "--", *argv]

    def run_argv(self, argv: list[str]) -> list[str]:
        """`argv` (the agent's `run`) to start in a network namespace of its own, with
        `lo` up, when `own_netns`; `sh` execs it, so the agent keeps the pid that
        `in_netns` enters by."""
        if not self.own_netns:
            return argv
        up = 'ip link set lo up && exec "$@"'
        return ["unshare", "--net", "--", "sh", "-c", up, "sh", *argv]

    def _config_args(self) -> list[str]:
        return ["--config", str(self.config)] if self.config is not None else []

    def start(self, *extra: str) -> None:
        """Starts `run` (with `extra` arguments), in a session of its own, stdout
        discarded, stderr to its file."""
        with open(self.stderr_path, "a") as err:
            self.proc = subprocess.Popen(
                self.run_argv([*self.command, "run", *self._config_args(), *extra]),
                env=self.env,
                cwd=self.cwd,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=err,
                text=True,
                start_new_session=True,
            )

    @property
    def pid(self) -> int:
        """The agent's (the root's) pid."""
        assert self.proc is not None, "the agent was not started"
        return self.proc.pid

    def exited(self) -> int | None:
        """The agent's exit code, or None while it runs."""
        assert self.proc is not None, "the agent was not started"
        return self.proc.poll()

    def cli(
        self,
        *args: str,
        check: bool = True,
        timeout: float = 120,
        cwd: Path | str | None = None,
        env: Mapping[str, str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Runs `node-containerd ARGS` (the test adds `--config` where it wants one).

        Args:
            args: the command and its arguments.
            check: fail unless it exits 0.
            timeout: seconds it may take.
            cwd: where it runs (default: the agent's `cwd`).
            env: its environment (default: the agent's `env`).

        Raises:
            AssertionError: `check` and the command exited non-zero.
        """
        r = subprocess.run(
            self.in_netns([*self.command, *args]),
            env=dict(self.env if env is None else env),
            cwd=self.cwd if cwd is None else cwd,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if check and r.returncode != 0:
            raise AssertionError(f"{args} exited {r.returncode}: {r.stdout}\n{r.stderr}")
        return r

    def status(self) -> Nodes:
        """`status --json`'s nodes by DN; empty while the agent does not answer."""
        r = self.cli("status", "--json", *self._config_args(), check=False, timeout=30)
        return {n["dn"]: n for n in json.loads(r.stdout)["nodes"]} if r.returncode == 0 else {}

    def wait_states(self, want: Mapping[str, str | tuple[str, ...]], timeout: float = 60) -> Nodes:
        """Polls `status` until each DN of `want` is in its state (or one of its states).

        Raises:
            AssertionError: the agent exited, or `timeout` s passed; with its stderr.
        """
        wanted = {dn: (s,) if isinstance(s, str) else s for dn, s in want.items()}
        seen: list[Nodes] = [{}]

        def reached() -> Nodes | None:
            code = self.exited()
            assert code is None, f"the agent exited with {code}: {self.stderr()}"
            seen[0] = nodes = self.status()
            ok = all(nodes.get(dn, {}).get("state") in s for dn, s in wanted.items())
            return nodes if ok else None

        try:
            return wait_until(reached, timeout, f"states {want}", interval=0.1)
        except AssertionError as e:
            if self.exited() is not None:
                raise
            raise AssertionError(f"{e}: {seen[0]}\n{self.stderr()}") from None

    def wait_ready(self, timeout: float = 90) -> Nodes:
        """Until containerd is HEALTHY and the initial preseed is done (`PRESEEDED`)."""
        return self.wait_states(PRESEEDED, timeout)

    def terminate(self, timeout: float = 60) -> int | None:
        """SIGTERM; the exit code, or None if the agent still runs after `timeout` s."""
        assert self.proc is not None, "the agent was not started"
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def kill(self) -> None:
        """SIGKILL the agent (its runnables and containerd follow it) and reap it."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(30)

    def stderr(self) -> str:
        """The end of the agent's stderr."""
        p = self.stderr_path
        return p.read_text(errors="replace")[-4000:] if p.exists() else ""

    def preseed(self, *tars: Path) -> None:
        """Copies image tarballs into the preseed directory of namespace `k8s.io`."""
        target = self.state / "preseed" / "k8s.io"
        target.mkdir(parents=True, exist_ok=True)
        for tar in tars:
            shutil.copy2(tar, target / tar.name)

    def containerd_pid(self) -> int:
        """containerd's own pid: the child of root.containerd's process."""
        node = self.status()["root.containerd"]["pid"]
        pid = child_named(node, "containerd")
        assert pid is not None, f"no containerd below root.containerd (pid {node})"
        return pid

    @property
    def client(self) -> CriClient:
        """A CRI client of the agent's containerd (made on first use)."""
        if self._client is None:
            self._client = CriClient(self.state / "containerd" / "containerd.sock")
        return self._client

    def remove_all_pods(self) -> None:
        """Removes every pod sandbox through CRI (nothing if containerd does not answer)."""
        try:
            for sandbox in self.client.sandbox_ids():
                PodRun(
                    client=self.client, handler="", log_dir=self.base, sandbox_id=sandbox
                ).remove()
        except CriError:
            pass

    def cleanup(self) -> None:
        """Pods removed, the agent stopped, leftovers killed and unmounted, `base` removed."""
        if self.proc is not None and self.proc.poll() is None:
            if self._client is not None:
                self.remove_all_pods()
            if self.terminate(60) is None:
                self.kill()
        if self._client is not None:
            self._client.close()
        for pid in pids_mentioning(str(self.state)):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        with open("/proc/self/mounts") as f:
            mounts = [line.split()[1] for line in f if str(self.base) in line]
        for mount in sorted(mounts, reverse=True):
            subprocess.run(["umount", "-l", mount], check=False)
        shutil.rmtree(self.base, ignore_errors=True)
