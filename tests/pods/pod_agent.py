"""`bin/node-containerd run` with pod images preseeded, for the pod tests and bench/pods.

`PodAgent` runs the real agent in a state directory whose ancestors gVisor's
sandbox user may search (the base is made 0711; see actors.containerd.runtimes.runsc.access), with
a config registering both handlers. With `own_netns`, the agent (and so containerd,
the CNI plugins it runs, the bridge, its addresses and its iptables rules) lives in a
network namespace of its own, with only `lo` up (`unshare --net`), and `cli` runs
the CLI in it: pods with their own network touch nothing of the machine's network. `cleanup` removes every pod through CRI,
then kills what is left of ours by pid (shims, sandboxes) and unmounts what is
left under the base, so a failed test leaves nothing behind.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from actors.containerd.api.cri import CriClient, CriError  # noqa: E402

CLI = [str(REPO / "bin" / "node-containerd")]
#: The test's sandbox image and its application image.
PAUSE_REF = "example.test/pause:1"
BUSYBOX_REF = "example.test/busybox:1"

__all__ = ["BUSYBOX_REF", "CLI", "PAUSE_REF", "PodAgent", "new_agent", "pids_mentioning"]


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


class PodAgent:
    """The agent, its config and its CRI client, under `base`."""

    def __init__(
        self,
        base: Path,
        *,
        extra_config: str = "",
        runsc_flags: tuple[str, ...] = (),
        own_netns: bool = False,
    ) -> None:
        os.chmod(base, 0o711)
        self.base = base
        self.own_netns = own_netns
        self.state = base / "st"
        self.config = base / "agent.toml"
        flags = ", ".join(json.dumps(f) for f in runsc_flags)
        self.config.write_text(
            f'state_dir = "{self.state}"\n'
            f"[runsc]\nflags = [{flags}]\n{extra_config}\n"
            f'[cri]\nsandbox_image = "{PAUSE_REF}"\n'
        )
        self.env = dict(os.environ, NO_COLOR="1")
        self.proc: subprocess.Popen[str] | None = None
        self.client = CriClient(self.state / "containerd" / "containerd.sock")

    def preseed(self, *tars: Path) -> None:
        target = self.state / "preseed" / "k8s.io"
        target.mkdir(parents=True, exist_ok=True)
        for tar in tars:
            shutil.copy2(tar, target / tar.name)

    def cli(
        self, *args: str, check: bool = True, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        r = subprocess.run(
            self.in_netns([*CLI, *args]),
            env=self.env,
            cwd=self.base,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if check and r.returncode != 0:
            raise AssertionError(f"{args} exited {r.returncode}: {r.stdout}\n{r.stderr}")
        return r

    def in_netns(self, argv: list[str]) -> list[str]:
        """`argv` to run in the agent's network namespace (as it is without `own_netns`)."""
        if not self.own_netns or self.proc is None or self.proc.poll() is not None:
            return argv
        return ["nsenter", f"--net=/proc/{self.proc.pid}/ns/net", "--", *argv]

    def run_argv(self, argv: list[str]) -> list[str]:
        """`argv` (the agent's `run`) to start in a network namespace of its own, with
        `lo` up, when `own_netns`; unshare and sh exec, so the agent keeps the pid that
        `in_netns` enters by."""
        if not self.own_netns:
            return argv
        up = 'ip link set lo up && exec "$@"'
        return ["unshare", "--net", "--", "sh", "-c", up, "sh", *argv]

    def start(self) -> None:
        self.proc = subprocess.Popen(
            self.run_argv([*CLI, "run", "--config", str(self.config)]),
            env=self.env,
            cwd=self.base,
            stdout=subprocess.DEVNULL,
            stderr=open(self.base / "agent.err", "a"),
            text=True,
        )

    def status(self) -> dict[str, dict]:
        r = self.cli("status", "--json", "--config", str(self.config), check=False, timeout=30)
        return {n["dn"]: n for n in json.loads(r.stdout)["nodes"]} if r.returncode == 0 else {}

    def wait_ready(self, timeout: float = 90) -> dict[str, dict]:
        """Until containerd is HEALTHY and the initial preseed is done (HEALTHY, or DONE
        without the watch)."""
        want = {"root.containerd": ("HEALTHY",), "root.containerd.preseed": ("HEALTHY", "DONE")}
        deadline = time.monotonic() + timeout
        nodes: dict[str, dict] = {}
        while time.monotonic() < deadline:
            assert self.proc is not None and self.proc.poll() is None, self.stderr()
            nodes = self.status()
            if all(nodes.get(dn, {}).get("state") in s for dn, s in want.items()):
                return nodes
            time.sleep(0.1)
        raise AssertionError(f"agent not ready in {timeout}s: {nodes}\n{self.stderr()}")

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

    def stop(self, timeout: float = 60) -> int:
        """SIGTERM the agent; its exit code."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def stderr(self) -> str:
        p = self.base / "agent.err"
        return p.read_text(errors="replace")[-4000:] if p.exists() else ""

    def remove_all_pods(self) -> None:
        try:
            for sandbox in self.client.sandbox_ids():
                from actors.containerd.api.cri import PodRun

                PodRun(
                    client=self.client, handler="", log_dir=self.base, sandbox_id=sandbox
                ).remove()
        except CriError:
            pass

    def cleanup(self) -> None:
        """Pods removed, the agent stopped, leftovers killed and unmounted."""
        if self.proc is not None and self.proc.poll() is None:
            self.remove_all_pods()
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.client.close()
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


def new_agent(
    pod_images: dict[str, Path],
    extra_config: str = "",
    runsc_flags: tuple[str, ...] = (),
    own_netns: bool = False,
) -> PodAgent:
    """A started agent with both images preseeded, ready; `runsc_flags` are `[runsc] flags`.

    `own_netns`: in a network namespace of its own (see `PodAgent`); needed by every
    test that runs a pod with its own network.
    """
    agent = PodAgent(
        Path(tempfile.mkdtemp(prefix="nc-pod-", dir="/tmp")),
        extra_config=extra_config,
        runsc_flags=runsc_flags,
        own_netns=own_netns,
    )
    agent.preseed(pod_images["pause"], pod_images["busybox"])
    agent.start()
    try:
        agent.wait_ready()
    except BaseException:
        agent.cleanup()
        raise
    return agent
