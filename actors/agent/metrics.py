"""Prometheus metrics of the agent, on `prometheus_client`.

Optional and off by default (`[metrics] enabled`). `Metrics` holds a
`CollectorRegistry` of our own (never the library's global one) with three
collectors, rendered by the library's text writer and served by the library's WSGI
app (`Metrics.serve`) on the configured address, loopback unless configured
otherwise, by a server of ours with bounded resources (see "Bounds" below).

===========================================================  =======  =====================
name                                                         type     labels
===========================================================  =======  =====================
`monogon_supervisor_dn_state_total`                        gauge    `dn`, `state`
`monogon_supervisor_dn_state_transition_count`             untyped  `dn`, `old_state`,
                                                                      `new_state`
`node_containerd_dn_restarts_total`                        counter  `dn`
`node_containerd_dn_state_age_seconds`                     gauge    `dn`
`node_containerd_dn_last_change_timestamp_seconds`         gauge    `dn`
`node_containerd_log_entries_dropped_total`                counter  (none)
`node_containerd_preseed_bytes_total`                      counter  `namespace`
`node_containerd_preseed_images_total`                     counter  `namespace`
`node_containerd_preseed_failures_total`                   counter  `namespace`, `file`
`node_containerd_log_bytes_total`                          counter  `dn`
`node_containerd_containerd_liveness_probes_total`         counter  `result`
`node_containerd_sandbox_image_present`                    gauge    `image`
any other `*_total` a runnable adds                        counter  its own
the histograms of `actors.agent.histograms.HISTOGRAMS`     histo.   their own
===========================================================  =======  =====================

Rules:
    * The two `monogon_supervisor_*` metrics keep Monogon's names, labels and state
      spellings (`NODE_STATE_HEALTHY`) so that Metropolis dashboards work unchanged.
      They predate the naming rules: the first is a gauge named `_total`, and the
      second a counter without `_total`, which `prometheus_client` cannot write as a
      counter (it appends `_total` to every counter), so it is served untyped under
      its Go name; `rate()` reads it the same. Every metric of ours follows the rules:
      counters end in `_total`, durations are in seconds.
    * For every DN seen, the state gauge has one series per state: 1 for the current
      one, 0 for the others, as Go's `NotifyNodeState` sets them. A DN keeps its last
      state after it is forgotten. Its first transition is counted from
      `NODE_STATE_DEAD`, as Go does; restarts (a start of a node that had a state
      before) are counted apart.
    * Counters arrive by name through `Metrics.add` (the root's log readers, and
      runnables' `add_metric` over the `MetricAdd` wire message). A known name
      (`COUNTERS`) is always rendered, with its help text; any other valid counter name
      is rendered from its first increment on.
    * Histograms arrive by name through `Metrics.observe` (runnables'
      `observe_metric`, `check`'s report over the control socket); only the names,
      labels and buckets of `actors.agent.histograms` are accepted.
    * `node_containerd_sandbox_image_present` is 1 while the sandbox image is in
      `k8s.io`, 0 while it is missing, and absent until the preseed first said: it
      follows the preseed's `sandbox_image` fact (`Metrics.observe_fact`), which
      comes from asking containerd, never from log text.
    * `Metrics.observe_state` and `observe_fact` run on the supervisor actor's thread
      and only update dicts under a lock; collection copies under the same lock at
      scrape time.

Bounds (what a local client or a hostile input can cost the root, whatever it does):
    * **Connections.** At most `MAX_CONNECTIONS` are served at once, each by one
      thread; one more is accepted and closed at once, without a thread. A
      connection has `READ_TIMEOUT` seconds per read or write and `REQUEST_DEADLINE`
      seconds to send its whole request: a client that sends half a request, or
      one byte at a time, or stops reading the answer, holds its slot at most that
      long. The library's own `start_http_server` has neither bound (a thread and
      a descriptor per connection, for ever): the issue 20 audit held 454 threads.
    * **Series.** A counter has at most `MAX_SERIES` label sets. An increment with
      a new label set beyond that is counted in the counter's *other* series, whose
      every label value is empty (`file=""`, which PromQL reads as no label). So
      10,000 junk preseed files are at most `MAX_SERIES` failure series, each of
      the first files by name and the rest together, not 10,000.
"""

