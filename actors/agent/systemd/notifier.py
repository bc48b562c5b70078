"""The agent under systemd: readiness, status, stopping and the watchdog, from one thread.

`SystemdNotifier` carries out what `ServiceState` decides and keeps systemd's
watchdog fed. It is created by the daemon only when `NOTIFY_SOCKET` is set.

Threads:
    * `SystemdNotifier.observe_state` is a `Supervisor` state observer: it runs on the
      supervisor actor's thread, feeds `ServiceState` under a lock and queues what it
      returns; it never does I/O.
    * `SystemdNotifier.stopping` runs in the main thread (from the signal handler or
      when the tree has ended).
    * The notifier's own thread (`nc-systemd`) sends the queued datagrams and, every
      half of `WATCHDOG_USEC`, pings the supervisor actor (a call through its mailbox
      that must be answered within a quarter of `WATCHDOG_USEC`). `WATCHDOG=1` is
      sent only when the ping was answered: a deadlocked or wedged root actor stops
      the keep-alives, and systemd kills and restarts the agent (`WatchdogSec=`).
      After `STOPPING=1` there are no more pings: systemd stops the watchdog when
      the service stops (`TimeoutStopSec=` bounds that), and the supervisor actor
      ends before the notifier does.
    * Until `READY=1`, the same thread asks `ServiceState.extend_timeout` every
      `EXTEND_EVERY` seconds and sends what it returns (`EXTEND_TIMEOUT_USEC=` while
      the initial preseed imports), so no fixed long `TimeoutStartSec=` is needed.

A datagram that cannot be sent (no listener, a full buffer) is reported once at
WARNING on DN `root` and the agent carries on: systemd's view is advisory, the
tree's work is not.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable

from actors.agent.systemd.sdnotify import NotifySender
from actors.agent.systemd.service_state import EXTEND_EVERY, ServiceState
from actors.logtree import Severity
from actors.supervisor.core.events import StateChanged
from actors.supervisor.runtime import clock

__all__ = ["SystemdNotifier"]

#: Logs one line on the agent's own DN (`root`).
LogFunction = Callable[[Severity, str], None]
#: Pings the supervisor actor: True when it answered within the seconds given.
PingFunction = Callable[[float], bool]

_CLOSE = object()


class SystemdNotifier:
    """Tells systemd when the agent is ready, what it is doing, and that it is alive.

    Args:
        sender: the socket to systemd's `NOTIFY_SOCKET`; closed by `close`.
        watchdog: seconds of systemd's watchdog (`WATCHDOG_USEC`), or None when off.
        log: writes a line on DN `root`.
    """

    def __init__(
        self,
        sender: NotifySender,
        *,
        watchdog: float | None,
        log: LogFunction,
    ) -> None:
        self._sender = sender
        self._watchdog = watchdog
        self._ping: PingFunction = lambda _timeout: False
        self._log = log
        self._state = ServiceState()
        self._lock = threading.RLock()
        self._queue: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._send_failed = False
        self._unanswered = False
        self.watchdog_pings = 0
        """`WATCHDOG=1` datagrams sent so far."""
        self._thread = threading.Thread(target=self._run, name="nc-systemd", daemon=True)

    @property
    def state(self) -> ServiceState:
        """The readiness and status the notifier has computed (read-only use)."""
        return self._state

    def start(self, ping: PingFunction) -> None:
        """Sends the first status line and starts the notifier's thread.

        Args:
            ping: asks the supervisor actor for an answer within the given seconds
                (`Supervisor.ping`); called from the notifier's thread.
        """
        self._ping = ping
        with self._lock:
            self._put(self._state.starting())
        self._thread.start()

    def observe_state(self, change: StateChanged, now: float) -> None:
        """A `Supervisor` state observer (actor thread; `now` unused); never blocks."""
        with self._lock:
            self._put(self._state.handle(change))

    def stopping(self, reason: str) -> None:
        """Sends `STOPPING=1` with a status naming `reason` (only the first call)."""
        with self._lock:
            self._put(self._state.stopping(reason))

    def close(self, timeout: float = 5.0) -> None:
        """Sends what is queued, stops the thread (within `timeout`) and the socket."""
        self._queue.put(_CLOSE)
        if self._thread.is_alive():
            self._thread.join(timeout)
        self._sender.close()

    def _put(self, assignments: list[str]) -> None:
        if assignments:
            self._queue.put(assignments)

    def _run(self) -> None:
        period = self._watchdog / 2 if self._watchdog is not None else None
        next_ping = clock.monotonic()
        next_extend = clock.monotonic() + EXTEND_EVERY
        timeout: float | None = 0.0  # first send what is queued, then ping
        while True:
            try:
                item = self._queue.get(timeout=timeout)
            except queue.Empty:
                item = None
            if item is _CLOSE:
                return
            if isinstance(item, list):
                self._send(item)
                if any(a.startswith("EXTEND_TIMEOUT_USEC=") for a in item):
                    next_extend = clock.monotonic() + EXTEND_EVERY
            deadlines: list[float] = []
            if clock.monotonic() >= next_extend:
                with self._lock:
                    extension = self._state.extend_timeout()
                if extension:
                    self._send(extension)
                next_extend = clock.monotonic() + EXTEND_EVERY
            if not self._state.ready and not self._state.shutting_down:
                deadlines.append(next_extend)
            if period is not None and not self._state.shutting_down:
                now = clock.monotonic()
                if now >= next_ping and item is None:
                    self._keep_alive(period / 2)
                    next_ping = max(next_ping + period, clock.monotonic())
                deadlines.append(next_ping)
            timeout = max(0.0, min(deadlines) - clock.monotonic()) if deadlines else None

    def _keep_alive(self, timeout: float) -> None:
        if not self._ping(timeout):
            if not self._unanswered:
                self._unanswered = True
                self._log(
                    Severity.ERROR,
                    f"the supervisor did not answer within {timeout:g}s: WATCHDOG=1 withheld "
                    "until it does (systemd restarts the agent when its WatchdogSec runs out)",
                )
            return
        if self._unanswered:
            self._unanswered = False
            self._log(Severity.WARNING, "the supervisor answers again: WATCHDOG=1 resumed")
        if self._send(["WATCHDOG=1"]):
            self.watchdog_pings += 1

    def _send(self, assignments: list[str]) -> bool:
        try:
            self._sender.send(*assignments)
        except OSError as e:
            if not self._send_failed:
                self._send_failed = True
                self._log(
                    Severity.WARNING,
                    f"cannot notify systemd at NOTIFY_SOCKET {self._sender.notify_socket!r}: "
                    f"{e.strerror or e}; {' '.join(assignments)!r} and later failures not sent",
                )
            return False
        return True
