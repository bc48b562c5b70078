"""Facts a runnable reports as data: from its process to the tree's status and observers."""

from __future__ import annotations

import time

import pytest

from actors.supervisor.core.events import FactChanged
from actors.supervisor.runtime.actor import Supervisor
from actors.supervisor.testing.harness import group_spec

pytestmark = pytest.mark.timeout(60)


def test_a_childs_facts_reach_the_status_and_the_fact_observers_newest_value_winning(probe):
    told: list[FactChanged] = []
    facts = {"sandbox_image": {"image": "pause:1", "present": False}, "count": 3}
    spec = group_spec(probe, {"f": ("reports_facts", {"facts": facts})}, done=False)
    sup = Supervisor(spec, fact_observers=[told.append])
    sup.start()
    try:
        probe.wait_for("root.f", "started")
        deadline = time.monotonic() + 10
        status = {n.dn: n for n in sup.snapshot()}
        while time.monotonic() < deadline and status["root.f"].facts != facts:
            time.sleep(0.02)
            status = {n.dn: n for n in sup.snapshot()}
        assert status["root.f"].facts == facts
        assert status["root"].facts == {}
        assert told == [FactChanged(dn="root.f", key=k, value=v) for k, v in facts.items()]
    finally:
        sup.stop(timeout=20)
