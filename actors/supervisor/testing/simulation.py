"""A simulation harness for the supervision core: a fake clock and fake processes.

Shipped with the library, as Go's supervisor ships its test harness and its
remote-controlled runnable, so that the core's tests, and later anyone's, can
drive a `Tree` exactly as the real shell would, without processes or sleeps.

Theory of operation
-------------------

`Simulation` plays the shell. It feeds the tree events at its fake `now` and
carries out the returned actions:

* `StartNode` creates a `FakeProcess` (fake pid), feeds `ProcessSpawned` at
  once, then lets the process's `Behaviour` act (`on_start`).
* `CancelNode` tells the behaviour (`on_cancel`; by default the process
  returns CANCELED, unless it ignores cancels). `KillNode` ends the process
  at once as a crash. Either for a process already gone is a no-op.
* `SetTimer`/`CancelTimer` keep a timer table; replies go back to the
  process that asked; logs, state changes, `TreeFailed` and
  `ShutdownComplete` are recorded.

Actions are queued and carried out in order, so a fake process calling into
the tree from its hooks never re-enters the tree. A fake process's requests
(`run_group`, `sub_logger`) are answered synchronously, which is what a real
runnable waiting for the reply observes.

Time only moves when asked. `settle()` runs until *quiescent*: no action
pending and no timer or process callback due at `now`. `advance()` jumps the
clock to the next deadline (a core timer, or a fake process's own scheduled
step, e.g. its next heartbeat) and settles; `advance_to`, `advance_by` and
`run_until(predicate)` repeat that. Every live process whose policy has a
`heartbeat_interval` heartbeats on time unless it is hung.

Fake runnables are chosen by `RunnableSpec.target` (`sim:<name>`); the
built-in ones live in `fakes.py` and are re-exported here with the functions
that make their specs (`becomes_healthy()`, `spawns_more(3)`, `remote()`,
...). Pass `behaviours={target: factory}` for your own `Behaviour`s. The
import runs one way: `fakes` knows a process only as its `Process` protocol.
"""

from __future__ import annotations

import heapq
import itertools
import random
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar, assert_never

from actors.supervisor.core.events import (
    Action,
    CancelNode,
    CancelTimer,
    Event,
    ExitKind,
    FactChanged,
    FactReported,
    FactValue,
    HeartbeatReceived,
    KillNode,
    LogNode,
    NodeFaulted,
    ProcessExited,
    ProcessSpawned,
    ReplyRunGroup,
    ReplySubLogger,
    RestartRequested,
    RunGroupRequested,
    RunnableSpec,
    SetTimer,
    ShutdownComplete,
    ShutdownRequested,
    SignalReceived,
    StartNode,
    StateChanged,
    SubLoggerRequested,
    TimerFired,
    TimerKey,
    TimerPurpose,
    TreeFailed,
    TreeStarted,
)
from actors.supervisor.core.node import NodeStatus
from actors.supervisor.core.policy import PolicyRule, PolicySet, RestartPolicy
from actors.supervisor.core.states import NodeState, Signal
from actors.supervisor.core.tree import DEFAULT_POLICIES, Tree
from actors.supervisor.testing.fakes import (
    BUILTIN_BEHAVIOURS,
    Behaviour,
    becomes_healthy,
    busy_loop,
    done_after,
    done_without_healthy,
    remote,
    runs_groups,
    spawns_forever,
    spawns_more,
    spawns_tree,
    stale_signal,
)

__all__ = [
    "BUILTIN_BEHAVIOURS",
    "Behaviour",
    "FakeProcess",
    "Simulation",
    "SimulationError",
    "SimulationTimeout",
    "becomes_healthy",
    "busy_loop",
    "done_after",
    "done_without_healthy",
    "go_policies",
    "remote",
    "runs_groups",
    "spawns_forever",
    "spawns_more",
    "spawns_tree",
    "stale_signal",
    "timer_key",
    "without",
]

A = TypeVar("A")

#: Give up settling after this many steps: something loops without time passing.
MAX_STEPS = 1_000_000


class SimulationError(Exception):
    """The simulation was used wrongly (e.g. commanding a process that exited)."""


class SimulationTimeout(SimulationError):
    """`run_until` reached its time limit before its condition held."""


# ==================================================================== processes


