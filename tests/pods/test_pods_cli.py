"""The pod commands (`pods`, `ps`, `images`, `inspect`, `logs-of`, `stopp`, `rmp`) on real pods.

One agent for the module; one pod under runc and one under runsc, each with a busybox
container that writes a line on stdout and one on stderr, then waits. The commands
run as an operator types them, through the agent's CRI socket.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from actors.containerd.api.cri import PodRun
from messages.cri.runtime.v1 import api_pb2 as cri

pytestmark = [pytest.mark.containerd, pytest.mark.pods, pytest.mark.timeout(300)]

BUSYBOX = "example.test/busybox:1"
PAUSE = "example.test/pause:1"
SCRIPT = "echo hello from $0; echo to stderr >&2; exec sleep 1000"


@pytest.fixture(scope="module")
def pods(pod_agent) -> Iterator[dict[str, PodRun]]:
    """{handler: its running pod}."""
    started: dict[str, PodRun] = {}
    try:
        for handler in ("runc", "runsc"):
            pod = PodRun(
                client=pod_agent.client,
                handler=handler,
                log_dir=pod_agent.base / "cli-logs" / handler,
                name=f"cli-{handler}",
            )
            started[handler] = pod
            pod.start_sandbox()
            pod.start_container(BUSYBOX, ["/bin/sh", "-c", SCRIPT, handler], name=f"c-{handler}")
            pod.wait_state((cri.CONTAINER_RUNNING,), timeout=60)
        yield started
    finally:
        for pod in started.values():
            pod.remove()


def run(pod_agent, *args: str, code: int = 0) -> str:
    r = pod_agent.cli(*args, "--config", str(pod_agent.config), check=False)
    assert r.returncode == code, r.stdout + r.stderr
    return r.stdout if code == 0 else r.stderr


def test_pods_lists_both_pods_with_their_runtime_handlers(pod_agent, pods) -> None:
    listed = json.loads(run(pod_agent, "pods", "--json"))["pods"]
    mine = {p["name"]: p for p in listed if p["name"].startswith("cli-")}
    assert {name: (p["id"], p["state"], p["runtime_handler"]) for name, p in mine.items()} == {
        "cli-runc": (pods["runc"].sandbox_id, "READY", "runc"),
        "cli-runsc": (pods["runsc"].sandbox_id, "READY", "runsc"),
    }
    table = run(pod_agent, "pods").splitlines()
    assert table[0].split() == ["POD", "ID", "NAME", "NAMESPACE", "STATE", "RUNTIME", "CREATED"]
    [runsc] = [line for line in table if "cli-runsc" in line]
    assert runsc.split()[:5] == [
        pods["runsc"].sandbox_id[:13],
        "cli-runsc",
        "nc-check",
        "READY",
        "runsc",
    ]


def test_ps_lists_the_running_containers_and_images_the_images(pod_agent, pods) -> None:
    listed = json.loads(run(pod_agent, "ps", "--json"))["containers"]
    mine = {c["name"]: c for c in listed if c["name"].startswith("c-")}
    assert {name: (c["pod_id"], c["image"], c["state"]) for name, c in mine.items()} == {
        "c-runc": (pods["runc"].sandbox_id, BUSYBOX, "RUNNING"),
        "c-runsc": (pods["runsc"].sandbox_id, BUSYBOX, "RUNNING"),
    }
    images = json.loads(run(pod_agent, "images", "--json"))["images"]
    tags = {tag for image in images for tag in image["repo_tags"]}
    assert {BUSYBOX, PAUSE} <= tags
    table = run(pod_agent, "images").splitlines()
    assert table[0].split() == ["IMAGE", "TAG", "IMAGE", "ID", "SIZE"]
    assert any(line.split()[:2] == ["example.test/busybox", "1"] for line in table)


@pytest.mark.parametrize("handler", ["runc", "runsc"])
def test_logs_of_a_container_prints_what_it_wrote_from_its_cri_log(
    pod_agent, pods, handler: str
) -> None:
    container = pods[handler].container_id
    # stdout and stderr are two pipes: the log has their lines in either order.
    text = run(pod_agent, "logs-of", container[:12])
    assert sorted(text.splitlines()) == [f"hello from {handler}", "to stderr"]
    lines = [
        json.loads(line) for line in run(pod_agent, "logs-of", container, "--json").splitlines()
    ]
    assert sorted((e["stream"], e["line"]) for e in lines) == [
        ("stderr", "to stderr"),
        ("stdout", f"hello from {handler}"),
    ]
    assert run(pod_agent, "logs-of", f"c-{handler}", "-n", "1") == text.splitlines(True)[-1]


def test_inspect_shows_a_pod_a_container_and_an_image(pod_agent, pods) -> None:
    pod = pods["runsc"]
    summary = run(pod_agent, "inspect", "cli-runsc").splitlines()
    assert summary[0] == f"pod {pod.sandbox_id}"
    assert "  runtime:   runsc" in summary and "  state:     READY" in summary
    doc = json.loads(run(pod_agent, "inspect", pod.container_id[:10], "--json"))
    assert (doc["kind"], doc["id"]) == ("container", pod.container_id)
    assert doc["status"]["state"] == "CONTAINER_RUNNING"
    assert doc["status"]["metadata"]["name"] == "c-runsc"
    assert isinstance(doc["info"]["info"], dict)  # containerd's own JSON, parsed
    image = json.loads(run(pod_agent, "inspect", BUSYBOX, "--json"))
    assert image["kind"] == "image" and BUSYBOX in image["status"]["repo_tags"]


def test_an_unknown_or_ambiguous_id_fails_naming_it(pod_agent, pods) -> None:
    assert run(pod_agent, "inspect", "no-such-thing", code=1) == (
        "node-containerd: no pod or container or image 'no-such-thing'\n"
    )
    assert "names more than one" in run(pod_agent, "logs-of", "", code=1)


def test_stopp_stops_a_pod_and_rmp_removes_it(pod_agent, pods) -> None:
    pod = pods["runc"]
    assert json.loads(run(pod_agent, "stopp", "cli-runc", "--json")) == {
        "stopped": [pod.sandbox_id]
    }
    assert not pod_agent.client.sandbox_ready(pod.sandbox_id)
    assert run(pod_agent, "rmp", pod.sandbox_id[:8]) == f"removed pod {pod.sandbox_id}\n"
    assert pod.sandbox_id not in pod_agent.client.sandbox_ids()
    pod.sandbox_id = ""  # nothing left for the fixture to remove
