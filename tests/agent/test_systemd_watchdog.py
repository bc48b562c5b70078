"""The notifier in front of a real Supervisor: status, stopping, and a watchdog that
stops when the root actor stops answering. A datagram socket stands in for systemd."""

from __future__ import annotations

import threading
import time

import pytest

from actors.agent.systemd.notifier import SystemdNotifier
from actors.agent.systemd.sdnotify import NotifySender
from actors.logtree import Severity
from actors.supervisor.core.events import RunnableSpec, StateChanged
from actors.supervisor.runtime.actor import Supervisor
from actors.supervisor.testing.kit import Probe
from tests.support.fake_systemd import FakeSystemd

pytestmark = pytest.mark.timeout(120)

#: systemd's WatchdogSec in the test: pings every 0.5 s, each answered within 0.25 s.
WATCHDOG = 1.0


class Blocker:
    """A state observer that, once armed, blocks the supervisor actor's thread."""

    def __init__(self) -> None:
        self.armed = threading.Event()
        self.blocked = threading.Event()
        self.release = threading.Event()

    def __call__(self, change: StateChanged, now: float) -> None:
        if self.armed.is_set():
            self.blocked.set()
            self.release.wait(60)


def test_watchdog_pings_stop_while_the_root_actor_is_deadlocked_and_resume_after(short_dir):
    systemd = FakeSystemd(str(short_dir / "notify"))
    probe = Probe(short_dir / "probe")
    lines: list[tuple[Severity, str]] = []
    notifier = SystemdNotifier(
        NotifySender(str(short_dir / "notify")),
        watchdog=WATCHDOG,
        log=lambda severity, text: lines.append((severity, text)),
    )
    blocker = Blocker()
    sup = Supervisor(
        RunnableSpec(
            target="actors.supervisor.testing.kit:becomes_healthy",
            args={"events": probe.events_path},
        ),
        observers=[notifier.observe_state, blocker],
    )
    try:
        notifier.start(sup.ping)
        sup.start()
        probe.wait_for("root", "started", timeout=30)
        assert systemd.wait_for("STATUS=starting containerd") == 0
        first = systemd.wait_for("WATCHDOG=1")
        systemd.wait_for("WATCHDOG=1", after=first + 1)

        # Deadlock the root actor: its next state change never returns.
        blocker.armed.set()
        sup.shutdown("test")
        assert blocker.blocked.wait(30)
        deadline = time.monotonic() + 30
        while not any(s is Severity.ERROR for s, _ in lines):
            assert time.monotonic() < deadline, lines
            time.sleep(0.05)
        assert lines[0] == (
            Severity.ERROR,
            "the supervisor did not answer within 0.25s: WATCHDOG=1 withheld until it does "
            "(systemd restarts the agent when its WatchdogSec runs out)",
        )
        silent_from = len(systemd)
        time.sleep(5 * WATCHDOG / 2)  # five ping periods, every one unanswered
        assert systemd.count("WATCHDOG=1", after=silent_from) == 0

        blocker.release.set()
        systemd.wait_for("WATCHDOG=1", after=silent_from)
        assert (Severity.WARNING, "the supervisor answers again: WATCHDOG=1 resumed") in lines
        assert sup.wait(30)
        notifier.stopping("the tree has stopped")
        stopping = systemd.wait_for("STOPPING=1\nSTATUS=stopping: the tree has stopped")
        sup.stop(timeout=30)
        time.sleep(WATCHDOG)  # two ping periods: no ping, so no error about a dead actor
        assert systemd.count("WATCHDOG=1", after=stopping + 1) <= 1  # one may be in flight
        assert [s for s, _ in lines].count(Severity.ERROR) == 1
    finally:
        blocker.release.set()
        sup.stop(timeout=30)
        notifier.close()
        probe.close()
        systemd.close()
    assert notifier.watchdog_pings >= 3
