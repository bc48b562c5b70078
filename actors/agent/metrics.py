"""Prometheus metrics of the agent: node states, transitions, restarts, preseed and log bytes.

Optional and off by default (`[metrics] enabled`). `Metrics` is a small thread-safe
registry written for exactly these metrics, rendered in the Prometheus text exposition
format 0.0.4 by hand (no prometheus_client dependency); `Metrics.serve` exposes it on
`GET /metrics` from a daemon thread, on loopback unless configured otherwise.

Metrics (the first two as Monogon's `osbase/supervisor` exports them):

=================================================  =======  ==========================
name                                               type     labels
=================================================  =======  ==========================
`monogon_supervisor_dn_state_total`              gauge    `dn`, `state`
`monogon_supervisor_dn_state_transition_count`   counter  `dn`, `old_state`,
                                                            `new_state`
`node_containerd_dn_restarts_total`              counter  `dn`
`node_containerd_preseed_bytes_total`            counter  set by the caller
`node_containerd_preseed_images_total`           counter  set by the caller
`node_containerd_log_bytes_total`                counter  set by the caller
=================================================  =======  ==========================

Rules:
    * States are spelled as in Go (`NODE_STATE_HEALTHY`). For every DN seen, the state
      gauge has one series per state: 1 for the current one, 0 for the others, as Go's
      `NotifyNodeState` sets them. A DN keeps its last state after it is forgotten.
    * A DN's first transition is counted from `NODE_STATE_DEAD`, as Go does ("assume
      previous state was Dead if this is the first time we see this DN"), so Monogon's
      dashboards read the same; restarts are counted apart, in
      `node_containerd_dn_restarts_total`: a start of a node that had a state before.
    * `Metrics.observe_state` runs on the supervisor actor's thread and only updates
      dicts under a lock; rendering copies under the same lock and formats outside it.
    * Label values are escaped (`\\`, `"`, newline); series are sorted, so the output
      is deterministic.
"""

from __future__ import annotations

import math
import socket
import threading
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from actors.supervisor.core.events import StateChanged
from actors.supervisor.core.states import NodeState

__all__ = [
    "CONTENT_TYPE",
    "COUNTERS",
    "LOG_BYTES",
    "PRESEED_BYTES",
    "PRESEED_IMAGES",
    "Metrics",
    "MetricsServer",
    "escape_label",
    "parse_listen",
]

#: Content type of the text exposition format.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

STATE_GAUGE = "monogon_supervisor_dn_state_total"
TRANSITIONS = "monogon_supervisor_dn_state_transition_count"
RESTARTS = "node_containerd_dn_restarts_total"

PRESEED_BYTES = "node_containerd_preseed_bytes_total"
PRESEED_IMAGES = "node_containerd_preseed_images_total"
LOG_BYTES = "node_containerd_log_bytes_total"
LIVENESS_SECONDS = "node_containerd_containerd_liveness_probe_seconds_total"
LIVENESS_PROBES = "node_containerd_containerd_liveness_probes_total"

#: Counters the agent feeds with `Metrics.add`, and their help texts: log bytes
#: per DN from the root's readers; preseed bytes and images per namespace from
#: `root.containerd.preseed`, containerd liveness probes from `root.containerd`
#: (both through `actors.supervisor.process.api.add_metric`).
COUNTERS: Mapping[str, str] = {
    PRESEED_BYTES: "Bytes of image content sent to containerd by the preseed",
    PRESEED_IMAGES: "Images created or updated by the preseed",
    LOG_BYTES: "Bytes of log data written into the log tree",
    LIVENESS_SECONDS: "Seconds spent in root.containerd's liveness probes of containerd",
    LIVENESS_PROBES: "Liveness probes of containerd by root.containerd, by result (ok, fail)",
}

_HELP = {
    STATE_GAUGE: "Total count of supervisor runnables, broken up by DN and state",
    TRANSITIONS: (
        "Total count of supervisor runnable state transitions, broken up by DN and "
        "(old_state, new_state) tuple"
    ),
    RESTARTS: "Restarts of a supervised node (starts after its first one), by DN",
}

_Labels = tuple[tuple[str, str], ...]


