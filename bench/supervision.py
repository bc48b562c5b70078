#!/usr/bin/env python3
"""Supervision benchmark: death detection, restart latency, memory.

Side by side with the raw mechanisms on this machine:
  * detect: SIGKILL of a child runnable -> the core has its exit (state DEAD),
    next to SIGKILL of a bare `sleep` -> waitpid returns in the killing process;
  * restart: SIGKILL -> the node HEALTHY again with backoff 0, next to the
    start of a bare `python -c 'import pykka, msgpack'`;
  * RSS of the root process and of one idle runnable process;
  * the real agent (`node-containerd run`, default profile, a fresh state directory):
    start -> `root.containerd` HEALTHY (seen by polling `status`, and by the agent's own
    clock: the `since` of its HEALTHY, "healthy_since_ms"), and again on the same state
    directory once it stopped ("..._warm_ms": a restart or a reboot, with what `run`
    kept of its last start), next to containerd's own spawn -> answering (its socket
    accepts and `Version` answers), medians of 3 and 5,
    and memory that counts sharing: the PSS (`/proc/<pid>/smaps_rollup`) of the root,
    of each runnable's process, of the zygote and of containerd, the agent's summed.

Every figure of ours is measured with both spawn modes (`[supervisor] spawn`):
"exec" (each runnable a fresh interpreter) and "zygote" (forked from one preloaded
process); the last line has them under "exec" and "zygote", and the default
mode's also at the top level.

Usage: bench/supervision [--rounds N] [--no-agent]. The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import cast

import grpc

from actors.agent.control.client import status_json
from actors.agent.control.wire import channel_target
from actors.agent.preload import RUNNABLE_MODULES
from actors.config.schema import SupervisorSection
from actors.containerd.api.client import ContainerdClient
from actors.supervisor.core.events import RunnableSpec
from actors.supervisor.core.policy import PolicyRule, PolicySet
from actors.supervisor.process.protocol import ZYGOTE_MODULE
from actors.supervisor.runtime.actor import Supervisor
from actors.supervisor.runtime.switching import use_fast_switching
from actors.supervisor.runtime.zygote import Zygote
from actors.supervisor.testing.harness import KIT
from actors.supervisor.testing.kit import Probe, StateRecorder
from messages.control import control_pb2 as pb
from messages.control import control_pb2_grpc as pb_grpc
from tests.support.agent import AgentUnderTest
from tests.support.containerd_daemon import ContainerdDaemon
from tests.support.processes import child_named, cmdline
from tests.support.project import REPO, python_env

#: The default profile's spawn mode: its figures are also the last line's top level.
DEFAULT_SPAWN = SupervisorSection().spawn


def rss_mb(pid: int | str = "self") -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def pss_mb(pid: int) -> float:
    """Proportional set size: each shared page counted once, split among its sharers."""
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            if line.startswith("Pss:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _status(channel: grpc.Channel) -> dict[str, dict[str, object]] | None:
    """`status --json`'s nodes by DN over the control socket, or None while nothing answers."""
    try:
        reply = pb_grpc.ControlStub(channel).Status(pb.StatusRequest(), timeout=5)
    except grpc.RpcError:
        return None
    return {n["dn"]: n for n in status_json(reply)["nodes"]}


#: Reconnect at once: the figure is the agent's start, not grpc's backoff.
_POLL_OPTIONS = [
    ("grpc.initial_reconnect_backoff_ms", 5),
    ("grpc.min_reconnect_backoff_ms", 5),
    ("grpc.max_reconnect_backoff_ms", 20),
]


def _start(agent: AgentUnderTest, channel: grpc.Channel) -> tuple[float, float]:
    """Starts the agent; (start -> root.containerd HEALTHY seen, and by its own clock), ms."""
    t0, wall0 = time.monotonic(), time.time()
    agent.start()
    while True:
        nodes = _status(channel)
        if nodes and nodes.get("root.containerd", {}).get("state") == "HEALTHY":
            break
        if time.monotonic() - t0 > 60:
            raise TimeoutError(f"root.containerd not HEALTHY in 60 s: {nodes}")
        time.sleep(0.002)
    start_ms = (time.monotonic() - t0) * 1000
    # When the node entered HEALTHY by the agent's own clock (`since`): the figure
    # without the control socket's own start and this poll's period.
    return start_ms, (float(nodes["root.containerd"]["since"]) - wall0) * 1000