from __future__ import annotations

import io
import math
import re
import socket
import threading
import time
from collections.abc import Iterator, Mapping
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

from prometheus_client import CollectorRegistry, generate_latest, make_wsgi_app
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    Metric,
    UnknownMetricFamily,
)
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, ThreadingWSGIServer
from prometheus_client.registry import Collector

from actors.agent.health import Health, health_app
from actors.agent.histograms import HistogramCollector
from actors.containerd.core.events import LIVENESS_PROBES
from actors.containerd.runtimes.sandbox_image import SANDBOX_IMAGE_FACT, SandboxImageState
from actors.logtree import LogTree
from actors.supervisor.core.events import FactChanged, StateChanged
from actors.supervisor.core.states import NodeState
from actors.supervisor.runtime import clock
from messages.wire import MetricAdd

__all__ = [
    "CONTENT_TYPE",
    "COUNTERS",
    "LOG_BYTES",
    "MAX_CONNECTIONS",
    "MAX_SERIES",
    "PRESEED_BYTES",
    "PRESEED_FAILURES",
    "PRESEED_IMAGES",
    "SANDBOX_PRESENT",
    "READ_TIMEOUT",
    "REQUEST_DEADLINE",
    "Metrics",
    "MetricsServer",
    "parse_listen",
]

#: Content type of the text exposition format the endpoint serves.
CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4
#: Connections of the endpoint served at once; more are closed at once.
MAX_CONNECTIONS = 16
#: Seconds one read or write of a connection may wait.
READ_TIMEOUT = 5.0
#: Seconds a connection has to send its whole request.
REQUEST_DEADLINE = 10.0
#: Label sets one counter keeps; increments of new ones beyond go to its other series.
MAX_SERIES = 100

STATE_GAUGE = "monogon_supervisor_dn_state_total"
TRANSITIONS = "monogon_supervisor_dn_state_transition_count"
RESTARTS = "node_containerd_dn_restarts_total"
STATE_AGE = "node_containerd_dn_state_age_seconds"
LAST_CHANGE = "node_containerd_dn_last_change_timestamp_seconds"
LOG_DROPPED = "node_containerd_log_entries_dropped_total"

PRESEED_BYTES = "node_containerd_preseed_bytes_total"
PRESEED_IMAGES = "node_containerd_preseed_images_total"
PRESEED_FAILURES = "node_containerd_preseed_failures_total"
LOG_BYTES = "node_containerd_log_bytes_total"
#: 1 while the sandbox image is present, 0 while missing (the preseed's fact).
SANDBOX_PRESENT = "node_containerd_sandbox_image_present"

#: Counters fed through `Metrics.add` that are always rendered, and their help texts:
#: log bytes per DN from the root's readers; preseed bytes, images and failed files
#: from `root.containerd.preseed`, containerd liveness probes from `root.containerd`
#: (both through `actors.supervisor.process.api.add_metric`).
COUNTERS: Mapping[str, str] = {
    PRESEED_BYTES: "Bytes of image content sent to containerd by the preseed",
    PRESEED_IMAGES: "Images created or updated by the preseed",
    PRESEED_FAILURES: "Preseed tarballs that failed to import, by file",
    LOG_BYTES: "Bytes of log data written into the log tree",
    LIVENESS_PROBES: "Liveness probes of containerd by root.containerd, by result (ok, fail)",
}

#: Help text of a counter a runnable adds that `COUNTERS` does not know.
OTHER_COUNTER_HELP = "Counter added by a runnable of the supervision tree"

#: A counter name: the exposition format's metric name, ending in `_total`.
_COUNTER_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*_total")
_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
#: Names our own collectors render; `Metrics.add` refuses them.
_RESERVED = (STATE_GAUGE, TRANSITIONS, RESTARTS, STATE_AGE, LOG_DROPPED)

_Labels = tuple[tuple[str, str], ...]


