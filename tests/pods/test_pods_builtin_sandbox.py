"""The node's own sandbox image, with nothing preseeded: the README's quickstart runs pods.

Each agent here runs on the default profile with a fresh state directory and an empty
preseed directory (no `[cri] sandbox_image`): the agent builds its sandbox image from
catatonit, imports and pins it, and CRI uses it under runc and runsc, on this containerd
and, with the same state directory, on a newer release of the matrix. Deleted with
`ctr`, it comes back pinned and pods start; as a pod's PID 1 it reaps the orphans of
the pod's containers (issue 19).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from actors.containerd.api.client import ContainerdClient
from actors.containerd.api.cri import PodRun
from actors.containerd.core.version import ContainerdVersion
from actors.containerd.runtimes.binary import containerd_version
from actors.containerd.runtimes.handlers import default_sandbox_image
from actors.images import FileEntry, ImageSpec, make_layer, write_oci_archive
from actors.images.pause import write_pause_archive
from actors.preseed.service.pins import PINNED_LABEL, PRESEEDED_LABEL
from messages.containerd.services.images.v1 import images_pb2 as ipb
from messages.cri.runtime.v1 import api_pb2 as cri
from scripts.containerd_versions import SUITES, bin_dir, cached_version
from tests.support.agent import AgentUnderTest
from tests.support.pods import RUNC_NET, runsc_network_line
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.containerd, pytest.mark.pods, pytest.mark.timeout(300)]

CATATONIT = shutil.which("catatonit")
#: How long a pod's sandbox, or a container of the pause image, may take to stop.
STOP_WITHIN = 1.0
#: The promise: the node's own sandbox image, deleted, is back within this many seconds.
HEAL_SECONDS = 2.0
#: An application image of Debian's static busybox, written with the project's own writer.
APP = "localhost/test/busybox:1"


def builtin_agent(extra: str = "", env: dict[str, str] | None = None) -> AgentUnderTest:
    """An agent on the default profile (its own sandbox image) with nothing preseeded, ready."""
    base = Path(tempfile.mkdtemp(prefix="nc-pod-", dir="/tmp"))
    os.chmod(base, 0o711)  # gVisor's sandbox user must search the state dir's ancestors
    # Its own network namespace: check runs pods with their own network.
    agent = AgentUnderTest(base, config=base / "agent.toml", own_netns=True)
    (base / "agent.toml").write_text(f'state_dir = "{agent.state}"\n{extra}')
    agent.env.update(env or {})
    try:
        agent.start()
        agent.wait_ready()
    except BaseException:
        agent.cleanup()
        raise
    return agent


def expected_image() -> tuple[str, str]:
    """The built-in image's name and digest, as this machine's catatonit makes it."""
    assert CATATONIT is not None, "catatonit: run scripts/setup"
    with tempfile.TemporaryDirectory() as tmp:
        image = write_pause_archive(Path(CATATONIT), Path(tmp) / "pause.tar")
    return image.name, image.digest


def image_of(agent: AgentUnderTest, name: str) -> ipb.Image:
    with ContainerdClient(str(agent.state / "containerd" / "containerd.sock")) as client:
        reply = client.call(
            client.images.Get, ipb.GetImageRequest(name=name), what="get", namespace="k8s.io"
        )
    image: ipb.Image = reply.image
    return image


def check(agent: AgentUnderTest) -> list[str]:
    r = agent.cli("check", "--config", str(agent.config), check=False, timeout=200)
    return r.stdout.splitlines()


def check_passes(agent: AgentUnderTest, name: str) -> list[str]:
    sock = agent.state / "containerd" / "containerd.sock"
    return [
        f"containerd answers on {str(sock)!r}: ok",
        f"sandbox image {name!r} is present: ok",
        "pod under runc starts and exits 0: ok",
        f"{RUNC_NET}: ok",
        "pod under runsc starts and exits 0: ok",
        "runsc's debug lines reach root.containerd.runsc: ok",
        runsc_network_line(),
    ]


@pytest.fixture(scope="module")
def agent() -> Iterator[AgentUnderTest]:
    a = builtin_agent()
    try:
        yield a
    finally:
        a.cleanup()


def test_with_nothing_preseeded_check_passes_on_the_nodes_own_pinned_sandbox_image(
    agent: AgentUnderTest,
) -> None:
    name, digest = expected_image()
    assert name.startswith("localhost/node-containerd/pause:")
    assert list((agent.state / "preseed").rglob("*")) == [agent.state / "preseed" / "k8s.io"]
    image = image_of(agent, name)
    assert (image.target.digest, image.labels[PINNED_LABEL]) == (digest, "pinned")
    assert check(agent) == check_passes(agent, name)
    assert agent.client.sandbox_ids() == []


@pytest.mark.parametrize("handler", ["runc", "runsc"])
def test_the_pause_process_exits_0_on_sigterm_and_a_sandbox_stops_within_a_second(
    agent: AgentUnderTest, handler: str
) -> None:
    name, _ = expected_image()
    pod = PodRun(client=agent.client, handler=handler, log_dir=agent.base / "logs" / handler)
    try:
        sandbox = pod.start_sandbox()
        assert agent.client.sandbox_ready(sandbox)
        pod.start_container(name, None)  # the pause image's own entrypoint: /pause -P
        pod.wait_state((cri.CONTAINER_RUNNING,), timeout=60)
        started = time.monotonic()
        pod.stop_container(grace=10)
        status = pod.wait_state((cri.CONTAINER_EXITED,), timeout=10)
        stopped_container = time.monotonic() - started
        assert (status.exit_code, status.reason) == (0, "Completed")
        started = time.monotonic()
        request = cri.StopPodSandboxRequest(pod_sandbox_id=sandbox)
        agent.client.runtime.StopPodSandbox(request, timeout=30)
        stopped_sandbox = time.monotonic() - started
        assert not agent.client.sandbox_ready(sandbox)
    finally:
        pod.remove()
    took = f"{handler}: container stopped in {stopped_container:.2f}s, sandbox in {stopped_sandbox:.2f}s"
    assert max(stopped_container, stopped_sandbox) < STOP_WITHIN, took


def test_two_fresh_state_dirs_get_the_same_sandbox_image(agent: AgentUnderTest) -> None:
    name, digest = expected_image()
    other = builtin_agent()
    try:
        assert image_of(other, name).target.digest == image_of(agent, name).target.digest
        assert image_of(other, name).target.digest == digest
        tarball = Path("images") / "pause.tar"
        assert (other.state / tarball).read_bytes() == (agent.state / tarball).read_bytes()
    finally:
        other.cleanup()


def _newer_cached_release() -> tuple[str, Path] | None:
    """The newest containerd of the matrix's cache that is newer than the one on PATH."""
    running = containerd_version(shutil.which("containerd") or "containerd")
    newer = []
    for suite in SUITES:
        found = ContainerdVersion.find(f"containerd x {cached_version(suite) or ''}")
        if found is not None and found.release > running.release:
            newer.append((found.release, suite))
    if not newer:
        return None
    suite = max(newer)[1]
    return suite, bin_dir(suite)


