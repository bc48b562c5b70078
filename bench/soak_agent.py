"""The agent under soak: its config, its status over the control socket, its processes.

The agent itself runs in the test kit's `AgentUnderTest` (`bin/node-containerd run
--config FILE`, its own session, stderr to a file). `ControlStatus` reads the tree's
status through the control socket (the same Status call and the same JSON document as
`status --json`, without paying a Python start-up per poll) and waits until it settles.

`ProcessTable` remembers every process of the agent it has ever seen (pid and kernel
start time, so a recycled pid is never mistaken for ours) and, after the agent is gone,
finds whatever is left: a remembered process still alive, or any process whose command
line names the agent's pid as `--parent` or lies under the soak's state directory
(containerd's `--config` does).

Nothing here decides what a fault is or whether the soak passed: see `soaklib`.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc

from actors.agent.control.client import status_json
from messages.control import control_pb2 as pb
from messages.control import control_pb2_grpc as pb_grpc
from tests.support.agent import AgentUnderTest
from tests.support.processes import all_pids, child_named, cmdline, proc_stat

__all__ = [
    "ControlStatus",
    "NodeRow",
    "ProcessTable",
    "containerd_pid",
    "rss_mb",
    "write_config",
]

#: States in which a node counts as recovered.
SETTLED = frozenset({"HEALTHY", "DONE"})


def write_config(
    path: Path, *, state_dir: Path, json_log: Path, backoff_max_s: float, log_keep: int
) -> str:
    """Writes the soak's config on top of the default profile; returns its text.

    The soak changes only what it must: a short state directory (unix socket paths),
    the JSON log sink it counts lines in, stderr off (the sink has everything), a log
    tree that keeps `log_keep` entries per DN (full early: see `SoakSettings.log_keep`), a fast
    backoff so that 200 faults fit in minutes, and no restart intensity limit on
    root.containerd (the default gives up after 10 deaths in 10 minutes — rightly, on
    a real node — and the soak kills it far more often than that on purpose).
    Heartbeats (1 s), grace periods and root.containerd's 10 s min_healthy_uptime
    stay as in the default profile.
    """
    text = (
        f'state_dir = "{state_dir}"\n'
        "[log]\n"
        "stderr = false\n"
        f'json_file = "{json_log}"\n'
        f"keep = {log_keep}\n"
        '[policy."*"]\n'
        'backoff_initial = "100ms"\n'
        f'backoff_max = "{int(backoff_max_s * 1000)}ms"\n'
        '[policy."root.containerd"]\n'
        'max_restarts = "off"\n'
    )
    path.write_text(text)
    return text


@dataclass(frozen=True, slots=True)
class NodeRow:
    """One node of `status --json`."""

    dn: str
    state: str
    pid: int | None
    restarts: int
    last_error: str | None

    @classmethod
    def of(cls, doc: Mapping[str, Any]) -> NodeRow:
        return cls(doc["dn"], doc["state"], doc["pid"], doc["restarts"], doc["last_error"])


def rss_mb(pid: int) -> float:
    """Resident set size of `pid` in MiB (VmRSS)."""
    with open(f"/proc/{pid}/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise ProcessLookupError(pid)


def containerd_pid(node_pid: int) -> int | None:
    """The containerd binary that the root.containerd process `node_pid` runs, if any."""
    return child_named(node_pid, "containerd")


class ProcessTable:
    """Every process of one agent the soak has seen, and what is left of them."""

    def __init__(self, state_dir: Path) -> None:
        self._state_dir = str(state_dir)
        self._seen: dict[tuple[int, int], str] = {}

    def remember(self, pid: int, what: str) -> None:
        st = proc_stat(pid)
        if st is not None:
            self._seen.setdefault((pid, st[2]), what)

    @property
    def seen(self) -> int:
        return len(self._seen)

    def leftovers(self, agent_pid: int) -> list[str]:
        """Processes of ours still alive: `pid what: cmdline` each."""
        found: dict[int, str] = {}
        for (pid, start), what in self._seen.items():
            st = proc_stat(pid)
            if st is not None and st[2] == start:
                found[pid] = what
        parent_flag = f"--parent {agent_pid} "
        for pid in all_pids():
            if pid == os.getpid():
                continue
            cmd = cmdline(pid)
            if parent_flag in cmd + " " or (self._state_dir in cmd and "ctr " not in cmd):
                found.setdefault(pid, "matched by command line")
        return [f"{pid} {what}: {cmdline(pid).strip()}" for pid, what in sorted(found.items())]


class ControlStatus:
    """The tree's status over the agent's control socket, as `status --json` lists it."""

    def __init__(self, control_socket: Path, agent: AgentUnderTest) -> None:
        self.control_socket = control_socket
        self.agent = agent
        self._channel: grpc.Channel | None = None
        self._stub: pb_grpc.ControlStub | None = None

    def status(self, timeout: float = 5.0) -> list[NodeRow] | None:
        """Every node, as `status --json` lists it; None while the socket is not up."""
        if not self.control_socket.exists():
            return None
        if self._stub is None:
            self._channel = grpc.insecure_channel(f"unix:{self.control_socket}")
            self._stub = pb_grpc.ControlStub(self._channel)
        try:
            reply = self._stub.Status(pb.StatusRequest(), timeout=timeout)
        except grpc.RpcError:
            return None
        return [NodeRow.of(n) for n in status_json(reply)["nodes"]]

    def wait_settled(
        self,
        timeout: float,
        accept: Callable[[list[NodeRow]], bool] | None = None,
        poll: float = 0.02,
    ) -> tuple[list[NodeRow] | None, float]:
        """Polls status until every node is HEALTHY or DONE and `accept(rows)` holds.

        Returns:
            The rows and the monotonic time they were seen, or (None, now) on timeout
            or when the agent exited.
        """
        deadline = time.monotonic() + timeout
        while True:
            rows = self.status()
            now = time.monotonic()
            if rows and all(r.state in SETTLED for r in rows) and (accept is None or accept(rows)):
                return rows, now
            if now >= deadline or self.agent.exited() is not None:
                return None, now
            time.sleep(poll)

    def close(self) -> None:
        """Closes the channel (the agent is about to go)."""
        if self._channel is not None:
            self._channel.close()
            self._channel = self._stub = None