class _SupervisorCollector(Collector):
    """Node states, transitions, restarts and time in state, from the tree's changes."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.state: dict[str, NodeState] = {}
        self.since: dict[str, float] = {}
        self.changed: dict[str, float] = {}
        self.transitions: dict[tuple[str, str, str], int] = {}
        self.restarts: dict[str, int] = {}

    def collect(self) -> Iterator[Metric]:
        now = clock.monotonic()
        with self.lock:
            states = sorted(self.state.items())
            since = dict(self.since)
            changed = dict(self.changed)
            transitions = sorted(self.transitions.items())
            restarts = sorted(self.restarts.items())
        gauge = GaugeMetricFamily(
            STATE_GAUGE,
            "Total count of supervisor runnables, broken up by DN and state",
            labels=["dn", "state"],
        )
        for dn, current in states:
            for s in NodeState:
                gauge.add_metric([dn, s.value], 1.0 if s is current else 0.0)
        yield gauge
        counts = UnknownMetricFamily(
            TRANSITIONS,
            "Total count of supervisor runnable state transitions, broken up by DN and "
            "(old_state, new_state) tuple",
            labels=["dn", "old_state", "new_state"],
        )
        for (dn, old, new), n in transitions:
            counts.add_metric([dn, old, new], float(n))
        yield counts
        restarted = CounterMetricFamily(
            RESTARTS,
            "Restarts of a supervised node (starts after its first one), by DN",
            labels=["dn"],
        )
        for dn, n in restarts:
            restarted.add_metric([dn], float(n))
        yield restarted
        age = GaugeMetricFamily(
            STATE_AGE, "Seconds since the node entered its current state, by DN", labels=["dn"]
        )
        for dn, _ in states:
            age.add_metric([dn], max(0.0, now - since[dn]))
        yield age
        last = GaugeMetricFamily(
            LAST_CHANGE,
            "When the node entered its current state, in seconds since the Unix epoch, by DN",
            labels=["dn"],
        )
        for dn, _ in states:
            last.add_metric([dn], changed[dn])
        yield last


class _CounterCollector(Collector):
    """Counters added by name: the known `COUNTERS` always, others once added."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.series: dict[str, dict[_Labels, float]] = {name: {} for name in COUNTERS}

    def add(self, name: str, key: _Labels, value: float) -> None:
        """Adds to one series; a new one beyond `MAX_SERIES` goes to the other series."""
        with self.lock:
            series = self.series.setdefault(name, {})
            if key not in series and len(series) >= MAX_SERIES:
                key = tuple((label, "") for label, _ in key)
            series[key] = series.get(key, 0) + value

    def collect(self) -> Iterator[Metric]:
        with self.lock:
            copies = {name: sorted(s.items()) for name, s in self.series.items()}
        for name in sorted(copies):
            help_text = COUNTERS.get(name, OTHER_COUNTER_HELP)
            family = Metric(name.removesuffix("_total"), help_text, "counter")
            for labels, value in copies[name]:
                family.add_sample(name, dict(labels), value)
            yield family