def agent_figures(spawn: str) -> dict[str, object]:
    """Start -> root.containerd HEALTHY on a fresh state directory and again on the same
    one (a restart, a reboot: what `run` kept of the last start is there), and PSS."""
    base = Path(tempfile.mkdtemp(prefix="nc-bsup-", dir="/tmp"))
    config = base / "agent.toml"
    config.write_text(f'[supervisor]\nspawn = "{spawn}"\n')
    agent = AgentUnderTest(base, config=config)
    agent.env = python_env(agent.env)
    # The control socket appears while containerd starts: a channel that tried before
    # would wait out grpc's reconnect backoff (1 s by default) and see HEALTHY late.
    channel = grpc.insecure_channel(
        channel_target(str(agent.state / "control.sock")), options=_POLL_OPTIONS
    )
    try:
        start_ms, since_ms = _start(agent, channel)
        nodes = agent.wait_ready()
        time.sleep(2.0)  # let the preseed's first pass and the first heartbeats settle
        pss = {"root (agent)": pss_mb(agent.pid)}
        for dn, node in sorted(nodes.items()):
            if node["pid"] is not None:
                pss[dn] = pss_mb(int(node["pid"]))
        node_pids = {int(n["pid"]) for n in nodes.values() if n["pid"] is not None}
        for pid in zygotes_of(agent.pid, node_pids):
            pss[f"zygote (pid {pid})"] = pss_mb(pid)
        containerd = child_named(int(nodes["root.containerd"]["pid"]), "containerd")
        assert containerd is not None
        pss_containerd = pss_mb(containerd)
        agent.terminate()
        warm_ms, warm_since_ms = _start(agent, channel)
    finally:
        channel.close()
        agent.terminate()
        agent.cleanup()
        shutil.rmtree(base, ignore_errors=True)
    return {
        "start_to_healthy_ms": round(start_ms, 1),
        "healthy_since_ms": round(since_ms, 1),
        "start_to_healthy_warm_ms": round(warm_ms, 1),
        "healthy_since_warm_ms": round(warm_since_ms, 1),
        "pss_mb": {k: round(v, 1) for k, v in pss.items()},
        "pss_agent_mb": round(sum(pss.values()), 1),
        "pss_containerd_mb": round(pss_containerd, 1),
    }


def zygotes_of(root: int, nodes: set[int]) -> list[int]:
    """The zygote among `root`'s children (none when it spawns with exec).

    A forked host has the zygote's command line too: the nodes' pids are left out.
    """
    found = []
    for task in os.listdir(f"/proc/{root}/task"):
        try:
            with open(f"/proc/{root}/task/{task}/children") as f:
                children = [int(p) for p in f.read().split()]
        except OSError:
            continue
        for pid in children:
            if pid not in nodes and ZYGOTE_MODULE in cmdline(pid):
                found.append(pid)
    return found