def escape_label(value: str) -> str:
    """Escapes a label value for the text format: backslash, double quote, newline."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def _format_value(value: float) -> str:
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == int(value) and abs(value) < 2**53:
        return str(int(value))
    return repr(float(value))


def _series(name: str, labels: _Labels, value: float) -> str:
    if not labels:
        return f"{name} {_format_value(value)}"
    inner = ",".join(f'{k}="{escape_label(v)}"' for k, v in labels)
    return f"{name}{{{inner}}} {_format_value(value)}"


class Metrics:
    """The agent's metrics registry. Every method may be called from any thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._state: dict[str, NodeState] = {}
        self._transitions: dict[tuple[str, str, str], int] = {}
        self._restarts: dict[str, int] = {}
        self._counters: dict[str, dict[_Labels, float]] = {name: {} for name in COUNTERS}

    def observe_state(self, action: StateChanged, now: float) -> None:
        """Records a node's state change; a `Supervisor` observer (`now` unused).

        Runs on the supervisor actor's thread; never blocks beyond a short lock.
        """
        old = action.old
        with self._lock:
            self._state[action.dn] = action.new
            first = old.value if old is not None else NodeState.DEAD.value
            key = (action.dn, first, action.new.value)
            self._transitions[key] = self._transitions.get(key, 0) + 1
            if old is not None and action.new is NodeState.NEW:
                self._restarts[action.dn] = self._restarts.get(action.dn, 0) + 1

    def add(self, name: str, value: float = 1, labels: Mapping[str, str] | None = None) -> None:
        """Adds `value` to the counter `name` (one of `COUNTERS`) for `labels`.

        Raises:
            ValueError: `name` is not a known counter, `value` is negative or not
                finite, or a label name is invalid.
            TypeError: a label value is not a string.
        """
        if name not in COUNTERS:
            raise ValueError(f"metric {name!r} is unknown: expected one of {sorted(COUNTERS)}")
        if not math.isfinite(value) or value < 0:
            raise ValueError(f"counter increment {value!r} of {name!r} is not a finite number >= 0")
        key = tuple(sorted((labels or {}).items()))
        for label, label_value in key:
            if not label.isidentifier() or label.startswith("__"):
                raise ValueError(f"label name {label!r} of {name!r} is invalid")
            if not isinstance(label_value, str):
                raise TypeError(
                    f"label {label!r} of {name!r} has a non-string value {label_value!r}"
                )
        with self._lock:
            series = self._counters[name]
            series[key] = series.get(key, 0) + value

    def render(self) -> str:
        """The whole registry in the Prometheus text format, ending with a newline."""
        with self._lock:
            states = dict(self._state)
            transitions = dict(self._transitions)
            restarts = dict(self._restarts)
            counters = {name: dict(series) for name, series in self._counters.items()}
        out: list[str] = []
        self._family(
            out,
            STATE_GAUGE,
            "gauge",
            _HELP[STATE_GAUGE],
            [
                ((("dn", dn), ("state", s.value)), 1.0 if s is state else 0.0)
                for dn, state in sorted(states.items())
                for s in NodeState
            ],
        )
        self._family(
            out,
            TRANSITIONS,
            "counter",
            _HELP[TRANSITIONS],
            [
                ((("dn", dn), ("new_state", new), ("old_state", old)), float(n))
                for (dn, old, new), n in sorted(transitions.items())
            ],
        )
        self._family(
            out,
            RESTARTS,
            "counter",
            _HELP[RESTARTS],
            [((("dn", dn),), float(n)) for dn, n in sorted(restarts.items())],
        )
        for name, help_text in COUNTERS.items():
            self._family(out, name, "counter", help_text, sorted(counters[name].items()))
        return "\n".join(out) + "\n"

    @staticmethod
    def _family(
        out: list[str], name: str, kind: str, help_text: str, series: list[tuple[_Labels, float]]
    ) -> None:
        out.append(f"# HELP {name} {_escape_help(help_text)}")
        out.append(f"# TYPE {name} {kind}")
        out.extend(_series(name, labels, value) for labels, value in series)

    def serve(self, listen: str | tuple[str, int]) -> MetricsServer:
        """Serves `GET /metrics` on `listen` from a daemon thread.

        Args:
            listen: `"host:port"` (`"[::1]:9464"` or `"::1:9464"` for IPv6) or a
                `(host, port)` pair; port 0 picks a free port (see
                `MetricsServer.server_address`).

        Returns:
            The running server; call `shutdown()` to stop it.

        Raises:
            ValueError: `listen` cannot be read.
            OSError: the address cannot be bound.
        """
        host, port = parse_listen(listen) if isinstance(listen, str) else listen
        server = MetricsServer((host, port), self)
        thread = threading.Thread(
            target=server.serve_forever, args=(0.1,), name="nc-metrics", daemon=True
        )
        thread.start()
        return server


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


class MetricsServer(ThreadingHTTPServer):
    """The HTTP server of `Metrics.serve`. Handlers run on per-request daemon threads."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], metrics: Metrics) -> None:
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        self.metrics = metrics
        super().__init__(address, _Handler)

    def shutdown(self) -> None:
        """Stops serving and closes the listening socket."""
        super().shutdown()
        self.server_close()

    @property
    def url(self) -> str:
        """The URL of the metrics page, e.g. `http://127.0.0.1:9464/metrics`."""
        host = str(self.server_address[0])
        shown = f"[{host}]" if ":" in host else host
        return f"http://{shown}:{self.server_port}/metrics"


class _Handler(BaseHTTPRequestHandler):
    server: MetricsServer

    def do_GET(self) -> None:
        if self.path.split("?", 1)[0] not in ("/metrics", "/metrics/"):
            self._reply(404, "text/plain; charset=utf-8", b"not found: try /metrics\n")
            return
        self._reply(200, CONTENT_TYPE, self.server.metrics.render().encode())

    def _reply(self, status: int, content_type: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Keeps request lines off stderr (the agent's log sink)."""
