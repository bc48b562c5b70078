"""The fake runnables of the simulation harness (`simulation.py`), and their specs.

Each fake is a `Behaviour`: hooks the harness calls when its process starts
and when it is cancelled, acting through the `Process` it is given (the
harness's `FakeProcess`), as a real runnable acts through its context. This
module does not import the harness: `Process` is the protocol a fake needs,
so the dependency runs one way (`simulation` -> `fakes`). They mirror the
helpers of Go's supervisor tests (see GO_SCENARIOS.md):

* `remote()` — Go's rc: does nothing by itself, the test commands it.
* `becomes_healthy()` — Go's runnableBecomesHealthy.
* `spawns_more(levels)` — the spawns-more runnable: a chain of `levels` more
  nodes below it (one child `sub` each), as in `kit.spawns_more` with real
  processes.
* `spawns_tree(levels)` — Go's runnableSpawnsMore as its code is written: a
  binary tree of `levels` more levels (children `a` and `b`), for tests that
  want a wide subtree.
* `runs_groups(*groups, then=...)` — a parent that starts groups, then is
  done, healthy or stays NEW.
* `done_after(delay)` — TestDoneDelay's inner: DONE at once, returns later.
* TestResilience's nasty ones: `stale_signal()` (a foreign context),
  `done_without_healthy()`, `busy_loop()` (ignores cancellation),
  `spawns_forever()`.

A spec is `RunnableSpec(target="sim:<name>", args=...)`; `BUILTIN_BEHAVIOURS`
maps the targets to factories. `ignores_cancel=True` in any spec's args makes
the default `on_cancel` ignore the cancel.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from actors.supervisor.core.events import Action, Event, ExitKind, RunnableSpec, SignalReceived
from actors.supervisor.core.states import Signal

__all__ = [
    "BUILTIN_BEHAVIOURS",
    "Behaviour",
    "Process",
    "becomes_healthy",
    "busy_loop",
    "done_after",
    "done_without_healthy",
    "remote",
    "runs_groups",
    "spawns_forever",
    "spawns_more",
    "spawns_tree",
    "stale_signal",
]


class Process(Protocol):
    """What a fake runnable can do: the part of `simulation.FakeProcess` it uses."""

    #: The node's DN.
    dn: str
    #: It does not return when cancelled.
    ignores_cancel: bool

    @property
    def alive(self) -> bool:
        """Whether the process has not exited yet."""

    def become_healthy(self) -> list[Action]:
        """Signal HEALTHY."""

    def become_done(self) -> list[Action]:
        """Signal DONE."""

    def run_group(self, children: Mapping[str, RunnableSpec]) -> str | None:
        """Start `children` as one group; the error, None on success."""

    def run(self, name: str, spec: RunnableSpec) -> str | None:
        """Start one child in its own group; the error, None on success."""

    def exit(self, kind: ExitKind, error: str | None = None) -> list[Action]:
        """Return (or die)."""

    def after(self, delay: float, step: Callable[[Any], object]) -> None:
        """Run `step(self)` at `now + delay`, if the process is still alive then."""

    def send(self, event: Event) -> list[Action]:
        """Feed any event on this process's behalf."""


class Behaviour:
    """What a fake runnable does. Override the hooks; both run inside `settle`."""

    def on_start(self, proc: Process) -> None:
        """The process was spawned and said hello."""

    def on_cancel(self, proc: Process) -> None:
        """The process got a cancel message; by default it returns CANCELED."""
        if not proc.ignores_cancel:
            proc.exit(ExitKind.CANCELED)


class Remote(Behaviour):
    """rc: does nothing by itself; the test commands it through `FakeProcess`."""


class BecomesHealthy(Behaviour):
    """Signals HEALTHY, then waits to be cancelled."""

    def on_start(self, proc: Process) -> None:
        proc.become_healthy()


class SpawnsMore(Behaviour):
    """Starts the child `sub`, spawns_more(levels - 1), if levels > 0, then HEALTHY."""

    def __init__(self, levels: int) -> None:
        self.levels = levels

    def on_start(self, proc: Process) -> None:
        if self.levels > 0:
            error = proc.run("sub", spawns_more(self.levels - 1))
            if error is not None:
                proc.exit(ExitKind.ERROR, error)
                return
        proc.become_healthy()


class SpawnsTree(Behaviour):
    """Starts the group {a, b} of spawns_tree(levels - 1) if levels > 0, then HEALTHY."""

    def __init__(self, levels: int) -> None:
        self.levels = levels

    def on_start(self, proc: Process) -> None:
        if self.levels > 0:
            child = spawns_tree(self.levels - 1)
            error = proc.run_group({"a": child, "b": child})
            if error is not None:
                proc.exit(ExitKind.ERROR, error)
                return
        proc.become_healthy()


class RunsGroups(Behaviour):
    """Starts each group in turn, then: "done" (HEALTHY, DONE, return), "healthy", or "new"."""

    def __init__(self, groups: Sequence[Sequence[tuple[str, RunnableSpec]]], then: str) -> None:
        self.groups, self.then = groups, then

    def on_start(self, proc: Process) -> None:
        for group in self.groups:
            error = proc.run_group(dict(group))
            if error is not None:
                proc.exit(ExitKind.ERROR, error)
                return
        if self.then in ("healthy", "done"):
            proc.become_healthy()
        if self.then == "done":
            proc.become_done()
            proc.exit(ExitKind.OK)


