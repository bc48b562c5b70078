"""The control socket's test doubles: a backend, CLI arguments, foreign sockets, a CLI process.

`Backend` stands in for the supervisor behind a real `ControlServer` (a real log tree,
a fixed node list, recorded restarts); `node` builds a `NodeStatus` of it. `*_args` are
the parsed arguments of the CLI's commands. `AcceptAndClose` and `foreign_grpc_server`
are sockets that are not ours. `CliProcess` runs `node-containerd ARGS` (never `run`:
the agent under test is `tests.support.agent.AgentUnderTest`) and keeps its output lines.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Sequence
from concurrent import futures
from typing import Any

import grpc

from actors.logtree import LeveledEntry, LogTree, Severity
from actors.supervisor.core.errors import UnknownNode
from actors.supervisor.core.states import NodeState
from actors.supervisor.core.tree import NodeStatus
from tests.support.project import REPO, python_env, python_module


def node(
    dn: str,
    state: str = "HEALTHY",
    *,
    pid: int | None = 4242,
    restarts: int = 0,
    last_error: str | None = None,
    since: float = 0.0,
    restart_at: float | None = None,
) -> NodeStatus:
    """A NodeStatus as the supervision tree reports it (``since`` monotonic)."""
    return NodeStatus(
        dn=dn,
        state=NodeState[state],
        generation=1,
        pid=pid,
        restarts=restarts,
        last_error=last_error,
        since=since,
        restart_at=restart_at,
    )


class Backend:
    """A supervisor stand-in: a real log tree, a fixed node list, recorded restarts."""

    def __init__(self, nodes: Sequence[NodeStatus] = ()) -> None:
        self.log_tree = LogTree()
        self.nodes = list(nodes)
        self.restarted: list[str] = []

    def snapshot(self) -> list[NodeStatus]:
        return list(self.nodes)

    def restart(self, dn: str) -> None:
        if dn not in {n.dn for n in self.nodes}:
            raise UnknownNode(f"no node {dn!r}")
        self.restarted.append(dn)

    def log(
        self,
        dn: str,
        message: str,
        severity: Severity = Severity.INFO,
        timestamp: float = 1_700_000_000.0,
    ) -> None:
        self.log_tree.write_leveled(
            LeveledEntry.from_message(
                dn, severity, message, timestamp=timestamp, file="test.py", line=7
            )
        )


def status_args(socket_path: str | None, **kw: Any) -> argparse.Namespace:
    return argparse.Namespace(**{"json": False, "socket": socket_path, "config": None, **kw})


def logs_args(socket_path: str | None, dn: str | None = "root", **kw: Any) -> argparse.Namespace:
    values = {
        "dn": dn,
        "follow": False,
        "children": False,
        "lines": None,
        "severity": None,
        "since": None,
        "json": False,
        "raw_only": False,
        "leveled_only": False,
        "socket": socket_path,
        "config": None,
    }
    values.update(kw)
    return argparse.Namespace(**values)


def restart_args(socket_path: str | None, dn: str, **kw: Any) -> argparse.Namespace:
    return argparse.Namespace(**{"dn": dn, "socket": socket_path, "config": None, **kw})


class AcceptAndClose:
    """A plain unix stream server that accepts every connection and closes it at once."""

    def __init__(self, path: str) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(path)
        self.sock.listen(16)
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            conn.close()

    def close(self) -> None:
        self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
        self._thread.join(timeout=5)


def foreign_grpc_server(path: str) -> grpc.Server:
    """A gRPC server on ``path`` that serves nothing of ours (every call UNIMPLEMENTED)."""
    server = grpc.server(futures.ThreadPoolExecutor(2))
    server.add_insecure_port("unix:" + path)
    server.start()
    return server


class CliProcess:
    """``node-containerd ARGS`` in a child process; every line of its output is kept."""

    def __init__(
        self,
        args: Sequence[str],
        *,
        stdout: Any = subprocess.PIPE,
        env: dict[str, str] | None = None,
    ) -> None:
        self.proc = subprocess.Popen(
            python_module("actors.agent.cli", *args),
            cwd=REPO,
            env=python_env(env),
            stdout=stdout,
            stderr=subprocess.PIPE,
            text=True,
        )
        self._cond = threading.Condition()
        #: Lines so far (without newline) and whether the stream ended, per stream.
        self.lines: dict[str, list[str]] = {"out": [], "err": []}
        self.ended: dict[str, bool] = {"out": stdout is not subprocess.PIPE, "err": False}
        self._pumps = []
        for name, stream in (("out", self.proc.stdout), ("err", self.proc.stderr)):
            if stream is not None:
                pump = threading.Thread(target=self._pump, args=(name, stream), daemon=True)
                pump.start()
                self._pumps.append(pump)

    def _pump(self, name: str, stream: Any) -> None:
        for line in stream:
            with self._cond:
                self.lines[name].append(line.rstrip("\n"))
                self._cond.notify_all()
        with self._cond:
            self.ended[name] = True
            self._cond.notify_all()

    def wait_line(self, name: str, contains: str, timeout: float = 10.0) -> str:
        """Waits until stream ``name`` ("out" or "err") printed a line containing ``contains``."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for line in self.lines[name]:
                    if contains in line:
                        return line
                left = deadline - time.monotonic()
                if self.ended[name] or left <= 0:
                    raise TimeoutError(
                        f"no line with {contains!r} on std{name} within {timeout}s; "
                        f"saw {self.lines[name][-20:]}"
                    )
                self._cond.wait(left)

    def interrupt(self, timeout: float = 10.0) -> int:
        """Sends SIGINT (Ctrl-C), waits for the exit and the end of its output."""
        self.proc.send_signal(signal.SIGINT)
        code = self.proc.wait(timeout=timeout)
        for pump in self._pumps:
            pump.join(timeout=timeout)
        return code

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)


def on_a_terminal(args: list[str], no_color: str | None) -> str:
    """What ``node-containerd ARGS`` writes to a terminal (a pty as its stdout), with
    ``NO_COLOR`` set to ``no_color`` (None: unset); it must exit 0."""
    env = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}
    if no_color is not None:
        env["NO_COLOR"] = no_color
    master, slave = os.openpty()
    cli = CliProcess(args, stdout=slave, env=env)
    os.close(slave)
    chunks = []
    try:
        while True:
            try:
                data = os.read(master, 4096)
            except OSError:  # EIO: the child closed the terminal
                break
            if not data:
                break
            chunks.append(data)
        assert cli.proc.wait(timeout=20) == 0
    finally:
        os.close(master)
        cli.kill()
    return b"".join(chunks).decode()