class _FactCollector(Collector):
    """Gauges that follow the facts runnables report: the sandbox image's presence."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.sandbox: SandboxImageState | None = None

    def collect(self) -> Iterator[Metric]:
        with self.lock:
            sandbox = self.sandbox
        gauge = GaugeMetricFamily(
            SANDBOX_PRESENT,
            "1 while CRI's sandbox image is in containerd's namespace k8s.io, 0 while missing",
            labels=["image"],
        )
        if sandbox is not None:
            gauge.add_metric([sandbox.image], 1.0 if sandbox.present else 0.0)
        yield gauge


class _LogDropCollector(Collector):
    """Log entries dropped for readers that fell behind, read from the log tree."""

    def __init__(self, tree: LogTree) -> None:
        self.tree = tree

    def collect(self) -> Iterator[Metric]:
        family = CounterMetricFamily(
            LOG_DROPPED,
            "Log entries dropped for readers (stderr and JSON sinks, logs -f followers) "
            "that fell behind",
        )
        family.add_metric([], float(self.tree.missed_total()))
        yield family


class Metrics:
    """The agent's metrics registry. Every method may be called from any thread.

    Args:
        log_tree: the tree whose dropped entries are counted; None leaves that
            counter out.
    """

    def __init__(self, log_tree: LogTree | None = None) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self._tree = _SupervisorCollector()
        self._counters = _CounterCollector()
        self._facts = _FactCollector()
        self._histograms = HistogramCollector()
        self.registry.register(self._tree)
        self.registry.register(self._counters)
        self.registry.register(self._facts)
        self.registry.register(self._histograms)
        if log_tree is not None:
            self.registry.register(_LogDropCollector(log_tree))

    def observe_state(self, action: StateChanged, now: float) -> None:
        """Records a node's state change at monotonic time `now`; a `Supervisor` observer.

        Runs on the supervisor actor's thread; never blocks beyond a short lock.
        """
        old = action.old
        tree = self._tree
        with tree.lock:
            tree.state[action.dn] = action.new
            tree.since[action.dn] = now
            tree.changed[action.dn] = clock.wall()
            first = old.value if old is not None else NodeState.DEAD.value
            key = (action.dn, first, action.new.value)
            tree.transitions[key] = tree.transitions.get(key, 0) + 1
            if old is not None and action.new is NodeState.NEW:
                tree.restarts[action.dn] = tree.restarts.get(action.dn, 0) + 1

    def observe_fact(self, action: FactChanged) -> None:
        """Records a fact a runnable reported; a `Supervisor` fact observer.

        Runs on the supervisor actor's thread; never blocks beyond a short lock.
        """
        if action.key != SANDBOX_IMAGE_FACT:
            return
        state = SandboxImageState.from_fact(action.value)
        with self._facts.lock:
            self._facts.sandbox = state

    def add(self, name: str, value: float = 1, labels: Mapping[str, str] | None = None) -> None:
        """Adds `value` to the counter `name` for `labels`.

        Raises:
            ValueError: `name` is not a counter name (`[a-zA-Z_:][a-zA-Z0-9_:]*`
                ending in `_total`) or one our collectors render, `value` is
                negative or not finite, or a label name is invalid.
            TypeError: a label value is not a string.
        """
        if not _COUNTER_NAME.fullmatch(name) or name in _RESERVED:
            raise ValueError(
                f"metric {name!r} is not a counter name a runnable may add: expected "
                "[a-zA-Z_:][a-zA-Z0-9_:]* ending in '_total', and not one of "
                f"{sorted(_RESERVED)}"
            )
        if not math.isfinite(value) or value < 0:
            raise ValueError(f"counter increment {value!r} of {name!r} is not a finite number >= 0")
        key = tuple(sorted((labels or {}).items()))
        for label, label_value in key:
            if not _LABEL_NAME.fullmatch(label) or label.startswith("__"):
                raise ValueError(f"label name {label!r} of {name!r} is invalid")
            if not isinstance(label_value, str):
                raise TypeError(
                    f"label {label!r} of {name!r} has a non-string value {label_value!r}"
                )
        self._counters.add(name, key, value)

    def observe(self, name: str, value: float, labels: Mapping[str, str] | None = None) -> None:
        """Observes `value` in the histogram `name` for `labels`.

        Raises:
            ValueError: not a histogram of `actors.agent.histograms.HISTOGRAMS`, not its
                labels, or a value that is negative or not finite.
            TypeError: a label value is not a string.
        """
        self._histograms.observe(name, value, labels or {})

    def take(self, metric: MetricAdd) -> None:
        """Adds or observes what a runnable sent; the `Supervisor`'s metric sink.

        Raises:
            ValueError, TypeError: as `add` (a counter) or `observe` (a histogram).
        """
        if metric.kind == "histogram":
            self.observe(metric.name, metric.value, metric.labels)
        else:
            self.add(metric.name, metric.value, metric.labels)

    def render(self) -> str:
        """The whole registry in the Prometheus text format, ending with a newline."""
        return generate_latest(self.registry).decode()

    def serve(self, listen: str | tuple[str, int], health: Health | None = None) -> MetricsServer:
        """Serves the registry on `listen` with bounded connections (a daemon thread).

        Args:
            listen: `"host:port"` (`"[::1]:9464"` or `"::1:9464"` for IPv6) or a
                `(host, port)` pair; port 0 picks a free port (see
                `MetricsServer.server_address`).
            health: answers `GET /healthz` (`actors.agent.health`); None leaves it to
                the library (the metrics page).

        Returns:
            The running server; call `shutdown()` to stop it.

        Raises:
            ValueError: `listen` cannot be read.
            OSError: the address cannot be bound.
        """
        host, port = parse_listen(listen) if isinstance(listen, str) else listen
        app = make_wsgi_app(self.registry)
        if health is not None:
            app = health_app(app, health)
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        server_class = type("_Server", (_BoundedServer,), {"address_family": family})
        server: Any = make_server(
            host,
            port,
            app,
            server_class=server_class,
            handler_class=_DeadlineHandler,
        )
        thread = threading.Thread(target=server.serve_forever, name="nc-metrics", daemon=True)
        thread.start()
        return MetricsServer(server, thread)


class _BoundedServer(ThreadingWSGIServer):
    """The library's threading WSGI server, with at most `MAX_CONNECTIONS` at once."""

    #: Connections the kernel queues before they are accepted.
    request_queue_size = 2 * MAX_CONNECTIONS
    #: The slots of connections being served (made when the server starts listening).
    slots: threading.BoundedSemaphore

    def server_activate(self) -> None:
        """Starts listening, with `MAX_CONNECTIONS` free slots."""
        self.slots = threading.BoundedSemaphore(MAX_CONNECTIONS)
        super().server_activate()

    def process_request(self, request: Any, client_address: Any) -> None:
        """Serves a connection in a thread of its own if a slot is free, else closes it."""
        if not self.slots.acquire(blocking=False):
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self.slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        """The connection's thread: frees its slot when it ends."""
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.slots.release()


