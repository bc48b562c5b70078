"""The running agent, once it holds the state directory's lock: its tree and what serves it.

`run_locked` is `actors.agent.daemon.run_agent`'s second half, imported only once
the zygote is on its way (this module loads most of the agent). In this order:
the state (`actors.agent.prepare`), the log tree and its sinks (stderr with syslog
priorities when it is the journal); metrics (if enabled, and only then are they
loaded); the systemd notifier (if `NOTIFY_SOCKET` is set); the supervision tree,
whose root runnable starts at once: containerd's start waits for nothing it does
not need. Then, while it starts, the control socket (gRPC and the plain socket
beside it), the registry entry (`actors.agent.registry`, so the CLI finds the
agent from any directory) and the "is up" line's facts. What may refuse the
start is settled before the tree runs, so a refusal leaves nothing behind: the
metrics endpoint (with `/healthz`) is bound first, and so is the control socket
when something is already at its path (another agent, another program, a file).
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Callable
from contextlib import ExitStack
from types import FrameType
from typing import TYPE_CHECKING

from actors.agent.daemon import AgentError
from actors.agent.live import LogSinks, MetricsEndpoint, Reloader
from actors.agent.prepare import prepare_state
from actors.agent.root import root_spec
from actors.agent.systemd.notifier import SystemdNotifier
from actors.agent.systemd.sdnotify import NotifySender, NotifyUnsupported, take_environment
from actors.agent.terminal import TerminalView, UpFacts, UpLine
from actors.config.load import DEFAULT_SOURCE
from actors.config.schema import AgentConfig
from actors.exit_codes import ExitCode
from actors.logtree import LeveledEntry, LogTree, ParseFormat, Severity
from actors.supervisor.core.names import ROOT_DN
from actors.supervisor.runtime import clock
from actors.supervisor.runtime.actor import LogBytesSink, StateObserver, Supervisor
from actors.supervisor.runtime.zygote import Zygote

if TYPE_CHECKING:
    from actors.agent.health import Health
    from actors.agent.metrics import Metrics

__all__ = ["SHUTDOWN_TIMEOUT", "run_locked"]

#: How long a graceful shutdown may take before the rest is killed.
SHUTDOWN_TIMEOUT = 120.0


def _log_bytes_counter(metrics: Metrics) -> LogBytesSink:
    from actors.agent.metrics import LOG_BYTES

    def count(dn: str, n: int) -> None:
        metrics.add(LOG_BYTES, n, {"dn": dn})

    return count


def _root_log(tree: LogTree, file: str = "systemd.py") -> Callable[[Severity, str], None]:
    """Writes the agent's own lines (systemd notices, reloads) on DN `root`."""

    def log(severity: Severity, message: str) -> None:
        tree.write_leveled(
            LeveledEntry.from_message(ROOT_DN, severity, message, timestamp=clock.wall(), file=file)
        )

    return log


def _start_sinks(cfg: AgentConfig, tree: LogTree, verbose: bool) -> LogSinks:
    try:
        return LogSinks(tree, cfg.log, TerminalView(verbose=verbose))
    except OSError as e:
        raise AgentError(
            f"cannot open the JSON log file {str(cfg.log.json_file)!r} (log.json_file): "
            f"{e.strerror or e}"
        ) from e


def _serve_metrics(cfg: AgentConfig, metrics: Metrics, health: Health) -> MetricsEndpoint:
    host, port = cfg.metrics.host, cfg.metrics.port
    try:
        return MetricsEndpoint(metrics, host, port, health)
    except OSError as e:
        shown = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        raise AgentError(
            f"cannot serve metrics on {shown}: {(e.strerror or str(e)).lower()}; stop what "
            "uses it, or choose another address with [metrics] listen"
        ) from e