class FakeProcess:
    """One incarnation of a runnable: what a runnable can do, as method calls.

    Every method that talks to the tree requires the process to be alive.
    """

    def __init__(self, sim: Simulation, start: StartNode, pid: int, behaviour: Behaviour) -> None:
        #: The node's DN.
        self.dn = start.dn
        #: The generation this process was started with.
        self.generation = start.generation
        #: The spec it runs.
        self.spec = start.spec
        #: The policy it was started with.
        self.policy = start.policy
        #: Its fake pid.
        self.pid = pid
        #: What it does.
        self.behaviour = behaviour
        #: Fake time of its start and of its exit (None while alive).
        self.started_at = sim.now
        self.exited_at: float | None = None
        #: How it exited, and with which error text.
        self.exit_kind: ExitKind | None = None
        self.exit_error: str | None = None
        #: The reason of the cancel message it got, if any.
        self.cancel_reason: str | None = None
        #: It was SIGKILLed.
        self.killed = False
        #: The state it declared itself (Go's rc state): NEW, HEALTHY or DONE.
        self.declared = NodeState.NEW
        #: It does not return when cancelled.
        self.ignores_cancel = bool(start.spec.args.get("ignores_cancel", False))
        #: It is stopped (SIGSTOP): no heartbeats, ignores cancels.
        self.hung = False
        self._sim = sim
        self._requests = itertools.count(1)

    def __repr__(self) -> str:
        return f"<FakeProcess {self.dn} gen={self.generation} pid={self.pid} alive={self.alive}>"

    @property
    def alive(self) -> bool:
        """Whether the process has not exited yet."""
        return self.exited_at is None

    @property
    def cancelled(self) -> bool:
        """Whether it got a cancel message."""
        return self.cancel_reason is not None

    # ------------------------------------------------------------ the runnable API

    def signal(self, signal: Signal) -> list[Action]:
        """Signal HEALTHY or DONE; returns the tree's actions."""
        self.declared = NodeState.HEALTHY if signal is Signal.HEALTHY else NodeState.DONE
        return self.send(SignalReceived(dn=self.dn, generation=self.generation, signal=signal))

    def become_healthy(self) -> list[Action]:
        """rc: signal HEALTHY."""
        return self.signal(Signal.HEALTHY)

    def become_done(self) -> list[Action]:
        """rc: signal DONE."""
        return self.signal(Signal.DONE)

    def run_group(self, children: Mapping[str, RunnableSpec]) -> str | None:
        """Start `children` as one group; returns the error, None on success."""
        rid = next(self._requests)
        self.send(
            RunGroupRequested(
                dn=self.dn,
                generation=self.generation,
                request_id=rid,
                children=tuple(children.items()),
            )
        )
        return self._sim._take_reply(self.dn, self.generation, rid)

    def run(self, name: str, spec: RunnableSpec) -> str | None:
        """Start one child in its own group; returns the error, None on success."""
        return self.run_group({name: spec})

    def sub_logger(self, name: str) -> str | None:
        """Reserve the sub-logger `name`; returns the error, None on success."""
        rid = next(self._requests)
        self.send(
            SubLoggerRequested(dn=self.dn, generation=self.generation, request_id=rid, name=name)
        )
        return self._sim._take_reply(self.dn, self.generation, rid)

    def report_fact(self, key: str, value: FactValue) -> list[Action]:
        """Report a fact (`value` None withdraws it)."""
        return self.send(FactReported(dn=self.dn, generation=self.generation, key=key, value=value))

    def heartbeat(self) -> list[Action]:
        """Send one heartbeat."""
        return self.send(HeartbeatReceived(dn=self.dn, generation=self.generation))

    def exit(self, kind: ExitKind, error: str | None = None) -> list[Action]:
        """Return (or die): the shell reports `ProcessExited`."""
        self._require_alive()
        self.exited_at, self.exit_kind, self.exit_error = self._sim.now, kind, error
        self._sim._exited(self)
        return self._sim.feed(
            ProcessExited(dn=self.dn, generation=self.generation, kind=kind, error=error)
        )

    def die(self, message: str = "died on request") -> list[Action]:
        """rc: return an error."""
        return self.exit(ExitKind.ERROR, message)

    def panic(self, value: str = "at the disco") -> list[Action]:
        """rc: raise an uncaught exception (Go: panic)."""
        return self.exit(ExitKind.ERROR, f"panic: {value}")

    def crash(self, signal_name: str = "SIGKILL") -> list[Action]:
        """Die by a signal, without a word (SIGKILL, OOM...)."""
        return self.exit(ExitKind.CRASHED, f"killed by signal {signal_name}")

    def ignore_cancel(self) -> None:
        """rc: from now on, do not return when cancelled (only a kill ends it)."""
        self.ignores_cancel = True

    def hang(self) -> None:
        """SIGSTOP: from now on no heartbeats, and cancels are ignored."""
        self.hung = True
        self.ignores_cancel = True

    def fault(self, reason: str) -> list[Action]:
        """The shell caught this process misbehaving (e.g. a bad frame)."""
        return self.send(NodeFaulted(dn=self.dn, generation=self.generation, reason=reason))

    def after(self, delay: float, step: Callable[[FakeProcess], object]) -> None:
        """Run `step(self)` at `now + delay`, if the process is still alive then."""
        self._sim._schedule(self._sim.now + delay, self, step)

    def send(self, event: Event) -> list[Action]:
        """Feed any event on this process's behalf (e.g. one with a wrong generation)."""
        self._require_alive()
        return self._sim.feed(event)

    def _require_alive(self) -> None:
        if not self.alive:
            raise SimulationError(f"process of {self.dn!r} (generation {self.generation}) exited")


