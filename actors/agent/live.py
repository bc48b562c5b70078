"""The parts of the running agent a SIGHUP changes, and the reload that changes them.

`run_agent` owns one of each, all driven from its main thread:

* `LogSinks`: the log tree's sinks (stderr through `TerminalView`, the JSON file);
  `reopen` opens the JSON file anew (after logrotate moved it), `apply` takes new
  `[log]` settings (a sink turned on or off, another file, another severity).
* `MetricsEndpoint`: the metrics HTTP server; `move` serves on another address
  (the new one is bound before the old one is closed, so a failure keeps the old).
* `Reloader.reload`, on SIGHUP: reopens the JSON file, reads the config file again
  and, when it has no problems, carries out `actors.agent.reload.plan_reload`'s
  plan, logging one line per changed key on DN `root`. A config with problems is
  refused whole: its problems are logged as ERROR lines, exactly as `config check`
  prints them, and nothing changes.

Reloading runs in the main thread, between the waits of its loop; the signal
handler only sets a flag (`threading.Event`).
"""

from __future__ import annotations

import dataclasses
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from actors.agent.reload import plan_reload
from actors.agent.terminal import TerminalView
from actors.config import ConfigError, load_config
from actors.config.load import DEFAULT_SOURCE
from actors.config.schema import AgentConfig, LogSection
from actors.logtree import JsonLinesSink, LogTree, Severity, StderrSink
from actors.logtree.journal import stream_is_journal
from actors.supervisor.core.policy import PolicySet

if TYPE_CHECKING:  # loaded only when metrics are on (`actors.agent.running`)
    from actors.agent.health import Health
    from actors.agent.metrics import Metrics, MetricsServer

__all__ = ["LogSinks", "MetricsEndpoint", "Reloader", "RootLog"]

#: Writes one line of the agent's own on DN `root`.
RootLog = Callable[[Severity, str], None]


def _stderr_is_journal() -> bool:
    try:
        return stream_is_journal(os.environ, sys.stderr.fileno())
    except (AttributeError, OSError, ValueError):
        return False  # stderr replaced by an object without a file descriptor


class LogSinks:
    """The log tree's stderr and JSON file sinks, as `[log]` says.

    Args:
        tree: the log tree.
        log: the `[log]` settings to start with.
        view: what stderr shows (`TerminalView`).

    Raises:
        OSError: the JSON file cannot be opened.
    """

    def __init__(self, tree: LogTree, log: LogSection, view: TerminalView) -> None:
        self._tree = tree
        self._view = view
        self._stderr: StderrSink | None = None
        self._json: JsonLinesSink | None = None
        self._log = log
        if log.json_file is not None:
            self._json = self._open_json(log.json_file, log.min_severity)
        if log.stderr:
            self._stderr = self._open_stderr(log.min_severity)

    def _open_stderr(self, severity: Severity) -> StderrSink:
        return StderrSink(
            self._tree,
            sys.stderr,
            min_severity=severity,
            journal=_stderr_is_journal(),
            select=self._view,
        )

    def _open_json(self, path: Path, severity: Severity) -> JsonLinesSink:
        return JsonLinesSink(self._tree, path, min_severity=severity)

    def reopen(self) -> Path | None:
        """Opens the JSON file anew; its path, or None when there is none.

        Raises:
            OSError: it cannot be opened; the old one is still written.
        """
        if self._json is None:
            return None
        self._json.reopen()
        return self._json.path

    def apply(self, log: LogSection) -> LogSection:
        """Takes new `[log]` settings; returns those now in force.

        A JSON file that cannot be opened keeps the old file (the returned settings
        say so); everything else always applies.
        """
        old = self._log
        if log.json_file != old.json_file:
            try:
                new_json = (
                    None
                    if log.json_file is None
                    else self._open_json(log.json_file, log.min_severity)
                )
            except OSError:
                log = dataclasses.replace(log, json_file=old.json_file)
            else:
                if self._json is not None:
                    self._json.stop(5.0)
                self._json = new_json
        if log.stderr != old.stderr:
            if self._stderr is not None:
                self._stderr.stop(5.0)
                self._stderr = None
            else:
                self._stderr = self._open_stderr(log.min_severity)
        for sink in (self._stderr, self._json):
            if sink is not None:
                sink.set_min_severity(log.min_severity)
        self._log = log
        return log

    def stop(self) -> None:
        """Writes what is queued and stops both sinks."""
        for sink in (self._stderr, self._json):
            if sink is not None:
                sink.stop(5.0)