def _register(cfg: AgentConfig, endpoint: MetricsEndpoint | None, stack: ExitStack) -> UpFacts:
    """Registers the agent (`actors.agent.registry`); what the up line says."""
    from actors.agent import __version__
    from actors.agent.registry import AgentEntry, register, registry_dir

    entry = AgentEntry(
        pid=os.getpid(),
        version=__version__,
        state_dir=str(cfg.state_dir),
        control_socket=str(cfg.control.socket),
        containerd_address=str(cfg.containerd.address),
        config=None if cfg.source == DEFAULT_SOURCE else os.path.abspath(cfg.source),
        cwd=os.getcwd(),
        metrics=None if endpoint is None else endpoint.url,
    )
    directory = registry_dir()
    try:
        registration = register(entry, directory)
    except OSError as e:
        print(
            f"node-containerd: warning: not registered in {str(directory)!r} "
            f"({e.strerror or e}): other commands find this agent only with "
            f"--state {cfg.state_dir}",
            file=sys.stderr,
        )
    else:
        _teardown(stack, "removing the registry entry", registration.remove)
    return UpFacts(
        version=entry.version,
        state_dir=entry.state_dir,
        control_socket=entry.control_socket,
        containerd_address=entry.containerd_address,
        metrics=entry.metrics,
        containerd_metrics=(
            f"http://{cfg.containerd.metrics_address}/v1/metrics"
            if cfg.containerd.metrics_address
            else None
        ),
    )


def _systemd_notifier(tree: LogTree) -> SystemdNotifier | None:
    """The notifier when systemd started us with `NOTIFY_SOCKET`, else None."""
    log = _root_log(tree)
    try:
        env = take_environment(os.environ, os.getpid())
        if env.socket is None:
            return None
        sender = NotifySender(env.socket)
    except (NotifyUnsupported, OSError) as e:
        log(Severity.WARNING, f"not notifying systemd: {e}")
        return None
    return SystemdNotifier(sender, watchdog=env.watchdog, log=log)


def _more_metrics(
    cfg: AgentConfig, metrics: Metrics, supervisor: Supervisor, zygote: Zygote | None
) -> None:
    """Per-process figures (the zygote's too, while one runs) and the versions
    (`process_metrics`, `build_info`)."""
    from actors.agent.build_info import BuildInfoCollector, build_info_labels
    from actors.agent.process_metrics import ProcessCollector, agent_processes

    def processes() -> list[tuple[str, str, int]]:
        try:
            nodes = supervisor.snapshot(timeout=2.0)
        except Exception:  # noqa: BLE001 - a busy or stopped tree: the agent's own figures only
            nodes = []
        zygote_pid = zygote.pid if zygote is not None else None
        return agent_processes(((n.dn, n.pid) for n in nodes), os.getpid(), zygote_pid=zygote_pid)

    metrics.registry.register(ProcessCollector(processes))
    labels = build_info_labels(cfg.containerd.binary, cfg.runsc.binary)
    metrics.registry.register(BuildInfoCollector(labels))


def _teardown(stack: ExitStack, what: str, step: Callable[..., object], *args: object) -> None:
    """Registers a teardown `step` whose failure is one warning line, not a traceback.

    Stopping must go on whatever one step meets (a read-only state directory, a
    full disk): the other steps still run, and the exit status stays the tree's.
    """

    def run() -> None:
        try:
            step(*args)
        except Exception as e:  # noqa: BLE001 - reported; the rest of the stop goes on
            print(f"node-containerd: warning: {what}: {e}", file=sys.stderr)

    stack.callback(run)


def _serve_control(
    cfg: AgentConfig, supervisor: Supervisor, metrics: Metrics | None, stack: ExitStack
) -> None:
    """Serves the control socket, and the plain socket beside it (loads grpc).

    Raises:
        AgentError: the socket is another agent's or another program's.
    """
    from actors.agent.control.server import ControlError, ControlServer

    control = ControlServer(
        str(cfg.control.socket),
        supervisor,
        observe=metrics.observe if metrics is not None else None,
        containerd_address=str(cfg.containerd.address),
    )
    try:
        control.start()
    except ControlError as e:
        raise AgentError(str(e)) from None
    _teardown(stack, "stopping the control socket", control.stop, 1.0)


def _control_path_taken(cfg: AgentConfig) -> bool:
    """Whether something other than nothing or a stale socket is at a control socket's
    path: then `_serve_control` may refuse, and runs before the tree starts."""
    from actors.agent.control.plain import plain_path
    from actors.agent.control.probe import SocketState, probe_socket

    free = (SocketState.MISSING, SocketState.REFUSED)
    path = str(cfg.control.socket)
    return probe_socket(path) not in free or probe_socket(plain_path(path)) not in free