class DoneAfter(Behaviour):
    """HEALTHY and DONE at once, but returns only `delay` seconds later, cancel or not."""

    def __init__(self, delay: float) -> None:
        self.delay = delay

    def on_start(self, proc: Process) -> None:
        proc.become_healthy()
        proc.become_done()
        proc.after(self.delay, lambda p: p.exit(ExitKind.OK))

    def on_cancel(self, proc: Process) -> None:
        pass


class StaleSignal(Behaviour):
    """Signals HEALTHY with another incarnation's generation (Go: a foreign context), returns."""

    def on_start(self, proc: Process) -> None:
        proc.send(SignalReceived(dn=proc.dn, generation=0, signal=Signal.HEALTHY))
        proc.exit(ExitKind.OK)


class DoneWithoutHealthy(Behaviour):
    """Signals DONE while NEW (a programming error), then returns."""

    def on_start(self, proc: Process) -> None:
        proc.become_done()
        if proc.alive:
            proc.exit(ExitKind.OK)


class BusyLoop(Behaviour):
    """Spins forever and never looks at its context: only a kill stops it."""

    def on_cancel(self, proc: Process) -> None:
        pass


class SpawnsForever(Behaviour):
    """Starts r1, r2, ... (spawns_tree(2)) every `interval` s; HEALTHY after `healthy_after`.

    Once HEALTHY its next run-group is refused, and it returns that error.
    """

    def __init__(self, interval: float, healthy_after: int) -> None:
        self.interval, self.healthy_after = interval, healthy_after

    def on_start(self, proc: Process) -> None:
        self._spawn(proc, 1)

    def _spawn(self, proc: Process, i: int) -> None:
        error = proc.run(f"r{i}", spawns_tree(2))
        if error is not None:
            proc.exit(ExitKind.ERROR, error)
            return
        if i == self.healthy_after:
            proc.become_healthy()
        proc.after(self.interval, lambda p: self._spawn(p, i + 1))


def _builtin(name: str, **args: Any) -> RunnableSpec:
    return RunnableSpec(target=f"sim:{name}", args=args)


def remote(*, ignores_cancel: bool = False) -> RunnableSpec:
    """A remote-controlled runnable (Go's rc)."""
    return _builtin("remote", ignores_cancel=ignores_cancel)


def becomes_healthy() -> RunnableSpec:
    """Signals HEALTHY and waits for cancellation (Go's runnableBecomesHealthy)."""
    return _builtin("becomes_healthy")


def spawns_more(levels: int) -> RunnableSpec:
    """A chain of `levels` more nodes (`sub`, `sub.sub`, ...), each HEALTHY."""
    return _builtin("spawns_more", levels=levels)


def spawns_tree(levels: int) -> RunnableSpec:
    """A binary tree of `levels` more levels (`a`, `b`), each node HEALTHY (Go's code)."""
    return _builtin("spawns_tree", levels=levels)


def runs_groups(
    *groups: Mapping[str, RunnableSpec], then: str = "done", ignores_cancel: bool = False
) -> RunnableSpec:
    """Starts `groups` one after the other, then `then`: "done", "healthy" or "new"."""
    frozen = tuple(tuple(g.items()) for g in groups)
    return _builtin("runs_groups", groups=frozen, then=then, ignores_cancel=ignores_cancel)


def done_after(delay: float) -> RunnableSpec:
    """HEALTHY and DONE at once, returns `delay` s later (TestDoneDelay's inner)."""
    return _builtin("done_after", delay=delay)


def stale_signal() -> RunnableSpec:
    """Signals with a foreign generation, then returns (TestResilience's `two`)."""
    return _builtin("stale_signal")


def done_without_healthy() -> RunnableSpec:
    """Signals DONE without HEALTHY (TestResilience's `three`)."""
    return _builtin("done_without_healthy")


def busy_loop() -> RunnableSpec:
    """Ignores cancellation forever (TestResilience's `four`)."""
    return _builtin("busy_loop")


def spawns_forever(interval: float = 0.1, healthy_after: int = 3) -> RunnableSpec:
    """Keeps starting runnables (TestResilience's `five`)."""
    return _builtin("spawns_forever", interval=interval, healthy_after=healthy_after)


#: target -> factory(args) of the built-in fake runnables.
BUILTIN_BEHAVIOURS: dict[str, Callable[[Mapping[str, Any]], Behaviour]] = {
    "sim:remote": lambda a: Remote(),
    "sim:becomes_healthy": lambda a: BecomesHealthy(),
    "sim:spawns_more": lambda a: SpawnsMore(a["levels"]),
    "sim:spawns_tree": lambda a: SpawnsTree(a["levels"]),
    "sim:runs_groups": lambda a: RunsGroups(a["groups"], a["then"]),
    "sim:done_after": lambda a: DoneAfter(a["delay"]),
    "sim:stale_signal": lambda a: StaleSignal(),
    "sim:done_without_healthy": lambda a: DoneWithoutHealthy(),
    "sim:busy_loop": lambda a: BusyLoop(),
    "sim:spawns_forever": lambda a: SpawnsForever(a["interval"], a["healthy_after"]),
}