class MetricsEndpoint:
    """The metrics page's HTTP server, which a reload may move.

    Raises:
        OSError: the address cannot be bound.
    """

    def __init__(
        self, metrics: Metrics, host: str, port: int, health: Health | None = None
    ) -> None:
        self._metrics = metrics
        self._health = health
        self._server: MetricsServer = metrics.serve((host, port), health)

    @property
    def url(self) -> str:
        """The URL of the metrics page."""
        return self._server.url

    def move(self, host: str, port: int) -> None:
        """Serves on `host:port` instead.

        Raises:
            OSError: it cannot be bound; the old address is still served.
        """
        new = self._metrics.serve((host, port), self._health)
        old, self._server = self._server, new
        old.shutdown()

    def shutdown(self) -> None:
        """Stops serving."""
        self._server.shutdown()


class PolicyTarget(Protocol):
    """What takes new restart policies (the running `Supervisor`)."""

    def set_policies(self, policies: PolicySet, timeout: float = 10.0) -> None:
        """Replaces the tree's policies."""


class Reloader:
    """Carries out SIGHUP: reopen the JSON file, reload the config (see the module).

    Args:
        running: the config the agent started with.
        sinks: the log sinks.
        tree: the supervision tree, for the policies.
        endpoint: the metrics server, None when metrics are off.
        log: writes the agent's own lines on DN `root`.
    """

    def __init__(
        self,
        running: AgentConfig,
        *,
        sinks: LogSinks,
        tree: PolicyTarget,
        endpoint: MetricsEndpoint | None,
        log: RootLog,
    ) -> None:
        #: The config in force: the start's, with the live keys of every reload since.
        self.running = running
        self._sinks = sinks
        self._tree = tree
        self._endpoint = endpoint
        self._log = log

    @property
    def _file(self) -> str | None:
        source = self.running.source
        return None if source == DEFAULT_SOURCE else source

    def reload(self) -> None:
        """Reopens the JSON log file, then reloads the config file; never raises for
        what a file holds."""
        shown = repr(self._file) if self._file else "the default profile"
        self._log(Severity.INFO, f"SIGHUP: reopening the log file and reloading {shown}")
        try:
            path = self._sinks.reopen()
        except OSError as e:
            self._log(
                Severity.ERROR,
                f"cannot reopen the JSON log file {str(self._sinks_path())!r}: "
                f"{e.strerror or e}; still writing the old one",
            )
        else:
            if path is not None:
                self._log(Severity.INFO, f"reopened the JSON log file {str(path)!r}")
        try:
            loaded = load_config(self._file)
        except ConfigError as e:
            self._log(
                Severity.ERROR,
                f"config reload refused: {shown} has {len(e.problems)} problem(s), listed "
                "below; the agent keeps running on the config it has",
            )
            for problem in e.problems:
                self._log(Severity.ERROR, problem)
            return
        self._apply(loaded, shown)

    def _sinks_path(self) -> Path | None:
        return self.running.log.json_file

    def _apply(self, loaded: AgentConfig, shown: str) -> None:
        plan = plan_reload(self.running, loaded)
        effective = plan.effective
        if not plan.changes:
            self._log(Severity.INFO, f"config reload: nothing changed in {shown}")
            return
        keys = {c.key for c in plan.live}
        if keys & {"log.stderr", "log.json_file", "log.min_severity"}:
            log = self._sinks.apply(effective.log)
            if log.json_file != effective.log.json_file:
                self._log(
                    Severity.ERROR,
                    f"config reload: cannot open log.json_file {str(effective.log.json_file)!r}"
                    f"; still writing {str(log.json_file)!r}",
                )
                keys.discard("log.json_file")
            effective = dataclasses.replace(effective, log=log)
        if "metrics.listen" in keys and self._endpoint is not None:
            try:
                self._endpoint.move(effective.metrics.host, effective.metrics.port)
            except OSError as e:
                self._log(
                    Severity.ERROR,
                    f"config reload: cannot serve metrics on {effective.metrics.host}:"
                    f"{effective.metrics.port}: {e.strerror or e}; "
                    f"still serving {self._endpoint.url}",
                )
                keys.discard("metrics.listen")
                effective = dataclasses.replace(effective, metrics=self.running.metrics)
        if any(k.startswith("policy.") for k in keys):
            self._tree.set_policies(effective.policy_set())
        for change in plan.changes:
            if not change.live:
                self._log(Severity.WARNING, change.line)
            elif change.key in keys:
                self._log(Severity.INFO, change.line)
        self.running = effective
