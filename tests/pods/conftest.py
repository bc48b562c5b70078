"""Fixtures of the pod tests: images built once, one agent per module."""

from __future__ import annotations

import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from pod_agent import BUSYBOX_REF, PAUSE_REF, PodAgent, new_agent  # noqa: E402
from pod_images import PAUSE_ENTRYPOINT, busybox_image  # noqa: E402


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
        yield {
            "pause": busybox_image(work, PAUSE_REF, entrypoint=PAUSE_ENTRYPOINT, cmd=()),
            "busybox": busybox_image(work, BUSYBOX_REF),
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)


@pytest.fixture(scope="module")
def pod_agent(pod_images: dict[str, Path]) -> Iterator[PodAgent]:
    """One agent for the tests of a module."""
    agent = new_agent(pod_images)
    try:
        yield agent
    finally:
        agent.cleanup()
