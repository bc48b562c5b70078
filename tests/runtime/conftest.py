"""Fixtures for system tests of the supervision runtime with real processes."""

from __future__ import annotations

from rt_helpers import harness, probe  # noqa: F401  (fixtures)
