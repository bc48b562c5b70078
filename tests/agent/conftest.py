"""Fixtures of the config and CLI tests."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.fixture
def env(short_dir: Path) -> dict[str, str]:
    """A minimal environment whose state directory lies in `short_dir`."""
    path = os.environ.get("PATH", os.defpath)
    return {"PATH": path, "NODE_CONTAINERD_STATE": str(short_dir / "s")}
