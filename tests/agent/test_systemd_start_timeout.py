"""`EXTEND_TIMEOUT_USEC=` while a slow initial preseed imports, through the notifier's
own thread to a stand-in systemd socket: sent at the start of the import, repeated
every `EXTEND_EVERY`, and never after `READY=1`."""

from __future__ import annotations

import time

import pytest

from actors.agent.systemd import notifier as notifier_module
from actors.agent.systemd.notifier import SystemdNotifier
from actors.agent.systemd.sdnotify import NotifySender
from actors.supervisor.core.events import StateChanged
from actors.supervisor.core.states import NodeState
from tests.support.fake_systemd import FakeSystemd

pytestmark = pytest.mark.timeout(60)

C, P = "root.containerd", "root.containerd.preseed"
EXTEND = "EXTEND_TIMEOUT_USEC=60000000"


def _change(dn: str, old: NodeState | None, new: NodeState) -> StateChanged:
    return StateChanged(dn=dn, old=old, new=new)


def test_a_slow_preseed_keeps_extending_the_start_timeout_until_ready(short_dir, monkeypatch):
    monkeypatch.setattr(notifier_module, "EXTEND_EVERY", 0.2)
    systemd = FakeSystemd(str(short_dir / "notify"))
    notifier = SystemdNotifier(
        NotifySender(str(short_dir / "notify")), watchdog=None, log=lambda *_: None
    )
    try:
        notifier.start(lambda _timeout: True)
        notifier.observe_state(_change(C, None, NodeState.NEW), 0.0)
        notifier.observe_state(_change(P, None, NodeState.NEW), 0.0)
        time.sleep(0.5)  # containerd still starting: the start timeout is systemd's own
        assert systemd.count(EXTEND) == 0
        notifier.observe_state(_change(C, NodeState.NEW, NodeState.HEALTHY), 0.0)
        first = systemd.wait_for("STATUS=containerd is up; importing preseed images\n" + EXTEND)
        # The import takes a while: the extensions keep coming, one datagram each.
        for _ in range(3):
            first = systemd.wait_for(EXTEND, after=first + 1, timeout=5)
        notifier.observe_state(_change(P, NodeState.NEW, NodeState.HEALTHY), 0.0)
        ready = systemd.wait_for("READY=1\nSTATUS=ready: containerd is up, preseed finished")
        time.sleep(0.6)
        assert systemd.count(EXTEND, after=ready) == 0
    finally:
        notifier.close()
        systemd.close()
