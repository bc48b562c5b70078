"""`node-containerd run`: the agent in the foreground.

Order of start-up: the state directory's lock (`state_lock`), the zygote the
runnables are forked from (`[supervisor] spawn`, `actors.supervisor.runtime.zygote`;
it loads their modules meanwhile), state directories
(0700), the built-in sandbox image's tarball (`actors.agent.sandbox`), the
generated containerd config and the default CNI network (`prepare_network`); the
log tree and its sinks (stderr with syslog priorities when it is the journal);
metrics (if enabled); the systemd notifier (if `NOTIFY_SOCKET` is set); the
supervision tree; the control socket; the metrics endpoint (with `/healthz`); the
registry entry (`actors.agent.registry`, so the CLI finds the agent from any
directory); then the root runnable. One `ExitStack` stops them in reverse order,
however the run ends. SIGTERM or SIGINT sends `STOPPING=1` and shuts the tree down
gracefully (every node is cancelled, children first, each SIGKILLed after its
grace period) and the agent exits 0. A failure that escalates past the root
(restart intensity reached at the root) stops the tree too, and the agent exits 1
with the reason on stderr and in systemd's status, so the init system sees it.
SIGHUP never stops it: it reopens the JSON log file and reloads the config
(`actors.agent.live`). When containerd first answers, one line says the agent is
up and where its things are (`actors.agent.terminal`).

What the machine refuses (a state directory that cannot be made, a log file or a
metrics port that cannot be had, another agent on the same state) is an
`AgentError`: one line naming the cause and the fix, never a traceback.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import sys
import threading
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from types import FrameType

from actors.agent.build_info import BuildInfoCollector, build_info_labels
from actors.agent.health import HEALTH_PATH, Health
from actors.agent.live import LogSinks, MetricsEndpoint, Reloader
from actors.agent.metrics import LOG_BYTES, Metrics
from actors.agent.process_metrics import ProcessCollector, agent_processes
from actors.agent.root import RUNNABLE_MODULES, root_spec
from actors.agent.sandbox import USER_CONFIG, SandboxChoice, SandboxImageError, prepare_sandbox
from actors.agent.state_lock import StateDirLocked, StateLock
from actors.agent.systemd.notifier import SystemdNotifier
from actors.agent.systemd.sdnotify import (
    NOTIFY_VARIABLES,
    NotifySender,
    NotifyUnsupported,
    take_environment,
)
from actors.agent.terminal import TerminalView, UpFacts, UpLine
from actors.config.load import DEFAULT_SOURCE
from actors.config.schema import AgentConfig
from actors.containerd.core.version import ContainerdVersionError
from actors.containerd.runtimes.binary import containerd_version
from actors.containerd.runtimes.cni import (
    REQUIRED_PLUGINS,
    DefaultNetwork,
    ensure_default_network,
    missing_plugins,
)
from actors.containerd.runtimes.config_file import write_containerd_config
from actors.containerd.runtimes.handlers import may_lower_oom_score, pod_runtime_settings
from actors.containerd.runtimes.runsc.access import AccessError
from actors.containerd.runtimes.runsc.state import prepare_runsc
from actors.exit_codes import ExitCode
from actors.logtree import LeveledEntry, LogTree, ParseFormat, Severity
from actors.supervisor.core.names import ROOT_DN
from actors.supervisor.runtime import clock
from actors.supervisor.runtime.actor import LogBytesSink, StateObserver, Supervisor
from actors.supervisor.runtime.spawn import ensure_std_fds
from actors.supervisor.runtime.zygote import Zygote

__all__ = ["AgentError", "prepare_network", "prepare_state", "run_agent"]

#: How long a graceful shutdown may take before the rest is killed.
SHUTDOWN_TIMEOUT = 120.0


class AgentError(Exception):
    """The agent cannot start: the text names the file and the cause."""


def _mkdir_private(path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, 0o700)


def prepare_state(cfg: AgentConfig) -> SandboxChoice:
    """Create the state directories, the built-in sandbox image, the containerd config
    and its default CNI network (`prepare_network`).

    Returns:
        CRI's sandbox image, and the tarball of the one built (`actors.agent.sandbox`).

    Raises:
        AgentError: a directory or file could not be made (full disk, permissions),
            naming the path and the cause.
    """
    where: Path = cfg.state_dir
    sandbox = USER_CONFIG
    try:
        for where in (
            cfg.state_dir,
            cfg.state_dir / "run",
            cfg.containerd.tmpdir,
            cfg.runsc.fifo.parent,
            cfg.control.socket.parent,
            cfg.containerd.address.parent,
        ):
            _mkdir_private(where)
        # The namespace Kubernetes sees, so an operator knows where to drop tarballs.
        where = cfg.preseed.dir / "k8s.io"
        where.mkdir(parents=True, exist_ok=True)
        if cfg.containerd.generate_config:
            where = cfg.containerd.config
            _mkdir_private(where.parent)
            where = cfg.state_dir / "runsc"
            runtimes_cfg = _prepare_runsc_or_drop_it(cfg)
            where = cfg.containerd.config
            # The binary says which containerd it is: its config layout and defaults.
            version = containerd_version(cfg.containerd.binary)
            # The node's own sandbox image, whose name CRI's config gives.
            sandbox = prepare_sandbox(runtimes_cfg, version)
            pods = pod_runtime_settings(
                runtimes_cfg,
                version=version,
                may_lower_oom=may_lower_oom_score(),
                is_dir=os.path.isdir,
                sandbox_image=sandbox.name,
            )
            write_containerd_config(runtimes_cfg, pods, version)
            where = cfg.cni.conf_dir
            prepare_network(cfg, pods.cni_bin_dirs)
    except SandboxImageError as e:
        raise AgentError(str(e)) from e
    except ContainerdVersionError as e:
        raise AgentError(f"cannot write the containerd config {str(where)!r}: {e}") from e
    except OSError as e:
        # A failed write (ENOSPC) carries no file name: name the file being made.
        raise AgentError(
            f"cannot prepare the state directory: {str(e.filename or where)!r}: {e.strerror or e}"
        ) from e
    return sandbox


def prepare_network(cfg: AgentConfig, searched: tuple[Path, ...]) -> None:
    """The default CNI network (`ensure_default_network`); warns of missing plugins.

    Args:
        cfg: the agent's config.
        searched: the CNI plugin directories the generated config names.
    """
    plan = ensure_default_network(cfg)
    # Another network's plugins are its own business; CRI runs `loopback` for every pod.
    default_in_use = plan in (DefaultNetwork.WRITE, DefaultNetwork.KEEP)
    missing = missing_plugins(
        searched,
        lambda p: p.is_file() and os.access(p, os.X_OK),
        REQUIRED_PLUGINS if default_in_use else ("loopback",),
    )
    if missing:
        dirs = ", ".join(repr(str(d)) for d in searched)
        print(
            f"node-containerd: warning: CNI plugins {', '.join(missing)} are not in {dirs}: "
            "pods with their own network namespace will not start; install them "
            "(Debian: apt-get install containernetworking-plugins) or set [cni] bin_dirs",
            file=sys.stderr,
        )


def _prepare_runsc_or_drop_it(cfg: AgentConfig) -> AgentConfig:
    """Prepares the runsc handler; without ACL support, `cfg` with no runsc binary.

    A file system that refuses the sandbox user's ACL costs the `runsc` handler
    (said on stderr), not the agent, unless runsc is the default runtime.
    """
    try:
        prepare_runsc(cfg)
    except AccessError as e:
        if cfg.cri.default_runtime == "runsc":
            raise AgentError(f"{e}; cri.default_runtime is 'runsc'") from e
        print(f"node-containerd: warning: no runsc runtime handler: {e}", file=sys.stderr)
        return dataclasses.replace(cfg, runsc=dataclasses.replace(cfg.runsc, binary=None))
    return cfg


def _log_bytes_counter(metrics: Metrics) -> LogBytesSink:
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


def _more_metrics(cfg: AgentConfig, metrics: Metrics, supervisor: Supervisor) -> None:
    """Per-process figures and the versions (`process_metrics`, `build_info`)."""

    def processes() -> list[tuple[str, str, int]]:
        try:
            nodes = supervisor.snapshot(timeout=2.0)
        except Exception:  # noqa: BLE001 - a busy or stopped tree: the agent's own figures only
            nodes = []
        return agent_processes(((n.dn, n.pid) for n in nodes), os.getpid())

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


def run_agent(cfg: AgentConfig, *, verbose: bool = False) -> int:
    """Run the agent until SIGTERM/SIGINT or a failure at the root; return the exit code.

    First of all it takes the state directory's lock (`state_lock`): a second agent
    on the same state directory is refused before it writes anything. What is
    started is stopped in reverse order by one `ExitStack`, whatever way the run
    ends (a signal, a failure at the root, an exception while starting). SIGHUP,
    from the first moment, never stops it: it reopens the JSON log file and reloads
    the config (`actors.agent.live`).

    Args:
        cfg: the checked config.
        verbose: show containerd's own INFO lines on stderr too (`TerminalView`).

    Raises:
        AgentError: the agent cannot start (the state directory is another agent's,
            or cannot be prepared, a log file or the metrics port cannot be had); the
            text names the cause.
    """
    ensure_std_fds()
    hup = threading.Event()
    previous = signal.signal(signal.SIGHUP, lambda _signum, _frame: hup.set())
    try:
        return _run_unlocked(cfg, verbose, hup)
    finally:
        signal.signal(signal.SIGHUP, previous)


def _run_unlocked(cfg: AgentConfig, verbose: bool, hup: threading.Event) -> int:
    try:
        lock = StateLock(cfg.state_dir)
    except StateDirLocked as e:
        raise AgentError(str(e)) from None
    except OSError as e:
        raise AgentError(
            f"cannot lock the state directory {str(cfg.state_dir)!r}: {e.strerror or e}"
        ) from e
    try:
        zygote = _start_zygote(cfg)
        try:
            return _run_locked(cfg, verbose, hup, zygote)
        finally:
            if zygote is not None:
                zygote.close()
    finally:
        lock.release()


def _start_zygote(cfg: AgentConfig) -> Zygote | None:
    """The zygote the runnables are forked from (`[supervisor] spawn = "zygote"`), or None.

    Started first, on this (the main) thread, so that it loads the runnables' modules
    while the state is prepared, and so that its death signal, and its children's,
    names a thread that lives as long as the agent. Without it (it cannot be
    spawned) the runnables start with exec, as the supervisor logs.
    """
    if cfg.supervisor.spawn != "zygote":
        return None
    # systemd's variables are the root's alone (`_systemd_notifier` takes them out of
    # the environment later): never a runnable's.
    env = {k: v for k, v in os.environ.items() if k not in NOTIFY_VARIABLES}
    zygote = Zygote(RUNNABLE_MODULES, env=env)
    try:
        zygote.start()
    except OSError:
        return zygote  # the supervisor logs its absence at the first spawn
    return zygote


def _open_to_others(
    cfg: AgentConfig,
    supervisor: Supervisor,
    metrics: Metrics | None,
    health: Health,
    stack: ExitStack,
    log: Callable[[Severity, str], None],
) -> MetricsEndpoint | None:
    """Serves the control socket and the metrics page (if on); the metrics endpoint.

    The metrics page has the per-process figures and the versions (`_more_metrics`)
    and `/healthz` (`health`); where it listens is logged once it does.

    Raises:
        AgentError: the socket is another agent's, or the metrics port is taken.
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
    if metrics is None:
        return None
    _more_metrics(cfg, metrics, supervisor)
    endpoint = _serve_metrics(cfg, metrics, health)
    stack.callback(endpoint.shutdown)
    log(
        Severity.INFO,
        f"metrics at {endpoint.url}, health at {endpoint.url.removesuffix('/metrics')}"
        f"{HEALTH_PATH}",
    )
    return endpoint


def _run_locked(
    cfg: AgentConfig, verbose: bool, hup: threading.Event, zygote: Zygote | None
) -> int:
    """`run_agent` once this process holds the state directory's lock."""
    sandbox = prepare_state(cfg)
    tree = LogTree()
    for pattern, fmt in cfg.log.parse.items():
        tree.set_parse(pattern, ParseFormat(fmt))
    with ExitStack() as stack:
        sinks = _start_sinks(cfg, tree, verbose)
        stack.callback(sinks.stop)
        stack.callback(tree.flush_all_raw)
        up = UpLine(lambda text: _root_log(tree, "daemon.py")(Severity.INFO, text))
        observers: list[StateObserver] = [up.observe_state]
        metrics = Metrics(tree) if cfg.metrics.enabled else None
        health = Health()
        if metrics is not None:
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
        endpoint = _open_to_others(
            cfg, supervisor, metrics, health, stack, _root_log(tree, "daemon.py")
        )
        up.facts = _register(cfg, endpoint, stack)
        reloader = Reloader(
            cfg, sinks=sinks, tree=supervisor, endpoint=endpoint, log=_root_log(tree, "live.py")
        )
        supervisor.start()
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
