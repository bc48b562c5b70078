"""A preseeded, unpacked image runs its first CRI container without an unpack step.

The agent runs containerd with `[debug] level = "debug"` (its own config file,
rendered as the agent would and given as `[containerd] config`), so containerd logs
each layer it applies: CRI unpacking an image lazily, when a container is created
from it, shows as containerd's debug entry "diff applied" naming the layer's
digest. With `[preseed] unpack = true` the layers are in the snapshotter before the
pod exists and no such entry comes during the container's start; with `unpack =
false` (the control) it does.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from actors.config.load import load_config
from actors.containerd.api.cri import PodRun
from actors.containerd.runtimes.binary import containerd_version
from actors.containerd.runtimes.config_file import render_containerd_config
from actors.containerd.runtimes.handlers import may_lower_oom_score, pod_runtime_settings
from messages.cri.runtime.v1 import api_pb2 as cri
from tests.support.agent import AgentUnderTest
from tests.support.images.tools import busybox_image
from tests.support.pods import agent_for_pods

pytestmark = [pytest.mark.containerd, pytest.mark.pods, pytest.mark.timeout(300)]

#: containerd's debug message for each layer its differ applies (diff/apply).
DIFF_APPLIED = "diff applied"
#: The image unpacked or not: busybox with a layer of its own (the pause image's
#: layer is the test busybox's, and the sandbox's start would unpack it).
IMAGE_REF = "example.test/busybox-unpack:1"
#: The `[debug]` table of the config the agent renders.
DEBUG_TABLE = '[debug]\n  address = ""\n'


def _blob(tar: tarfile.TarFile, digest: str) -> dict:
    member = tar.extractfile("blobs/" + digest.replace(":", "/"))
    assert member is not None, digest
    return json.load(member)


def layers_of(archive: Path) -> tuple[list[str], list[str]]:
    """The layer digests and diff IDs of the one image in an oci-archive."""
    with tarfile.open(archive) as tar:
        index = json.load(tar.extractfile("index.json"))  # type: ignore[arg-type]
        manifest = _blob(tar, index["manifests"][0]["digest"])
        config = _blob(tar, manifest["config"]["digest"])
    return [layer["digest"] for layer in manifest["layers"]], config["rootfs"]["diff_ids"]


@pytest.fixture(scope="module")
def image(pod_images: dict[str, Path]) -> Iterator[Path]:
    """The oci-archive of `IMAGE_REF`."""
    work = Path(tempfile.mkdtemp(prefix="nc-unpack-", dir="/tmp"))
    try:
        yield busybox_image(work, IMAGE_REF, files={"/unpack-test": b"a layer of its own\n"})
    finally:
        shutil.rmtree(work, ignore_errors=True)


def debug_agent(pause: Path, image: Path, unpack: bool) -> AgentUnderTest:
    """A started, ready agent whose containerd logs at debug level."""
    agent = agent_for_pods(
        Path(tempfile.mkdtemp(prefix="nc-pod-", dir="/tmp")),
        extra_config=f"[preseed]\nunpack = {str(unpack).lower()}\n",
    )
    try:
        cfg = load_config(agent.config)
        version = containerd_version(cfg.containerd.binary)
        pods = pod_runtime_settings(cfg, version=version, may_lower_oom=may_lower_oom_score())
        text = render_containerd_config(cfg, version, pods)
        assert DEBUG_TABLE in text, text
        own = agent.base / "containerd.toml"
        own.write_text(text.replace(DEBUG_TABLE, DEBUG_TABLE + '  level = "debug"\n'))
        with agent.config.open("a") as f:
            f.write(f'[containerd]\nconfig = "{own}"\n')
        agent.preseed(pause, image)
        agent.start()
        agent.wait_ready()
    except BaseException:
        agent.cleanup()
        raise
    return agent


def containerd_entries(agent: AgentUnderTest) -> list[dict]:
    out = agent.cli("logs", "root.containerd", "--json", "--config", str(agent.config)).stdout
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def snapshots(agent: AgentUnderTest) -> list[list[str]]:
    sock = agent.state / "containerd" / "containerd.sock"
    out = subprocess.run(
        ["ctr", "-a", str(sock), "-n", "k8s.io", "snapshots", "ls"],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout
    return [line.split() for line in out.splitlines()[1:]]


def applied_during_container_start(agent: AgentUnderTest, layers: list[str]) -> list[dict]:
    """Runs a runc pod and a container from `IMAGE_REF` to exit 0; containerd's "diff
    applied" entries of its layers between the sandbox's start and the
    container's start returning."""
    pod = PodRun(client=agent.client, handler="runc", log_dir=agent.base / "logs")
    try:
        pod.start_sandbox()
        after = max(e["seq"] for e in containerd_entries(agent))
        container = pod.start_container(IMAGE_REF, ["/bin/sh", "-c", "echo started"])
        status = pod.wait_state((cri.CONTAINER_EXITED,), timeout=60)
        assert (status.exit_code, status.reason) == (0, "Completed"), pod.log_text()
        started = f'StartContainer for "{container}" returns successfully'
        deadline = time.monotonic() + 30
        while True:
            entries = [e for e in containerd_entries(agent) if e["seq"] > after]
            if any(e.get("message") == started for e in entries):
                break
            assert time.monotonic() < deadline, f"no {started!r} in containerd's log in 30s"
            time.sleep(0.2)
    finally:
        pod.remove()
    return [
        e
        for e in entries
        if e.get("message") == DIFF_APPLIED and e.get("fields", {}).get("digest") in layers
    ]


def test_an_unpacked_preseeded_image_starts_a_container_without_applying_a_layer(
    pod_images: dict[str, Path], image: Path
) -> None:
    layers, diff_ids = layers_of(image)
    agent = debug_agent(pod_images["pause"], image, unpack=True)
    try:
        committed = {row[0] for row in snapshots(agent) if row[-1] == "Committed"}
        # One layer: its chain ID is its diff ID.
        assert len(diff_ids) == 1 and diff_ids[0] in committed, committed
        assert applied_during_container_start(agent, layers) == []
    finally:
        agent.cleanup()


def test_without_unpack_containerd_applies_the_layer_when_the_container_starts(
    pod_images: dict[str, Path], image: Path
) -> None:
    layers, diff_ids = layers_of(image)
    agent = debug_agent(pod_images["pause"], image, unpack=False)
    try:
        assert diff_ids[0] not in {row[0] for row in snapshots(agent)}
        applied = applied_during_container_start(agent, layers)
        assert [e["fields"]["digest"] for e in applied] == layers, applied
    finally:
        agent.cleanup()
