"""Fixtures of the log tree tests."""

from __future__ import annotations

import pytest
from logtree_helpers import FakeClock

from actors.logtree import LogTree


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def tree(clock: FakeClock) -> LogTree:
    return LogTree(clock=clock)
