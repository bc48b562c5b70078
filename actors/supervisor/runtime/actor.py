"""The supervisor actor: the pure core driven by real processes.

`SupervisorActor` (a pykka actor in the root process) owns a `Tree` (the
pure core) and is its only caller. Everything that happens to the tree
arrives as a message in its mailbox -- a frame from a child, a child's exit,
a fault, a timer, an operator's request -- is turned into a core event, fed
with the current monotonic time, and the actions the core returns are
carried out in order: spawn a host, send a cancel, SIGKILL a process group,
arm or disarm a timer, reply to a child, write a log line. Actions that
produce new facts at once (a spawn that fails) feed them back before the
next message, so the core sees a consistent sequence.

`Supervisor` is the thread-safe facade the rest of the agent (and tests)
use: start the tree, read its status, restart a DN, shut it down, wait for
the end. Spawning happens on the actor's thread, which lives as long as the
tree, because the hosts' PR_SET_PDEATHSIG fires when the spawning *thread*
exits.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from types import TracebackType
from typing import Any, assert_never, cast

import pykka

from actors.logtree import LeveledEntry, LogTree
from actors.mailbox import tell_or_drop
from actors.supervisor.core.errors import SupervisionError
from actors.supervisor.core.events import (
    Action,
    CancelNode,
    CancelTimer,
    Event,
    ExitKind,
    FactChanged,
    FactReported,
    HeartbeatReceived,
    KillNode,
    LogNode,
    NodeFaulted,
    PoliciesReplaced,
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
from actors.supervisor.core.names import ROOT_DN
from actors.supervisor.core.policy import PolicySet
from actors.supervisor.core.severity import Severity
from actors.supervisor.core.tree import NodeStatus, Tree
from actors.supervisor.runtime import clock
from actors.supervisor.runtime.child import ChildOutcome, ChildProcess
from actors.supervisor.runtime.ending import TreeEnd
from actors.supervisor.runtime.timers import TimerService
from actors.supervisor.runtime.zygote import Spawner, Zygote
from messages.wire import (
    Cancel,
    ChildMessage,
    Exit,
    FactReport,
    Heartbeat,
    Hello,
    LogEntry,
    MetricAdd,
    ParsedBatch,
    RawChunk,
    RunGroupReply,
    RunGroupRequest,
    SignalMsg,
    Start,
    SubLoggerReply,
    SubLoggerRequest,
)

__all__ = [
    "Supervisor",
    "SupervisorActor",
    "StateObserver",
    "FactObserver",
    "MetricSink",
    "LogBytesSink",
]

#: Called with every StateChanged action, on the actor's thread; must not block.
StateObserver = Callable[[StateChanged, float], None]
#: Called with every FactChanged action, on the actor's thread; must not block.
FactObserver = Callable[[FactChanged], None]
#: Receives a child's `add_metric` or `observe_metric` (its `MetricAdd`), on the
#: actor's thread; raises ValueError for a counter or histogram it does not know.
MetricSink = Callable[[MetricAdd], None]
#: Told how many log bytes a node's process sent (dn, bytes), on reader threads.
LogBytesSink = Callable[[str, int], None]


# ------------------------------------------------------------ mailbox messages


@dataclass(frozen=True, slots=True)
class _Begin:
    root: RunnableSpec


@dataclass(frozen=True, slots=True)
class _FromChild:
    child: ChildProcess
    msg: ChildMessage


@dataclass(frozen=True, slots=True)
class _ChildFault:
    child: ChildProcess
    reason: str


@dataclass(frozen=True, slots=True)
class _ChildExit:
    child: ChildProcess
    outcome: ChildOutcome


@dataclass(frozen=True, slots=True)
class _TimerDue:
    key: Hashable


@dataclass(frozen=True, slots=True)
class _Judge:
    """A liveness timer's verdict, queued behind what its node's link held when it fired."""

    key: TimerKey


@dataclass(frozen=True, slots=True)
class _Shutdown:
    reason: str


@dataclass(frozen=True, slots=True)
class _Restart:
    dn: str


@dataclass(frozen=True, slots=True)
class _Snapshot:
    pass


@dataclass(frozen=True, slots=True)
class _ReviveZygote:
    pass


@dataclass(frozen=True, slots=True)
class _SetPolicies:
    policies: PolicySet


class SupervisorActor(pykka.ThreadingActor):
    """Owns the core and the children's processes. Runs on its own thread."""

    def __init__(
        self,
        *,
        policies: PolicySet,
        log_tree: LogTree,
        rng: random.Random,
        end: TreeEnd,
        observers: list[StateObserver],
        metric_sink: MetricSink | None = None,
        log_bytes: LogBytesSink | None = None,
        fact_observers: list[FactObserver] | None = None,
        zygote: Zygote | None = None,
    ) -> None:
        super().__init__()
        self._spawner = Spawner(zygote, self._log_root, lambda: self._post(_ReviveZygote()))
        self._fact_observers = list(fact_observers or [])
        self._metric_sink = metric_sink
        self._log_bytes = log_bytes
        self._tree = Tree(policies, rng)
        self._log = log_tree
        self._end = end
        self._observers = observers
        self._children: dict[tuple[str, int], ChildProcess] = {}
        self._timers = TimerService(self._timer_due)
        self._queue: deque[Event] = deque()

    # ------------------------------------------------------------ pykka hooks

    def on_stop(self) -> None:
        """Runs on the actor thread when it stops: no timer may fire after."""
        self._timers.stop()
        for child in list(self._children.values()):
            child.kill()

    def on_failure(
        self,
        exception_type: type[BaseException] | None,
        exception_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """The actor itself broke (a bug): fail loudly rather than hang.

        Runs on the actor thread before pykka stops it. Every process of the
        tree is killed, the reason is logged FATAL at DN `root` and becomes the
        tree's failure, and waiters are released, so the agent exits non-zero.
        """
        reason = f"supervisor crashed: {exception_type.__name__ if exception_type else 'error'}"
        if exception_value is not None:
            reason += f": {exception_value}"
        self._execute(LogNode(dn=ROOT_DN, severity=Severity.FATAL, message=reason))
        self._timers.stop()
        for child in list(self._children.values()):
            child.kill()
        self._end.crashed(reason)

    def on_receive(self, message: Any) -> Any:
        """Dispatch one mailbox message (actor thread)."""
        match message:
            case _FromChild(child, MetricAdd() as metric):
                self._add_metric(child, metric)
            case _FromChild(child, msg):
                event = self._event_from_child(child, msg)
                if event is not None:
                    self._feed(event)
            case _ChildExit(child, outcome):
                self._children.pop((child.dn, child.generation), None)
                self._feed(
                    ProcessExited(
                        dn=child.dn,
                        generation=child.generation,
                        kind=outcome.kind,
                        error=outcome.error,
                    )
                )
            case _ChildFault(child, reason):
                self._feed(NodeFaulted(dn=child.dn, generation=child.generation, reason=reason))
            case _TimerDue(key):
                assert isinstance(key, TimerKey)
                self._timer_fired(key)
            case _Judge(key):
                self._feed(TimerFired(key=key))
            case _Begin(root):
                self._feed(TreeStarted(root=root))
            case _Shutdown(reason):
                self._feed(ShutdownRequested(reason=reason))
            case _Restart(dn):
                try:
                    self._feed(RestartRequested(dn=dn))
                except SupervisionError as e:
                    return e  # raised again, with its own type, in the asking thread
                return None
            case _Snapshot():
                return self._tree.snapshot()
            case _SetPolicies(policies):
                self._feed(PoliciesReplaced(policies=policies))
            case _ReviveZygote():
                self._spawner.revive()  # on this thread: its death signal names this one
        return None

    # ------------------------------------------------------------ core driving

    def _feed(self, event: Event) -> None:
        self._queue.append(event)
        if len(self._queue) > 1:
            return  # already draining further up the stack
        while self._queue:
            ev = self._queue[0]
            try:
                actions = self._tree.handle(ev, clock.monotonic())
                for action in actions:
                    self._execute(action)
            finally:
                self._queue.popleft()

    def _timer_fired(self, key: TimerKey) -> None:
        """Feed a fired timer; a liveness verdict only after the node's link was read.

        A timer can fire before the link reader thread ran (the root was frozen or
        starved, and both woke at once): the node's heartbeats would then be waiting
        unread while it is judged. So the link is drained here first -- what it held
        goes into the mailbox -- and the verdict is queued behind it: a heartbeat
        among them re-arms the timer, and the core then finds this firing stale.
        """
        child = self._children.get((key.dn, key.generation))
        if key.purpose is not TimerPurpose.LIVENESS or child is None:
            self._feed(TimerFired(key=key))
            return
        child.drain()
        self._post(_Judge(key))

    def _add_metric(self, child: ChildProcess, metric: MetricAdd) -> None:
        if self._metric_sink is None:
            return
        try:
            self._metric_sink(metric)
        except (ValueError, TypeError) as e:
            self._execute(
                LogNode(dn=child.dn, severity=Severity.WARNING, message=f"metric dropped: {e}")
            )

    def _event_from_child(self, child: ChildProcess, msg: ChildMessage) -> Event | None:
        dn, gen = child.dn, child.generation
        match msg:
            case Hello(pid=pid):
                return ProcessSpawned(dn=dn, generation=gen, pid=pid)
            case Heartbeat():
                return HeartbeatReceived(dn=dn, generation=gen)
            case SignalMsg():
                return SignalReceived(dn=dn, generation=gen, signal=msg.kind)
            case RunGroupRequest(request_id=rid, children=children):
                return RunGroupRequested(
                    dn=dn,
                    generation=gen,
                    request_id=rid,
                    children=tuple(
                        (c.name, RunnableSpec(target=c.target, args=c.args)) for c in children
                    ),
                )
            case SubLoggerRequest(request_id=rid, name=name):
                return SubLoggerRequested(dn=dn, generation=gen, request_id=rid, name=name)
            case FactReport(key=key, value=value):
                return FactReported(dn=dn, generation=gen, key=key, value=value)
            case Exit() | MetricAdd() | LogEntry() | RawChunk() | ParsedBatch():
                # Exit: its outcome arrives with the reaped process. The others
                # never come here: logs go straight to the tree, metrics to the sink.
                return None
            case _:
                assert_never(msg)

    def _execute(self, action: Action) -> None:
        match action:
            case StartNode():
                self._start(action)
            case CancelNode(dn=dn, generation=gen, reason=reason):
                child = self._children.get((dn, gen))
                if child is not None:
                    child.send(Cancel(reason=reason))
            case KillNode(dn=dn, generation=gen):
                child = self._children.get((dn, gen))
                if child is not None:
                    child.kill()
            case SetTimer(key=key, deadline=deadline):
                self._timers.set(key, deadline)
            case CancelTimer(key=key):
                self._timers.cancel(key)
            case ReplyRunGroup(dn=dn, generation=gen, request_id=rid, error=error):
                child = self._children.get((dn, gen))
                if child is not None:
                    child.send(RunGroupReply(request_id=rid, error=error))
            case ReplySubLogger(dn=dn, generation=gen, request_id=rid, name=name, error=error):
                child = self._children.get((dn, gen))
                if child is not None:
                    if error is None:
                        child.sub_loggers.add(name)
                    child.send(SubLoggerReply(request_id=rid, error=error))
            case LogNode(dn=dn, severity=severity, message=message):
                self._log.write_leveled(
                    LeveledEntry(
                        dn=dn,
                        severity=severity,
                        lines=tuple(message.split("\n")),
                        timestamp=clock.wall(),
                        file="supervisor.py",
                        line=0,
                    )
                )
            case StateChanged():
                now = clock.monotonic()
                for observe in self._observers:
                    observe(action, now)
            case FactChanged():
                for told in self._fact_observers:
                    told(action)
            case TreeFailed(reason=reason):
                self._end.failed(reason)
            case ShutdownComplete():
                self._log.flush_all_raw()
                self._end.finished.set()
            case _:
                assert_never(action)

    def _start(self, action: StartNode) -> None:
        try:
            host = self._spawner.spawn(action.dn)
        except OSError as e:
            self._queue.append(
                ProcessExited(
                    dn=action.dn,
                    generation=action.generation,
                    kind=ExitKind.CRASHED,
                    error=f"failed to spawn a process: {e}",
                )
            )
            return
        post = self._post
        child = ChildProcess(
            action.dn,
            action.generation,
            host,
            log_tree=self._log,
            on_message=lambda c, m: post(_FromChild(c, m)),
            on_fault=lambda c, r: post(_ChildFault(c, r)),
            on_exit=lambda c, o: post(_ChildExit(c, o)),
            on_log_bytes=self._log_bytes,
        )
        self._children[(action.dn, action.generation)] = child
        child.send(
            Start(
                dn=action.dn,
                generation=action.generation,
                target=action.spec.target,
                args=dict(action.spec.args),
                heartbeat_interval=action.policy.heartbeat_interval,
                raw_format=self._log.parse_format(action.dn).value,
            )
        )
        child.start()

    def _log_root(self, severity: Severity, message: str) -> None:
        """A line at DN `root` from the spawner (any thread: the tree is thread-safe)."""
        self._log.write_leveled(
            LeveledEntry(
                dn=ROOT_DN,
                severity=severity,
                lines=(message,),
                timestamp=clock.wall(),
                file="zygote.py",
                line=0,
            )
        )

    def _post(self, message: object) -> None:
        """Hand a message to this actor from another thread; dropped once it stopped."""
        tell_or_drop(self.actor_ref, message)

    def _timer_due(self, key: Hashable) -> None:
        self._post(_TimerDue(key))

    def ping(self) -> bool:
        """Answers True (via a proxy): the actor is taking messages from its mailbox."""
        return True


class Supervisor:
    """Thread-safe handle on a running supervision tree of processes.

    The process hosting it should call `switching.use_fast_switching()` first
    (see there why); the supervisor does not change that process-global setting.
    """

    def __init__(
        self,
        root: RunnableSpec,
        *,
        policies: PolicySet | None = None,
        log_tree: LogTree | None = None,
        rng: random.Random | None = None,
        observers: list[StateObserver] | None = None,
        metric_sink: MetricSink | None = None,
        log_bytes: LogBytesSink | None = None,
        fact_observers: list[FactObserver] | None = None,
        zygote: Zygote | None = None,
    ) -> None:
        self.root = root
        self.log_tree = log_tree if log_tree is not None else LogTree()
        self._end = TreeEnd()
        self._ref = SupervisorActor.start(
            policies=policies or PolicySet(),
            log_tree=self.log_tree,
            rng=rng or random.Random(),
            end=self._end,
            observers=list(observers or []),
            metric_sink=metric_sink,
            log_bytes=log_bytes,
            fact_observers=fact_observers,
            zygote=zygote,
        )
        self._started = False
        self._stopped = False

    def start(self) -> None:
        """Start the root runnable."""
        if not self._started:
            self._started = True
            self._ref.tell(_Begin(self.root))

    def snapshot(self, timeout: float = 10.0) -> list[NodeStatus]:
        """Every node's status, in tree order."""
        return cast("list[NodeStatus]", self._ref.ask(_Snapshot(), timeout=timeout))

    def restart(self, dn: str, timeout: float = 10.0) -> None:
        """Cancel `dn`'s subtree so that it restarts now; raises on an unknown DN."""
        error = cast("SupervisionError | None", self._ref.ask(_Restart(dn), timeout=timeout))
        if error is not None:
            raise error

    def set_policies(self, policies: PolicySet, timeout: float = 10.0) -> None:
        """Replaces the restart policies of the running tree (see `PoliciesReplaced`)."""
        self._ref.ask(_SetPolicies(policies), timeout=timeout)

    def ping(self, timeout: float) -> bool:
        """Whether the actor answers a call through its mailbox within `timeout` seconds.

        False when it is busy, deadlocked or dead: what systemd's watchdog keys on.
        """
        try:
            return bool(self._ref.proxy().ping().get(timeout=timeout))
        except (pykka.Timeout, pykka.ActorDeadError):
            return False

    def shutdown(self, reason: str = "shutdown requested") -> None:
        """Ask the tree to stop (returns at once; `wait` for the end)."""
        tell_or_drop(self._ref, _Shutdown(reason))

    def wait(self, timeout: float | None = None) -> bool:
        """Block until every runnable has exited after a shutdown or failure."""
        return self._end.finished.wait(timeout)

    @property
    def finished(self) -> bool:
        """Whether the tree has completely stopped."""
        return self._end.finished.is_set()

    def failure(self) -> str | None:
        """Why the tree failed (an escalation reached the root, or the actor crashed), else None."""
        return self._end.failure

    def stop(self, timeout: float = 60.0) -> str | None:
        """Shut down, wait until every runnable exited, stop the actor.

        Returns the failure reason if the tree had failed, else None. If the
        tree does not finish within `timeout`, whatever still runs is killed.
        """
        if self._stopped:
            return self._end.failure
        self.shutdown()
        self.wait(timeout)
        try:
            self._ref.stop(timeout=10)
        except pykka.ActorDeadError:
            pass  # the actor crashed; on_failure recorded why in the TreeEnd
        self._stopped = True
        return self._end.failure
