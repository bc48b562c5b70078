"""The API a runnable uses, mirroring Go's `osbase/supervisor`.

A runnable is a module-level function `fn(ctx, **args)` named by its import
path (`"package.module:fn"`), so that it can start in a fresh process; its
keyword arguments must be msgpack-serialisable. It runs in the main thread of
its own process, with:

    signal(ctx, Signal.HEALTHY)            # Go: supervisor.Signal(ctx, SignalHealthy)
    signal(ctx, Signal.DONE)
    run(ctx, "name", "pkg.mod:fn", **args) # Go: supervisor.Run(ctx, name, r)
    run_group(ctx, {"a": ("pkg.mod:fn", {...}), ...})
    logger(ctx)                            # a logging.Logger on the node's DN
    raw_logger(ctx)                        # a RawLog: write(bytes)
    sub_logger(ctx, "name")                # a logging.Logger on DN <node>.name
    add_metric(ctx, "name", value, labels) # add to one of the agent's counters
    observe_metric(ctx, "name", value, labels) # one observation of an agent's histogram
    report_fact(ctx, "name", value)        # a fact `status` shows under the node
    ctx.cancelled                          # threading.Event, set on cancel
    ctx.cancel_reason                      # why, once cancelled

Ending: returning normally after DONE is a clean exit (DONE). Raising
`Canceled` -- or returning after the context was cancelled without having
signalled DONE -- reports a cancelled exit (Go: returning ctx.Err()); the
supervisor counts it as CANCELED only if it did cancel the node. Returning
while HEALTHY (not cancelled, no DONE) or raising anything else is a failure
(DEAD), as in Go.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from actors.logtree.parse.line import ParseFormat
from actors.supervisor.core.errors import SupervisionError
from actors.supervisor.core.states import Signal
from actors.supervisor.process.childlog import SUB_LOGGER_PREFIX, RawLog
from actors.supervisor.process.link import ChildLink
from messages.errors import ProtocolError

if TYPE_CHECKING:
    from actors.logtree.parse.stream import Batch

from messages.wire import (
    ChildSpec,
    FactReport,
    MetricAdd,
    RunGroupRequest,
    SignalMsg,
    SubLoggerRequest,
)

__all__ = [
    "Context",
    "Canceled",
    "Signal",
    "signal",
    "run",
    "run_group",
    "logger",
    "raw_logger",
    "sub_logger",
    "add_metric",
    "observe_metric",
    "report_fact",
    "target_name",
    "vouch",
]

Target = str | Callable[..., Any]


class Canceled(Exception):
    """Raise from a runnable to say it stopped because it was cancelled."""


class Context:
    """What a runnable knows about its node; passed as its first argument."""

    def __init__(
        self,
        dn: str,
        generation: int,
        link: ChildLink,
        raw_format: ParseFormat = ParseFormat.RAW,
    ) -> None:
        #: This node's DN, e.g. "root.containerd".
        self.dn = dn
        #: Which start of this node this is (tree-wide counter).
        self.generation = generation
        #: Set when the supervisor cancels this node.
        self.cancelled = threading.Event()
        #: Why it was cancelled, once it was.
        self.cancel_reason: str | None = None
        self.signalled_done = False
        #: How this node's raw log lines are parsed (the `[log] parse` table's format).
        self.raw_format = raw_format
        self._link = link
        self._raw: RawLog | None = None
        self._lock = threading.Lock()
        self._progress: list[Callable[[], bool]] = []

    def making_progress(self) -> bool:
        """Whether every check given to `vouch` holds; the heartbeat is sent only then.

        Called by the link's thread before each heartbeat. A check that raises counts
        as failing: a runnable whose work has ended or wedged must stop beating.
        """
        with self._lock:
            checks = list(self._progress)
        try:
            return all(check() for check in checks)
        except Exception:  # noqa: BLE001 - a broken check is a failed one
            return False

    def cancel(self, reason: str) -> None:
        """Mark the context cancelled (called by the link's reader thread)."""
        if self.cancel_reason is None:
            self.cancel_reason = reason
        self.cancelled.set()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until cancelled or `timeout`; True if cancelled."""
        return self.cancelled.wait(timeout)

    def raise_if_cancelled(self) -> None:
        """Raise `Canceled` if the context is cancelled."""
        if self.cancelled.is_set():
            raise Canceled(self.cancel_reason or "canceled")

    def __repr__(self) -> str:
        return f"Context(dn={self.dn!r}, cancelled={self.cancelled.is_set()})"


def target_name(target: Target) -> str:
    """The import path of a runnable: a string as is, a function as module:qualname."""
    if isinstance(target, str):
        if ":" not in target:
            raise SupervisionError(f"runnable target {target!r} is not 'module:function'")
        return target
    module = getattr(target, "__module__", None)
    qualname = getattr(target, "__qualname__", "")
    if not module or module == "__main__" or "<" in qualname or "." in qualname:
        raise SupervisionError(
            f"runnable {target!r} is not a module-level function importable in a fresh process"
        )
    return f"{module}:{qualname}"


def vouch(ctx: Context, check: Callable[[], bool]) -> None:
    """Make this process's heartbeats depend on `check` (any thread may call it).

    A heartbeat proves that the runnable's work goes on, not just that a thread of
    its process is alive: while `check()` is False the heartbeats stop, and the
    supervisor fails the node after its missed-heartbeat bound and kills the
    process. A runnable that hands its work to an actor vouches with "the actor is
    alive, or it has reported its end", so an actor that died without reporting
    cannot leave the node HEALTHY with nothing behind it.
    """
    with ctx._lock:
        ctx._progress.append(check)


def signal(ctx: Context, sig: Signal) -> None:
    """Tell the supervisor this runnable is HEALTHY or DONE."""
    if sig is Signal.DONE:
        ctx.signalled_done = True
    ctx._link.send(SignalMsg.of(sig))


def run(ctx: Context, name: str, target: Target, /, **args: Any) -> None:
    """Start a child runnable `name` under this node (only while NEW)."""
    run_group(ctx, {name: (target, args)})


def run_group(ctx: Context, children: Mapping[str, tuple[Target, Mapping[str, Any]]]) -> None:
    """Start several children as one group: if one dies, its siblings are cancelled."""
    specs = [
        ChildSpec(name=name, target=target_name(t), args=dict(a))
        for name, (t, a) in children.items()
    ]
    error = ctx._link.request(lambda rid: RunGroupRequest(request_id=rid, children=specs))
    if error is not None:
        raise SupervisionError(error)


def logger(ctx: Context) -> logging.Logger:
    """The leveled logger of this node (any `logging` call lands here too)."""
    return logging.getLogger("nodecontainerd.node")


def raw_logger(
    ctx: Context,
    attribute: Callable[[Batch], None] | None = None,
    hold: Callable[[Batch, int], int] | None = None,
) -> RawLog:
    """The raw (bytes, split into lines) logger of this node.

    Its lines are parsed in this process when the node's `raw_format` says so.

    Args:
        ctx: the node's context.
        attribute: the parser's attribution hook (see `RawLog`); only the first call
            of a node, which makes its raw logger, passes it.
        hold: the parser's `hold` hook, with `attribute`.
    """
    with ctx._lock:
        if ctx._raw is None:
            ctx._raw = RawLog(ctx._link, parse=ctx.raw_format, attribute=attribute, hold=hold)
        return ctx._raw


def sub_logger(ctx: Context, name: str) -> logging.Logger:
    """Reserve `name` and return a leveled logger on DN `<node>.<name>`."""
    error = ctx._link.request(lambda rid: SubLoggerRequest(request_id=rid, name=name))
    if error is not None:
        raise SupervisionError(error)
    return logging.getLogger(SUB_LOGGER_PREFIX + name)


def add_metric(
    ctx: Context, name: str, value: float = 1, labels: Mapping[str, str] | None = None
) -> None:
    """Add `value` to the agent's counter `name` (exported when metrics are enabled).

    The root checks the name against the counters it knows and drops (with a
    warning on this node's DN) one it does not. A metric that cannot be sent at all
    (a label that does not encode, such as a file name that is not UTF-8) is
    dropped here with a warning: a metric never ends the runnable that counts.
    """
    _send_metric(ctx, name=name, value=value, labels=dict(labels or {}))


def observe_metric(
    ctx: Context, name: str, value: float, labels: Mapping[str, str] | None = None
) -> None:
    """Observe `value` (seconds, bytes) in the agent's histogram `name` (any thread).

    As `add_metric`: the root drops a name it does not know (its buckets are the
    agent's, `actors.agent.histograms`), with a warning; a metric never ends the
    runnable.
    """
    _send_metric(ctx, name=name, value=value, labels=dict(labels or {}), kind="histogram")


def _send_metric(ctx: Context, **fields: Any) -> None:
    try:
        ctx._link.send(MetricAdd(**fields))
    except ProtocolError as e:
        logger(ctx).warning("metric %r not sent: %s", fields["name"], e)


def report_fact(ctx: Context, key: str, value: Any) -> None:
    """Tell the root a fact about what this runnable watches, as data (any thread).

    The root keeps the newest value per name for this node's DN and `status`
    shows it (`--json`: under the node's `facts`); a fact is never parsed from log
    text. `value` is what JSON holds, at most `messages.wire.MAX_FACT_SIZE`;
    None withdraws the fact.

    Raises:
        ProtocolError: `key` is not `[a-z0-9_]{1,64}`, or `value` is not JSON or too large.
    """
    ctx._link.send(FactReport(key=key, value=value))