# ==================================================================== the shell


class Simulation:
    """Drives a `Tree` like the real shell, with a fake clock and fake processes.

    Args:
        root: the spec of the root runnable.
        policies: the tree's restart policies.
        seed: seeds the tree's `random.Random` (the backoff jitter).
        behaviours: extra target -> factory(args) for fake runnables.
        start_at: the fake monotonic time at the start, in seconds.
    """

    def __init__(
        self,
        root: RunnableSpec,
        *,
        policies: PolicySet = DEFAULT_POLICIES,
        seed: int = 0,
        behaviours: Mapping[str, Callable[[Mapping[str, Any]], Behaviour]] | None = None,
        start_at: float = 0.0,
    ) -> None:
        #: The tree under test.
        self.tree = Tree(policies, random.Random(seed))
        #: The fake monotonic clock, in seconds.
        self.now = start_at
        #: Every (time, event) fed to the tree, in order.
        self.events: list[tuple[float, Event]] = []
        #: Every action the tree returned, in order.
        self.actions: list[Action] = []
        #: Armed timers: key -> deadline, as the shell tracks them.
        self.timers: dict[TimerKey, float] = {}
        #: Every fake process ever started, in start order.
        self.processes: list[FakeProcess] = []
        #: Every log line the tree wrote.
        self.logs: list[LogNode] = []
        #: The last state per DN ever seen (Go's InMemoryMetrics: forgotten DNs stay).
        self.metrics: dict[str, NodeState] = {}
        #: The facts per DN as the shell hears of them (`FactChanged`).
        self.facts: dict[str, dict[str, FactValue]] = {}
        #: The reason of `TreeFailed`, if it came.
        self.failed: str | None = None
        #: Whether `ShutdownComplete` came.
        self.complete = False
        self._root = root
        self._behaviours = {**BUILTIN_BEHAVIOURS, **(behaviours or {})}
        self._pending: deque[StartNode | CancelNode | KillNode] = deque()
        self._live: dict[tuple[str, int], FakeProcess] = {}
        self._replies: dict[tuple[str, int, int], str | None] = {}
        self._timer_order: dict[TimerKey, int] = {}
        self._callbacks: list[tuple[float, int, FakeProcess, Callable[[FakeProcess], object]]] = []
        self._seq = itertools.count()
        self._pids = itertools.count(1000)

    # ------------------------------------------------------------ driving

    def start(self) -> list[Action]:
        """Feed `TreeStarted` and settle; returns the tree's actions for it."""
        actions = self.feed(TreeStarted(root=self._root))
        self.settle()
        return actions

    def feed(self, event: Event) -> list[Action]:
        """Feed one event at `now`; queue the actions; return them (does not settle)."""
        self.events.append((self.now, event))
        actions = self.tree.handle(event, self.now)
        self.actions.extend(actions)
        for action in actions:
            self._record(action)
        return actions

    def settle(self) -> None:
        """Carry out actions, due timers and due process steps until quiescent."""
        for _ in range(MAX_STEPS):
            if self._pending:
                self._perform(self._pending.popleft())
            elif self._callbacks and self._callbacks[0][0] <= self.now:
                _, _, proc, step = heapq.heappop(self._callbacks)
                if proc.alive:
                    step(proc)
            elif (key := self._due_timer()) is not None:
                del self.timers[key]
                self.feed(TimerFired(key=key))
            else:
                return
        raise SimulationError(f"no quiescence after {MAX_STEPS} steps at {self.now}")

    @property
    def quiescent(self) -> bool:
        """No action pending and no timer or process step due now."""
        return (
            not self._pending
            and not (self._callbacks and self._callbacks[0][0] <= self.now)
            and self._due_timer() is None
        )

    def next_deadline(self) -> float | None:
        """The earliest armed timer or process step, None if there is none."""
        while self._callbacks and not self._callbacks[0][2].alive:
            heapq.heappop(self._callbacks)
        times = [*self.timers.values(), *(c[0] for c in self._callbacks[:1])]
        return min(times) if times else None

    def advance(self) -> bool:
        """Settle, jump to the next deadline and settle; False if nothing is scheduled."""
        self.settle()
        deadline = self.next_deadline()
        if deadline is None:
            return False
        self.now = max(self.now, deadline)
        self.settle()
        return True

    def advance_to(self, t: float) -> None:
        """Move the clock to `t`, handling every deadline on the way, in order."""
        self.settle()
        while (deadline := self.next_deadline()) is not None and deadline <= t:
            self.advance()
        self.now = max(self.now, t)
        self.settle()

    def advance_by(self, seconds: float) -> None:
        """Move the clock `seconds` forward (see `advance_to`)."""
        self.advance_to(self.now + seconds)

    def run_until(self, condition: Callable[[], bool], *, timeout: float = 120.0) -> None:
        """Advance deadline by deadline until `condition()` holds.

        Raises:
            SimulationTimeout: it did not hold within `timeout` fake seconds.
        """
        limit = self.now + timeout
        self.settle()
        while not condition():
            deadline = self.next_deadline()
            if deadline is None or deadline > limit:
                raise SimulationTimeout(f"condition still false at {self.now} (limit {limit})")
            self.advance()

    def shutdown(self, reason: str = "shutdown requested") -> list[Action]:
        """Feed `ShutdownRequested`; returns its actions (does not settle)."""
        return self.feed(ShutdownRequested(reason=reason))

    def restart(self, dn: str) -> list[Action]:
        """Feed `RestartRequested(dn)`; returns its actions (does not settle)."""
        return self.feed(RestartRequested(dn=dn))

    # ------------------------------------------------------------ queries

    def process(self, dn: str) -> FakeProcess:
        """The live process of `dn`. Raises `SimulationError` if there is none."""
        for proc in reversed(self.processes):
            if proc.dn == dn and proc.alive:
                return proc
        raise SimulationError(f"no live process of {dn!r}")

    def alive(self, dn: str) -> bool:
        """Whether `dn` has a live process."""
        return any(p.dn == dn and p.alive for p in self.processes)

    def incarnations(self, dn: str) -> list[FakeProcess]:
        """Every process ever started for `dn`, in start order."""
        return [p for p in self.processes if p.dn == dn]

    def states(self) -> dict[str, NodeState]:
        """The state of every node of the tree, in tree order."""
        return {s.dn: s.state for s in self.tree.snapshot()}

    def status(self, dn: str) -> NodeStatus:
        """The tree's status of `dn`."""
        return self.tree.status(dn)

    def actions_of(self, kind: type[A], since: int = 0) -> list[A]:
        """The actions of one type, from index `since` of `actions` on."""
        return [a for a in self.actions[since:] if isinstance(a, kind)]

    def transitions(self, dn: str | None = None) -> list[tuple[str, NodeState | None, NodeState]]:
        """Every state change (dn, old, new), optionally of one DN only."""
        return [
            (a.dn, a.old, a.new) for a in self.actions_of(StateChanged) if dn is None or a.dn == dn
        ]

    # ------------------------------------------------------------ internals

    def _record(self, action: Action) -> None:
        match action:
            case StartNode() | CancelNode() | KillNode():
                self._pending.append(action)
            case SetTimer(key=key, deadline=deadline):
                self.timers[key] = deadline
                self._timer_order[key] = next(self._seq)
            case CancelTimer(key=key):
                self.timers.pop(key, None)
            case ReplyRunGroup() | ReplySubLogger():
                self._replies[(action.dn, action.generation, action.request_id)] = action.error
            case LogNode():
                self.logs.append(action)
            case StateChanged(dn=dn, new=new):
                self.metrics[dn] = new
            case FactChanged(dn=dn, key=key, value=value):
                facts = self.facts.setdefault(dn, {})
                if value is None:
                    facts.pop(key, None)
                else:
                    facts[key] = value
            case TreeFailed(reason=reason):
                self.failed = reason
            case ShutdownComplete():
                self.complete = True
            case _:
                assert_never(action)

    def _perform(self, action: StartNode | CancelNode | KillNode) -> None:
        match action:
            case StartNode():
                self._spawn(action)
            case CancelNode(dn=dn, generation=generation, reason=reason):
                proc = self._live.get((dn, generation))
                if proc is None:
                    return  # already gone: like signalling a reaped process group
                proc.cancel_reason = reason
                if not proc.hung:
                    proc.behaviour.on_cancel(proc)
            case KillNode(dn=dn, generation=generation):
                proc = self._live.get((dn, generation))
                if proc is None:
                    return
                proc.killed = True
                proc.exit(ExitKind.CRASHED, "killed by signal SIGKILL")
            case _:
                assert_never(action)

    def _spawn(self, start: StartNode) -> None:
        factory = self._behaviours.get(start.spec.target)
        if factory is None:
            raise SimulationError(f"no fake runnable for target {start.spec.target!r}")
        proc = FakeProcess(self, start, next(self._pids), factory(start.spec.args))
        self.processes.append(proc)
        self._live[(proc.dn, proc.generation)] = proc
        self.feed(ProcessSpawned(dn=proc.dn, generation=proc.generation, pid=proc.pid))
        interval = start.policy.heartbeat_interval
        if interval is not None:
            proc.after(interval, _heartbeat_loop(interval))
        proc.behaviour.on_start(proc)

    def _exited(self, proc: FakeProcess) -> None:
        del self._live[(proc.dn, proc.generation)]

    def _take_reply(self, dn: str, generation: int, request_id: int) -> str | None:
        key = (dn, generation, request_id)
        if key not in self._replies:
            raise SimulationError(f"no reply to request {request_id} of {dn!r}")
        return self._replies.pop(key)

    def _schedule(
        self, at: float, proc: FakeProcess, step: Callable[[FakeProcess], object]
    ) -> None:
        heapq.heappush(self._callbacks, (at, next(self._seq), proc, step))

    def _due_timer(self) -> TimerKey | None:
        due = [k for k, d in self.timers.items() if d <= self.now]
        if not due:
            return None
        return min(due, key=lambda k: (self.timers[k], self._timer_order[k]))


def _heartbeat_loop(interval: float) -> Callable[[FakeProcess], None]:
    """A process step that heartbeats (unless hung) and schedules itself again."""

    def beat(proc: FakeProcess) -> None:
        if not proc.hung:
            proc.heartbeat()
        proc.after(interval, beat)

    return beat


def go_policies(
    rules: Mapping[str, Mapping[str, Any]] | None = None, **overrides: Any
) -> PolicySet:
    """Policies that behave as Go's supervisor (no heartbeat watch), with `overrides` on
    the base and per-DN `rules` (pattern -> overrides) over it."""
    return PolicySet(
        rules=[PolicyRule(pattern, dict(fields)) for pattern, fields in (rules or {}).items()],
        base=RestartPolicy(heartbeat_interval=None, **overrides),
    )


def timer_key(purpose: str, dn: str, generation: int) -> TimerKey:
    """The key of `dn`'s timer for `purpose` ("liveness", "grace", …) in `generation`."""
    return TimerKey(purpose=TimerPurpose(purpose), dn=dn, generation=generation)


def without(actions: Iterable[Action], *kinds: type) -> list[Action]:
    """`actions` minus those of the given types (e.g. liveness `SetTimer`s)."""
    return [a for a in actions if not isinstance(a, kinds)]
