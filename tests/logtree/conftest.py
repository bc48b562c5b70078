"""Fixtures of the log tree tests."""

from __future__ import annotations

import pytest

from actors.logtree import LogTree
from tests.support.log_entries import FakeClock


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def tree(clock: FakeClock) -> LogTree:
    return LogTree(clock=clock)