def _open_metrics(
    cfg: AgentConfig,
    supervisor: Supervisor,
    metrics: Metrics,
    health: Health,
    stack: ExitStack,
    log: Callable[[Severity, str], None],
    zygote: Zygote | None,
) -> MetricsEndpoint:
    """Serves the metrics page: the per-process figures and the versions
    (`_more_metrics`) and `/healthz` (`health`); where it listens is logged.

    Raises:
        AgentError: the metrics port is taken.
    """
    from actors.agent.health import HEALTH_PATH

    _more_metrics(cfg, metrics, supervisor, zygote)
    endpoint = _serve_metrics(cfg, metrics, health)
    stack.callback(endpoint.shutdown)
    log(
        Severity.INFO,
        f"metrics at {endpoint.url}, health at {endpoint.url.removesuffix('/metrics')}"
        f"{HEALTH_PATH}",
    )
    return endpoint


def _metrics(tree: LogTree) -> tuple[Metrics, Health]:
    """The agent's metrics and `/healthz`'s state (`[metrics] enabled`): loaded only then."""
    from actors.agent.health import Health
    from actors.agent.metrics import Metrics

    return Metrics(tree), Health()


def run_locked(cfg: AgentConfig, verbose: bool, hup: threading.Event, zygote: Zygote | None) -> int:
    """`actors.agent.daemon.run_agent` once this process holds the state directory's lock.

    Args:
        cfg: the checked config.
        verbose: show containerd's own INFO lines on stderr too.
        hup: set by the SIGHUP handler: reload.
        zygote: the started zygote, or None (`[supervisor] spawn = "exec"`).

    Raises:
        AgentError: the agent cannot start; the text names the cause.
    """
    sandbox = prepare_state(cfg)
    tree = LogTree(max_entries_per_dn=cfg.log.keep)
    for pattern, fmt in cfg.log.parse.items():
        tree.set_parse(pattern, ParseFormat(fmt))
    with ExitStack() as stack:
        sinks = _start_sinks(cfg, tree, verbose)
        stack.callback(sinks.stop)
        stack.callback(tree.flush_all_raw)
        up = UpLine(lambda text: _root_log(tree, "daemon.py")(Severity.INFO, text))
        observers: list[StateObserver] = [up.observe_state]
        metrics, health = _metrics(tree) if cfg.metrics.enabled else (None, None)
        if metrics is not None and health is not None:
            observers += [metrics.observe_state, health.observe_state]
        notifier = _systemd_notifier(tree)
        if notifier is not None:
            observers.append(notifier.observe_state)
        supervisor = Supervisor(
            root_spec(cfg, sandbox),
            metric_sink=metrics.take if metrics is not None else None,
            log_bytes=_log_bytes_counter(metrics) if metrics is not None else None,
            policies=cfg.policy_set(),
            log_tree=tree,
            observers=observers,
            fact_observers=[metrics.observe_fact] if metrics is not None else None,
            zygote=zygote,
        )
        if notifier is not None:
            stack.callback(notifier.close)
            stack.callback(notifier.stopping, "the agent is exiting")
            notifier.start(supervisor.ping)

        def on_signal(signum: int, _frame: FrameType | None) -> None:
            reason = f"received {signal.Signals(signum).name}"
            if notifier is not None:
                notifier.stopping(reason)
            supervisor.shutdown(reason)

        for s in (signal.SIGTERM, signal.SIGINT):
            stack.callback(signal.signal, s, signal.signal(s, on_signal))
        stack.callback(supervisor.stop, timeout=SHUTDOWN_TIMEOUT)
        # What may refuse the start does so before anything runs; the rest of what
        # serves others comes while containerd starts.
        control_first = _control_path_taken(cfg)
        if control_first:
            _serve_control(cfg, supervisor, metrics, stack)
        endpoint = None
        if metrics is not None and health is not None:
            log = _root_log(tree, "daemon.py")
            endpoint = _open_metrics(cfg, supervisor, metrics, health, stack, log, zygote)
        supervisor.start()
        if not control_first:
            _serve_control(cfg, supervisor, metrics, stack)
        up.set_facts(_register(cfg, endpoint, stack))
        reloader = Reloader(
            cfg, sinks=sinks, tree=supervisor, endpoint=endpoint, log=_root_log(tree, "live.py")
        )
        # Wait in short slices so that signal handlers run promptly.
        while not supervisor.wait(0.2):
            if hup.is_set():
                hup.clear()
                reloader.reload()
        failure = supervisor.stop(timeout=SHUTDOWN_TIMEOUT)
        if notifier is not None:
            notifier.stopping("the tree has stopped" if failure is None else f"failed: {failure}")
    if failure is not None:
        print(f"node-containerd: stopped: {failure}", file=sys.stderr)
        return ExitCode.FAILURE
    return ExitCode.OK