def containerd_alone_ms(rounds: int) -> list[float]:
    """containerd's own spawn -> its socket accepts and `Version` answers."""
    out = []
    for _ in range(rounds):
        base = Path(tempfile.mkdtemp(prefix="nc-bctd-", dir="/tmp"))
        daemon = ContainerdDaemon(base)
        daemon.write_config()
        t0 = time.monotonic()
        daemon.proc = subprocess.Popen(
            ["containerd", "--config", str(daemon.config)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            with ContainerdClient(daemon.address, timeout=2) as client:
                while True:
                    try:
                        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                            s.connect(daemon.address)
                        client.version()
                        break
                    except Exception:  # noqa: BLE001 - not up yet
                        if time.monotonic() - t0 > 30:
                            raise
                        time.sleep(0.002)
            out.append((time.monotonic() - t0) * 1000)
        finally:
            daemon.stop()
            shutil.rmtree(base, ignore_errors=True)
    return out


def raw_waitpid_ms(rounds: int) -> list[float]:
    out = []
    for _ in range(rounds):
        p = subprocess.Popen(["sleep", "60"])
        time.sleep(0.01)
        t0 = time.monotonic()
        os.kill(p.pid, signal.SIGKILL)
        os.waitpid(p.pid, 0)
        out.append((time.monotonic() - t0) * 1000)
        p.returncode = -9
    return out


_IDLE_INTERPRETER = (
    "import pykka, msgpack, logging, socket, threading, time\n"
    "threading.Thread(target=time.sleep, args=(100,), daemon=True).start()\n"
    "print('ready', flush=True)\n"
    "time.sleep(100)\n"
)


def raw_interpreter_kill_ms(rounds: int) -> list[float]:
    """SIGKILL of an idle interpreter with our imports and a thread -> waitpid returns."""
    out = []
    for _ in range(rounds):
        p = subprocess.Popen([sys.executable, "-c", _IDLE_INTERPRETER], stdout=subprocess.PIPE)
        assert p.stdout is not None
        p.stdout.readline()
        time.sleep(0.02)
        t0 = time.monotonic()
        os.kill(p.pid, signal.SIGKILL)
        os.waitpid(p.pid, 0)
        out.append((time.monotonic() - t0) * 1000)
        p.returncode = -9
        p.stdout.close()
    return out


def raw_python_start_ms(rounds: int) -> list[float]:
    out = []
    for _ in range(rounds):
        t0 = time.monotonic()
        subprocess.run([sys.executable, "-c", "import pykka, msgpack"], check=True)
        out.append((time.monotonic() - t0) * 1000)
    return out


def ours(rounds: int, spawn: str) -> tuple[list[float], list[float], float, float]:
    """SIGKILL -> DEAD and -> HEALTHY again of one kit node, hosts started the `spawn` way."""
    d = tempfile.mkdtemp(prefix="nc-bench-", dir="/tmp")
    zygote = None
    if spawn == "zygote":
        zygote = Zygote([KIT.rstrip(":")])
        zygote.start()
    probe = Probe(d)
    rec = StateRecorder()
    root = RunnableSpec(
        target=KIT + "group",
        args={
            "events": probe.events_path,
            "children": {"one": [KIT + "becomes_healthy", {"events": probe.events_path}]},
        },
    )
    policies = PolicySet(rules=[PolicyRule("*", {"backoff_initial": 0.0, "backoff_jitter": 0.0})])
    sup = Supervisor(root, policies=policies, observers=[rec], zygote=zygote)
    sup.start()
    detect, restart = [], []
    try:
        rec.wait_for("root.one", "HEALTHY", timeout=30)
        time.sleep(0.3)
        child_pid = {n.dn: n.pid for n in sup.snapshot()}["root.one"]
        assert child_pid is not None
        child_rss = rss_mb(child_pid)
        for i in range(1, rounds + 1):
            _, pid = probe.wait_for("root.one", "started", count=i, timeout=30)
            time.sleep(0.05)
            t0 = time.monotonic()
            os.kill(pid, signal.SIGKILL)
            dead = rec.wait_for("root.one", "DEAD", count=i, timeout=30)
            healthy = rec.wait_for("root.one", "HEALTHY", count=i + 1, timeout=30)
            detect.append((dead - t0) * 1000)
            restart.append((healthy - t0) * 1000)
        root_rss = rss_mb()
    finally:
        sup.stop(timeout=30)
        if zygote is not None:
            zygote.close()
        probe.close()
        shutil.rmtree(d, ignore_errors=True)
    return detect, restart, root_rss, child_rss


MODES = ("exec", "zygote")
#: The start figures, each the median of an agent's three runs.
STARTS = (
    "start_to_healthy_ms",
    "healthy_since_ms",
    "start_to_healthy_warm_ms",
    "healthy_since_warm_ms",
)


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--rounds", type=int, default=30)
    ap.add_argument("--no-agent", action="store_true", help="skip the real agent's figures")
    args = ap.parse_args()
    agents: dict[str, dict[str, object]] = {}
    alone: list[float] = []
    # The agent and the runnables start with their bytecode cached, as an installed
    # agent's is (pip compiles it), not compiled from source at every start.
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    os.environ["PYTHONPYCACHEPREFIX"] = tempfile.mkdtemp(prefix="nc-pyc-", dir="/tmp")
    subprocess.run(
        [sys.executable, "-m", "compileall", "-q", str(REPO / "actors"), str(REPO / "messages")],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    # ...and the libraries': importing what the agent runs caches them too.
    loads = (
        "actors.agent.cli",
        "actors.agent.daemon",
        *(m.partition("@")[0] for m in RUNNABLE_MODULES),
    )
    subprocess.run(
        [sys.executable, "-c", f"import {', '.join(loads)}"], check=True, env=python_env()
    )
    if not args.no_agent:  # first, before this process has threads and children of its own
        for spawn in MODES:
            runs = [agent_figures(spawn) for _ in range(3)]
            agents[spawn] = runs[-1]
            for key in STARTS:
                values = [float(str(run[key])) for run in runs]
                agents[spawn][key] = round(statistics.median(values), 1)
        alone = containerd_alone_ms(5)
    use_fast_switching()  # as the agent's `run` does
    measured = {spawn: ours(args.rounds, spawn) for spawn in MODES}
    raw_wait = raw_waitpid_ms(args.rounds)
    raw_interp = raw_interpreter_kill_ms(args.rounds)
    raw_start = raw_python_start_ms(min(args.rounds, 15))
    raw_start_ms = statistics.median(raw_start)

    def row(name: str, ours_v: list[float], ref_name: str, ref_v: list[float], target: str) -> None:
        print(
            f"{name:<30} {statistics.median(ours_v):>9.2f} {max(ours_v):>9.2f}   "
            f"{ref_name:<34} {statistics.median(ref_v):>9.2f}   {target}"
        )

    modes: dict[str, dict[str, object]] = {}
    for spawn in MODES:
        detect, restart, root_rss, child_rss = measured[spawn]
        print(f"--- spawn = {spawn!r}")
        print(
            f"{'measure (ms)':<30} {'ours p50':>9} {'ours max':>9}   "
            f"{'reference':<34} {'ref p50':>9}   target"
        )
        row("kill -> detected (DEAD)", detect, "kill sleep -> waitpid returns", raw_wait, "< 2 ms")
        row("", detect, "kill idle python -> waitpid returns", raw_interp, "")
        row(
            "kill -> HEALTHY (backoff 0)",
            restart,
            "python -c 'import pykka, msgpack'",
            raw_start,
            f"<= 0.5 x ref = {raw_start_ms / 2:.0f} ms",
        )
        print(f"{'RSS root process (MB)':<30} {root_rss:>9.1f}")
        print(f"{'RSS idle runnable (MB)':<30} {child_rss:>9.1f}{'':<50}< 30 MB")
        mode: dict[str, object] = {
            "detect_ms_p50": round(statistics.median(detect), 3),
            "detect_ms_max": round(max(detect), 3),
            "restart_ms_p50": round(statistics.median(restart), 3),
            "raw_python_start_ms_p50": round(raw_start_ms, 3),
            "rss_root_mb": round(root_rss, 1),
            "rss_child_mb": round(child_rss, 1),
        }
        agent = agents.get(spawn)
        if agent:
            alone_ms = statistics.median(alone)
            start_ms = float(str(agent["start_to_healthy_ms"]))
            print(
                f"{'start -> containerd HEALTHY':<30} {start_ms:>9.1f} {'':>9}   "
                f"{'containerd spawn -> answering':<34} {alone_ms:>9.1f}   <= ref + 60 ms"
            )
            for label, key in (
                ("  HEALTHY by its own clock", "healthy_since_ms"),
                ("  again, same state (warm)", "start_to_healthy_warm_ms"),
                ("  warm, by its own clock", "healthy_since_warm_ms"),
            ):
                print(f"{label:<30} {float(str(agent[key])):>9.1f}")
            print(f"{'PSS (MB), each process':<30} {'':>9}")
            pss = cast("dict[str, float]", agent["pss_mb"])
            for name, value in pss.items():
                print(f"  {name:<28} {value:>9.1f}")
            print(
                f"{'PSS agent, summed (MB)':<30} {agent['pss_agent_mb']:>9}{'':>13}"
                f"{'PSS containerd (MB)':<34} {agent['pss_containerd_mb']:>9}   "
                "agent <= containerd"
            )
            mode.update({key: agent[key] for key in STARTS})
            mode.update(
                containerd_alone_ms=round(alone_ms, 1),
                pss_agent_mb=agent["pss_agent_mb"],
                pss_containerd_mb=agent["pss_containerd_mb"],
                pss_mb=pss,
            )
        modes[spawn] = mode
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    default = modes[DEFAULT_SPAWN]
    print(
        json.dumps(
            {
                **{k: v for k, v in default.items() if k != "pss_mb"},
                "raw_waitpid_ms_p50": round(statistics.median(raw_wait), 3),
                "raw_interpreter_kill_ms_p50": round(statistics.median(raw_interp), 3),
                "spawn": DEFAULT_SPAWN,
                **modes,
                "rounds": args.rounds,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
