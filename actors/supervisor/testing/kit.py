"""Runnables and a probe for testing the supervision tree with real processes.

Shipped with the library (as Go's supervisor ships its test harness and
remote-controlled runnable) so that tests of the agent, benchmarks and users
writing their own runnables can drive real processes:

* `Probe` (test side) owns a directory with an event socket. Every runnable
  here reports what it does to it (`report`) as a datagram
  `"<dn> <event> <pid>"`; `Probe.wait_for(dn, event)` waits for one, with a
  timeout. `StateRecorder` records the tree's state changes.
* `becomes_healthy`: HEALTHY, reports `started`, waits for cancel, reports
  `done`, returns cancelled.
* `spawns_more(levels)`: a chain: starts a child `sub` that is
  spawns_more(levels-1), then behaves like becomes_healthy (GO_SCENARIOS.md;
  the simulation's `fakes.spawns_more` has the same shape).
* `group(children, done)`: starts `children` as one group, HEALTHY, and DONE if asked.
* `remote_controlled`: obeys commands sent with `Probe.command(dn, cmd)`:
  `healthy`, `done`, `die` (raise), `crash` (SIGKILL itself), `exit_ok`
  (return), `ignore_cancel`, `hang` (stop answering and ignore everything);
  reports `started`, `cancelled` and every command it ran.
* `send_junk`, `write_lines`, `log_levels`, `counts`, `reports_facts`: a bad
  frame, raw lines, every log path, metrics, facts.
* `reports_itself`: reports, as the fact `self`, what its process was given
  (descriptors, signal dispositions and mask, process group, parent, death
  signal, environment, a random number), to compare a forked host with a spawned one.
* TestResilience's nasty ones: `busy_loop`, `done_without_healthy`,
  `keeps_running_more`.

All run as `actors.supervisor.testing.kit:<name>`. Benchmark workloads are not
here: they live in `bench/workloads.py`.
"""

from __future__ import annotations

import os
import signal as _signal
import socket
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from actors.supervisor.process.api import (
    Canceled,
    Context,
    Signal,
    add_metric,
    logger,
    raw_logger,
    report_fact,
    run,
    run_group,
    signal,
    sub_logger,
    vouch,
)

__all__ = [
    "Probe",
    "StateRecorder",
    "becomes_healthy",
    "busy_loop",
    "counts",
    "done_without_healthy",
    "group",
    "keeps_running_more",
    "log_levels",
    "remote_controlled",
    "report",
    "reports_facts",
    "reports_itself",
    "send_junk",
    "spawns_more",
    "vouches_while",
    "write_lines",
]