def test_the_same_state_dir_starts_pods_on_a_newer_containerd_with_nothing_changed() -> None:
    newer = _newer_cached_release()
    if newer is None:
        pytest.skip(
            "no containerd newer than the one on PATH is cached: "
            "scripts/containerd-versions trixie sid"
        )
    suite, directory = newer
    name, _ = expected_image()
    first = builtin_agent()
    try:
        assert check(first) == check_passes(first, name)
        assert first.terminate() == 0
        # The node's containerd is upgraded: the same config, a newer binary first on PATH.
        first.env["PATH"] = f"{directory}:{os.environ['PATH']}"
        first.start()
        first.wait_ready()
        version = subprocess.run(
            [str(directory / "containerd"), "--version"], capture_output=True, text=True
        ).stdout
        assert first.client.version().runtime_version in version, suite
        assert check(first) == check_passes(first, name)
    finally:
        first.cleanup()


def test_without_a_pause_binary_the_warning_and_check_name_what_to_install() -> None:
    agent = builtin_agent('[cri]\npause_binary = "no-such-pause"\n')
    try:
        version = ContainerdVersion.find(agent.client.version().runtime_version)
        image = default_sandbox_image(version)
        where = str(agent.state / "preseed" / "k8s.io")
        message = (
            f"sandbox image {image!r} is missing from namespace 'k8s.io': pods cannot start "
            f"without a registry; copy its image tarball into {where!r}: the preseed's watch "
            "imports it when the copy is complete; no restart is needed; or install "
            "catatonit (Debian: apt-get install catatonit) and restart the agent, which then "
            "builds its own sandbox image"
        )
        status = agent.cli("status", "--config", str(agent.config)).stdout
        assert f"      warning: {message}\n" in status, status
        assert check(agent)[1] == (
            f"sandbox image {image!r} is present: FAIL: not in containerd's namespace "
            f"'k8s.io'; copy its image tarball into {where!r} (or install catatonit: Debian: "
            "apt-get install catatonit, and restart the agent, which then builds its own): "
            "the agent's preseed watch imports it as soon as the copy is complete, no restart "
            "needed"
        )
        assert not (agent.state / "images").exists()
    finally:
        agent.cleanup()