class _DeadlineReader(io.RawIOBase):
    """A connection's reads, each waiting at most `READ_TIMEOUT` and all ending by a deadline."""

    def __init__(self, sock: socket.socket, deadline: float) -> None:
        super().__init__()
        self._sock = sock
        self._deadline = deadline

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        left = self._deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("the request was not sent within its deadline")
        self._sock.settimeout(min(READ_TIMEOUT, left))
        return self._sock.recv_into(buffer)


class _DeadlineHandler(WSGIRequestHandler):
    """The WSGI handler with timeouts and a deadline for the request; logs nothing."""

    #: Seconds one read or write of the connection may wait.
    timeout = READ_TIMEOUT

    def setup(self) -> None:
        super().setup()
        deadline = time.monotonic() + REQUEST_DEADLINE
        self.rfile = io.BufferedReader(_DeadlineReader(self.connection, deadline))

    def handle(self) -> None:
        try:
            super().handle()
        except OSError:  # a timeout, a reset: the connection ends, its slot is free
            self.close_connection = True

    def log_message(self, format: str, *args: Any) -> None:
        """Logs nothing: a scrape is not news."""


def parse_listen(listen: str) -> tuple[str, int]:
    """Reads `"host:port"`; the host may be an IPv6 literal, bracketed or not.

    Raises:
        ValueError: no port, or a port that is not an integer in 0..65535.
    """
    host, sep, port_text = listen.rpartition(":")
    if not sep or not port_text.isdigit() or int(port_text) > 65535:
        raise ValueError(f"metrics listen address {listen!r} is invalid: expected host:port")
    host = host.removeprefix("[").removesuffix("]")
    return host or "127.0.0.1", int(port_text)


class MetricsServer:
    """The HTTP server of `Metrics.serve` and the thread serving it.

    Args:
        server: the WSGI server `start_http_server` returned.
        thread: its serving thread.
    """

    def __init__(self, server: Any, thread: threading.Thread) -> None:
        self._server = server
        self._thread = thread

    @property
    def server_address(self) -> tuple[str, int]:
        """The bound `(host, port)`."""
        address = self._server.server_address
        return str(address[0]), int(address[1])

    @property
    def url(self) -> str:
        """The URL of the metrics page, e.g. `http://127.0.0.1:9464/metrics`."""
        host, port = self.server_address
        shown = f"[{host}]" if ":" in host else host
        return f"http://{shown}:{port}/metrics"

    def shutdown(self) -> None:
        """Stops serving, closes the listening socket and waits for the thread."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5.0)
