"""Fixtures of the pod tests: images built once, one agent per module."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.agent import AgentUnderTest
from tests.support.pods import pod_images as build_pod_images
from tests.support.pods import start_pod_agent


def _tools_missing() -> list[str]:
    tools = ("containerd", "runc", "runsc", "umoci", "skopeo")
    missing = [t for t in tools if shutil.which(t) is None]
    return missing + ([] if Path("/bin/busybox").exists() else ["busybox-static"])


@pytest.fixture(scope="session")
def pod_images() -> Iterator[dict[str, Path]]:
    """The test's pause and busybox images as oci-archive tarballs."""
    missing = _tools_missing()
    if missing:
        pytest.fail(f"missing {', '.join(missing)}: run scripts/setup")
    work = Path(tempfile.mkdtemp(prefix="nc-podimg-", dir="/tmp"))
    try:
        yield build_pod_images(work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


@pytest.fixture(scope="module")
def pod_agent(pod_images: dict[str, Path]) -> Iterator[AgentUnderTest]:
    """One agent for the tests of a module."""
    agent = start_pod_agent(pod_images)
    try:
        yield agent
    finally:
        agent.cleanup()