def _ctr(agent: AgentUnderTest, *args: str) -> None:
    sock = str(agent.state / "containerd" / "containerd.sock")
    subprocess.run(["ctr", "-a", sock, "-n", "k8s.io", *args], check=True, timeout=30)


def test_the_nodes_own_sandbox_image_deleted_with_ctr_is_back_pinned_and_a_pod_starts(
    agent: AgentUnderTest,
) -> None:
    name, digest = expected_image()
    assert image_of(agent, name).labels[PINNED_LABEL] == "pinned"

    _ctr(agent, "images", "rm", name)
    deleted = time.monotonic()
    wait_until(lambda: agent.client.image_present(name), 30, "the sandbox image back")
    back = time.monotonic() - deleted

    image = image_of(agent, name)
    archive = str(agent.state / "images" / "pause.tar")
    assert (image.target.digest, image.labels[PINNED_LABEL]) == (digest, "pinned")
    assert image.labels[PRESEEDED_LABEL] == archive
    said = agent.cli("logs", "root.containerd.preseed", "-n", "all").stdout
    assert (
        f"image {name!r} in namespace 'k8s.io' was deleted outside the agent; importing it "
        f"again from the tarball the agent built, {archive!r}"
    ) in said
    pod = PodRun(client=agent.client, handler="runc", log_dir=agent.base / "logs" / "heal")
    try:
        assert agent.client.sandbox_ready(pod.start_sandbox())
    finally:
        pod.remove()
    assert back < HEAL_SECONDS, back


def _app_image(agent: AgentUnderTest) -> None:
    """`APP` preseeded (a tarball renamed into the watched directory), and imported."""
    busybox = Path("/bin/busybox")
    assert busybox.exists(), "busybox-static: run scripts/setup"
    entries = [FileEntry(path="/bin/busybox", source=busybox, mode=0o755)]
    entries += [
        FileEntry(path=f"/bin/{applet}", kind="symlink", target="busybox")
        for applet in ("sh", "sleep")
    ]
    staged = agent.base / "busybox.tar"
    write_oci_archive(staged, [ImageSpec(name=APP, layers=(make_layer(entries),))])
    os.rename(staged, agent.state / "preseed" / "k8s.io" / "busybox.tar")
    wait_until(lambda: agent.client.image_present(APP), 60, f"{APP} imported")


