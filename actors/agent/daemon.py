"""`node-containerd run`: the agent in the foreground.

Order of start-up: the state directory's lock (`state_lock`), state directories
(0700), the built-in sandbox image's tarball (`actors.agent.sandbox`), the
generated containerd config and the default CNI network (`prepare_network`); the
log tree and its sinks (stderr with syslog priorities when it is the journal);
metrics (if enabled); the systemd notifier (if `NOTIFY_SOCKET` is set); the
supervision tree; the control socket; the metrics endpoint; then the root
runnable. One `ExitStack` stops them in reverse order, however the run ends.
SIGTERM or SIGINT sends `STOPPING=1` and shuts the tree down gracefully (every
node is cancelled, children first, each SIGKILLed after its grace period) and
the agent exits 0. A failure that escalates past the root (restart intensity
reached at the root) stops the tree too, and the agent exits 1 with the reason
on stderr and in systemd's status, so the init system sees it.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import sys
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from types import FrameType

from actors.agent.build_info import BuildInfoCollector, build_info_labels
from actors.agent.health import HEALTH_PATH, Health
from actors.agent.metrics import LOG_BYTES, Metrics
from actors.agent.process_metrics import ProcessCollector, agent_processes
from actors.agent.root import root_spec
from actors.agent.sandbox import USER_CONFIG, SandboxChoice, SandboxImageError, prepare_sandbox
from actors.agent.state_lock import StateDirLocked, StateLock
from actors.agent.systemd.notifier import SystemdNotifier
from actors.agent.systemd.sdnotify import NotifySender, NotifyUnsupported, take_environment
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
from actors.logtree import (
    JsonLinesSink,
    LeveledEntry,
    LogTree,
    ParseFormat,
    Severity,
    StderrSink,
)
from actors.logtree.journal import stream_is_journal
from actors.supervisor.core.names import ROOT_DN
from actors.supervisor.runtime import clock
from actors.supervisor.runtime.actor import LogBytesSink, StateObserver, Supervisor
from actors.supervisor.runtime.spawn import ensure_std_fds

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


def _root_log(tree: LogTree) -> Callable[[Severity, str], None]:
    """Writes the agent's own lines (systemd notices) on DN `root`."""

    def log(severity: Severity, message: str) -> None:
        tree.write_leveled(
            LeveledEntry.from_message(
                ROOT_DN, severity, message, timestamp=clock.wall(), file="systemd.py"
            )
        )

    return log


def _stderr_is_journal() -> bool:
    try:
        return stream_is_journal(os.environ, sys.stderr.fileno())
    except (AttributeError, OSError, ValueError):
        return False  # stderr replaced by an object without a file descriptor


def _start_sinks(cfg: AgentConfig, tree: LogTree, stack: ExitStack) -> None:
    severity = cfg.log.min_severity
    if cfg.log.stderr:
        sink = StderrSink(tree, sys.stderr, min_severity=severity, journal=_stderr_is_journal())
        stack.callback(sink.stop, 5.0)
    if cfg.log.json_file is not None:
        json_sink = JsonLinesSink(tree, cfg.log.json_file, min_severity=severity)
        stack.callback(json_sink.stop, 5.0)


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


def run_agent(cfg: AgentConfig) -> int:
    """Run the agent until SIGTERM/SIGINT or a failure at the root; return the exit code.

    First of all it takes the state directory's lock (`state_lock`): a second agent
    on the same state directory is refused before it writes anything. What is
    started is stopped in reverse order by one `ExitStack`, whatever way the run
    ends (a signal, a failure at the root, an exception while starting).

    Raises:
        AgentError: the agent cannot start (the state directory is another agent's,
            or cannot be prepared); the text names the cause.
    """
    ensure_std_fds()
    try:
        lock = StateLock(cfg.state_dir)
    except StateDirLocked as e:
        raise AgentError(str(e)) from None
    except OSError as e:
        raise AgentError(
            f"cannot lock the state directory {str(cfg.state_dir)!r}: {e.strerror or e}"
        ) from e
    try:
        return _run_locked(cfg)
    finally:
        lock.release()


def _run_locked(cfg: AgentConfig) -> int:
    """`run_agent` once this process holds the state directory's lock."""
    sandbox = prepare_state(cfg)
    tree = LogTree()
    for pattern, fmt in cfg.log.parse.items():
        tree.set_parse(pattern, ParseFormat(fmt))
    with ExitStack() as stack:
        _start_sinks(cfg, tree, stack)
        stack.callback(tree.flush_all_raw)
        observers: list[StateObserver] = []
        metrics = Metrics(tree) if cfg.metrics.enabled else None
        health = Health()
        if metrics is not None:
            observers += [metrics.observe_state, health.observe_state]
        notifier = _systemd_notifier(tree)
        if notifier is not None:
            observers.append(notifier.observe_state)
        supervisor = Supervisor(
            root_spec(cfg, sandbox),
            metric_sink=metrics.add if metrics is not None else None,
            log_bytes=_log_bytes_counter(metrics) if metrics is not None else None,
            policies=cfg.policy_set(),
            log_tree=tree,
            observers=observers,
            fact_observers=[metrics.observe_fact] if metrics is not None else None,
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
        from actors.agent.control.server import ControlServer

        control = ControlServer(str(cfg.control.socket), supervisor)
        control.start()
        _teardown(stack, "stopping the control socket", control.stop, 1.0)
        if metrics is not None:
            _more_metrics(cfg, metrics, supervisor)
            server = metrics.serve(f"{cfg.metrics.host}:{cfg.metrics.port}", health)
            stack.callback(server.shutdown)
            _root_log(tree)(
                Severity.INFO,
                f"metrics at {server.url}, health at {server.url.removesuffix('/metrics')}"
                f"{HEALTH_PATH}",
            )
        supervisor.start()
        # Wait in short slices so that signal handlers run promptly.
        while not supervisor.wait(0.5):
            pass
        failure = supervisor.stop(timeout=SHUTDOWN_TIMEOUT)
        if notifier is not None:
            notifier.stopping("the tree has stopped" if failure is None else f"failed: {failure}")
    if failure is not None:
        print(f"node-containerd: stopped: {failure}", file=sys.stderr)
        return ExitCode.FAILURE
    return ExitCode.OK