def report(events: str, ctx: Context, event: str) -> None:
    """Tell the `Probe` listening at `events` that `ctx`'s node did `event`."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        s.sendto(f"{ctx.dn} {event} {os.getpid()}".encode(), events)
    except OSError:
        pass
    finally:
        s.close()


def becomes_healthy(ctx: Context, *, events: str) -> None:
    """HEALTHY, report `started`, wait for cancellation, report `done`."""
    signal(ctx, Signal.HEALTHY)
    report(events, ctx, "started")
    ctx.wait()
    report(events, ctx, "done")
    raise Canceled(ctx.cancel_reason or "canceled")


def vouches_while(ctx: Context, *, events: str, path: str) -> None:
    """Like `becomes_healthy`, but its heartbeats vouch that the file `path` exists."""
    vouch(ctx, lambda: os.path.exists(path))
    becomes_healthy(ctx, events=events)


def spawns_more(ctx: Context, *, events: str, levels: int) -> None:
    """Start a chain of `levels` more nodes below, then act as becomes_healthy."""
    if levels > 0:
        run(
            ctx,
            "sub",
            "actors.supervisor.testing.kit:spawns_more",
            events=events,
            levels=levels - 1,
        )
    becomes_healthy(ctx, events=events)


def group(ctx: Context, *, events: str, children: Mapping[str, Any], done: bool = True) -> None:
    """Start `children` ({name: [target, args]}) as one group, then HEALTHY (and DONE)."""
    run_group(ctx, {name: (spec[0], dict(spec[1])) for name, spec in children.items()})
    signal(ctx, Signal.HEALTHY)
    report(events, ctx, "started")
    if done:
        signal(ctx, Signal.DONE)
        return
    ctx.wait()
    raise Canceled(ctx.cancel_reason or "canceled")


def remote_controlled(
    ctx: Context, *, events: str, control_dir: str, children: Mapping[str, Any] | None = None
) -> None:
    """Obey commands from `Probe.command` on a datagram socket named after the DN.

    `children` ({name: [target, args]}) are started as one group first.
    """
    if children:
        run_group(ctx, {name: (spec[0], dict(spec[1])) for name, spec in children.items()})
    path = os.path.join(control_dir, f"{ctx.dn}.ctl")
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(0.05)
    ignore_cancel = False
    cancel_seen = False
    report(events, ctx, "started")
    try:
        while True:
            if ctx.cancelled.is_set() and not cancel_seen:
                cancel_seen = True
                report(events, ctx, "cancelled")
                if not ignore_cancel:
                    raise Canceled(ctx.cancel_reason or "canceled")
            try:
                cmd = sock.recv(256).decode()
            except TimeoutError:
                continue
            report(events, ctx, f"cmd:{cmd}")
            if cmd == "healthy":
                signal(ctx, Signal.HEALTHY)
            elif cmd == "done":
                signal(ctx, Signal.DONE)
            elif cmd == "die":
                raise RuntimeError("died on command")
            elif cmd == "crash":
                os.kill(os.getpid(), _signal.SIGKILL)
            elif cmd == "exit_ok":
                return
            elif cmd == "ignore_cancel":
                ignore_cancel = True
            elif cmd == "hang":
                while True:
                    time.sleep(3600)
    finally:
        sock.close()


def send_junk(ctx: Context, *, events: str, payload: bytes) -> None:
    """HEALTHY, then write `payload` straight onto the link socket (bypassing framing)."""
    signal(ctx, Signal.HEALTHY)
    report(events, ctx, "started")
    link_sock = socket.socket(fileno=os.dup(3))
    link_sock.sendall(payload)
    report(events, ctx, "sent")
    ctx.wait()
    raise Canceled("canceled")


def write_lines(
    ctx: Context, *, events: str, count: int, start: int = 0, chunk: int = 0, then: str = "wait"
) -> None:
    """Write numbered raw lines `start..start+count-1`; then wait, return DONE, or die.

    `chunk` > 0 writes that many lines per write call (else one line per write).
    """
    raw = raw_logger(ctx)
    signal(ctx, Signal.HEALTHY)
    report(events, ctx, "started")
    per = max(1, chunk)
    for base in range(start, start + count, per):
        stop = min(base + per, start + count)
        raw.write(b"".join(b"line %08d\n" % i for i in range(base, stop)))
    report(events, ctx, "written")
    if then == "done":
        raw.flush()
        signal(ctx, Signal.DONE)
        return
    if then == "crash":
        os.kill(os.getpid(), _signal.SIGKILL)
    ctx.wait()
    raise Canceled("canceled")


def log_levels(ctx: Context, *, events: str) -> None:
    """Log through every path: logger(ctx), stdlib logging, a sub-logger, print."""
    import logging as _logging

    logger(ctx).info("hello from %s", ctx.dn)
    _logging.getLogger("some.library").warning("library warning")
    sub = sub_logger(ctx, "dut")
    sub.info("hello from dut")
    try:
        raise ValueError("boom")
    except ValueError:
        logger(ctx).exception("with a traceback")
    print("printed to stdout", flush=True)
    signal(ctx, Signal.HEALTHY)
    report(events, ctx, "started")
    signal(ctx, Signal.DONE)


def counts(ctx: Context, *, events: str, metrics: Mapping[str, float]) -> None:
    """Add each of `metrics` ({name: value}) with a label, then HEALTHY and DONE."""
    for name, value in metrics.items():
        add_metric(ctx, name, value, {"from": ctx.dn})
    signal(ctx, Signal.HEALTHY)
    report(events, ctx, "started")
    signal(ctx, Signal.DONE)


def reports_facts(ctx: Context, *, events: str, facts: Mapping[str, Any]) -> None:
    """Report each of `facts` ({name: value}) in order, HEALTHY, then wait for cancellation."""
    for key, value in facts.items():
        report_fact(ctx, key, value)
    becomes_healthy(ctx, events=events)


def reports_itself(ctx: Context, *, events: str) -> None:
    """Report the fact `self` (what this process was given), then act as becomes_healthy."""
    import ctypes  # here: the kit's other runnables start as they always did
    import gc
    import hashlib
    import random

    death = ctypes.c_int(0)
    ctypes.CDLL(None, use_errno=True).prctl(2, ctypes.byref(death), 0, 0, 0)  # PR_GET_PDEATHSIG
    with open("/proc/self/status") as f:
        sigs = {k: v.strip() for k, _, v in (line.partition(":") for line in f)}
    env = "\n".join(f"{k}={v}" for k, v in sorted(os.environ.items()))
    fds = os.listdir("/proc/self/fd")  # the listing's own descriptor is among them
    report_fact(
        ctx,
        "self",
        {
            "pid": os.getpid(),
            "fds": sorted(int(fd) for fd in fds),
            "stdin": os.readlink("/proc/self/fd/0"),
            "signals": {k: sigs[k] for k in ("SigBlk", "SigIgn", "SigCgt")},
            "pgid": os.getpgid(0),
            "ppid": os.getppid(),
            "pdeathsig": death.value,
            "env": hashlib.sha256(env.encode()).hexdigest(),
            "random": random.getrandbits(48),
            "frozen": gc.get_freeze_count(),
        },
    )
    becomes_healthy(ctx, events=events)


def busy_loop(ctx: Context, *, events: str) -> None:
    """HEALTHY, then spin on the CPU for ever, ignoring cancellation."""
    signal(ctx, Signal.HEALTHY)
    report(events, ctx, "started")
    while True:
        pass


def done_without_healthy(ctx: Context, *, events: str) -> None:
    """Signal DONE straight from NEW (illegal), then wait."""
    report(events, ctx, "started")
    signal(ctx, Signal.DONE)
    ctx.wait()
    raise Canceled("canceled")


def keeps_running_more(ctx: Context, *, events: str) -> None:
    """HEALTHY, then try to start a child every 100 ms (refused once not NEW)."""
    from actors.supervisor.core.errors import SupervisionError

    signal(ctx, Signal.HEALTHY)
    report(events, ctx, "started")
    n = 0
    while not ctx.wait(0.1):
        n += 1
        try:
            run(ctx, f"late{n}", "actors.supervisor.testing.kit:becomes_healthy", events=events)
        except SupervisionError:
            report(events, ctx, "refused")
    raise Canceled("canceled")


class Probe:
    """The test's end: collects events from runnables and sends them commands."""

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.events_path = str(self.dir / "events.sock")
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._sock.bind(self.events_path)
        self._cond = threading.Condition()
        self.events: list[tuple[float, str, str, int]] = []
        self._closed = False
        self._thread = threading.Thread(target=self._loop, name="nc-probe", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while True:
            try:
                data = self._sock.recv(4096)
            except OSError:
                return
            dn, event, pid = data.decode().split(" ", 2)
            with self._cond:
                self.events.append((time.monotonic(), dn, event, int(pid)))
                self._cond.notify_all()

    def count(self, dn: str, event: str) -> int:
        """How many times `dn` reported `event` so far."""
        with self._cond:
            return sum(1 for _, d, e, _ in self.events if d == dn and e == event)

    def wait_for(
        self, dn: str, event: str, *, count: int = 1, timeout: float = 10.0
    ) -> tuple[float, int]:
        """Wait until `dn` reported `event` `count` times; return (time, pid) of that one."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                hits = [(t, p) for t, d, e, p in self.events if d == dn and e == event]
                if len(hits) >= count:
                    return hits[count - 1]
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(
                        f"{dn} did not report {event!r} {count} time(s) within {timeout}s; "
                        f"events: {[(d, e) for _, d, e, _ in self.events][-20:]}"
                    )
                self._cond.wait(left)

    def command(self, dn: str, cmd: str, timeout: float = 10.0) -> None:
        """Send `cmd` to the remote-controlled runnable at `dn` (waits for its socket)."""
        path = str(self.dir / f"{dn}.ctl")
        deadline = time.monotonic() + timeout
        s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            while True:
                try:
                    s.sendto(cmd.encode(), path)
                    return
                except (FileNotFoundError, ConnectionRefusedError) as e:
                    if time.monotonic() > deadline:
                        raise TimeoutError(f"no control socket for {dn} within {timeout}s") from e
                    time.sleep(0.005)
        finally:
            s.close()

    def close(self) -> None:
        """Stop listening."""
        self._sock.close()


class StateRecorder:
    """A Supervisor observer that records every state change and lets tests wait."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        #: (monotonic time, dn, old state name or None, new state name)
        self.changes: list[tuple[float, str, str | None, str]] = []

    def __call__(self, change: Any, now: float) -> None:
        with self._cond:
            old = change.old.short if change.old is not None else None
            self.changes.append((now, change.dn, old, change.new.short))
            self._cond.notify_all()

    def count(self, dn: str, state: str) -> int:
        """How many times `dn` entered `state` so far."""
        with self._cond:
            return sum(1 for _, d, _, n in self.changes if d == dn and n == state)

    def wait_for(self, dn: str, state: str, *, count: int = 1, timeout: float = 10.0) -> float:
        """Wait until `dn` entered `state` `count` times; return when it did the last time."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                hits = [t for t, d, _, n in self.changes if d == dn and n == state]
                if len(hits) >= count:
                    return hits[count - 1]
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(
                        f"{dn} did not become {state} {count} time(s) within {timeout}s; "
                        f"changes: {[(d, n) for _, d, _, n in self.changes][-20:]}"
                    )
                self._cond.wait(left)