def _status(pid: int) -> dict[str, str]:
    """`/proc/<pid>/status` as a dict; empty once the pid is gone."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return {}
    return dict(line.split(":\t", 1) for line in text.splitlines() if ":\t" in line)


def _in_pid_namespace_of(pid: int) -> dict[int, dict[str, str]]:
    """The live processes sharing `pid`'s PID namespace, by host pid, with their status."""
    namespace = os.readlink(f"/proc/{pid}/ns/pid")
    found = {}
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            if os.readlink(f"/proc/{entry}/ns/pid") != namespace:
                continue
        except OSError:
            continue  # gone, or a zombie whose namespaces are released
        status = _status(int(entry))
        if status:
            found[int(entry)] = status
    return found


def test_the_pause_process_reaps_the_orphans_of_a_pods_containers(
    agent: AgentUnderTest,
) -> None:
    """runc, the container in the sandbox's PID namespace (CRI's default, `POD`): a process
    whose parent exits is re-parented to the pause process, which reaps it when it ends.
    A zombie whose live parent never waits (the container's own `sleep`) is the control:
    it stays, so the scan does see zombies."""
    _app_image(agent)
    script = 'sh -c "sleep 8 &"; sleep 1 & exec sleep 3600'
    pod = PodRun(client=agent.client, handler="runc", log_dir=agent.base / "logs" / "reap")
    try:
        pod.start_sandbox()
        pod.start_container(APP, ["/bin/sh", "-c", script])
        pod.wait_state((cri.CONTAINER_RUNNING,), timeout=60)
        info = json.loads(agent.client.container_status_verbose(pod.container_id).info["info"])
        app = int(info["pid"])
        members = _in_pid_namespace_of(app)
        (pause,) = [p for p, s in members.items() if s["NSpid"].split()[-1] == "1"]
        assert Path(f"/proc/{pause}/cmdline").read_bytes() == b"/pause\0-P\0"

        def adopted_by_pause() -> dict[int, dict[str, str]]:
            return {p: s for p, s in _in_pid_namespace_of(app).items() if s["PPid"] == str(pause)}

        def orphan() -> int | None:
            found = [p for p, s in adopted_by_pause().items() if s["Name"] == "sleep"]
            return found[0] if found else None

        adopted = wait_until(orphan, 30, "the orphaned sleep re-parented to the pause process")
        children = Path(f"/proc/{app}/task/{app}/children")
        (child,) = wait_until(lambda: children.read_text().split(), 30, "the container's child")
        control = int(child)
        wait_until(lambda: not _status(adopted), 30, "the orphan reaped by the pause process")
        wait_until(
            lambda: _status(control).get("State", "").startswith("Z"), 30, "the control zombie"
        )
        assert _status(control)["PPid"] == str(app)  # never waited for: it stays a zombie
        # Nor did any other child of the pause process stay (runc's own setup leaves some).
        zombies = [p for p, s in adopted_by_pause().items() if s["State"].startswith("Z")]
        assert zombies == [], {p: _status(p).get("Name") for p in zombies}
    finally:
        pod.remove()


def test_a_preseeded_image_deleted_with_ctr_is_back_pinned_and_a_container_from_it_runs(
    agent: AgentUnderTest,
) -> None:
    if not agent.client.image_present(APP):
        _app_image(agent)
    wait_until(lambda: image_of(agent, APP).labels.get(PINNED_LABEL), 60, f"{APP} pinned")

    _ctr(agent, "images", "rm", APP)
    deleted = time.monotonic()
    wait_until(lambda: agent.client.image_present(APP), 30, f"{APP} back")
    back = time.monotonic() - deleted

    labels = image_of(agent, APP).labels
    assert (labels[PINNED_LABEL], labels[PRESEEDED_LABEL]) == ("pinned", "k8s.io/busybox.tar")
    pod = PodRun(client=agent.client, handler="runc", log_dir=agent.base / "logs" / "healed")
    try:
        pod.start_sandbox()
        pod.start_container(APP, ["/bin/sh", "-c", "echo healed"])
        status = pod.wait_state((cri.CONTAINER_EXITED,), timeout=60)
        assert (status.exit_code, pod.log_text().split()[-1]) == (0, "healed")
    finally:
        pod.remove()
    assert back < HEAL_SECONDS, back
