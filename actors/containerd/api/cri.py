"""A small CRI client that runs one pod the way kubelet does, and cleans it up.

`CriClient` talks `runtime.v1` (`messages.cri.runtime.v1`) to containerd's CRI
plugin on containerd's own socket: what `check` needs, and the listing, status and
stop/remove calls of the pod commands (`actors.agent.pods_cli`). `PodRun` is one
pod: a sandbox with the host's network (no CNI needed) or, with `own_network`, a
network namespace of its own (set up by CRI with CNI), one container from an image,
its log under a directory of the caller's. Every wait has a deadline;
`PodRun.remove` stops and removes the sandbox (and so its containers) and is safe
to call in any state, more than once.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc

from messages.cri.runtime.v1 import api_pb2 as cri
from messages.cri.runtime.v1 import api_pb2_grpc as cri_grpc

__all__ = ["CriClient", "CriError", "PodRun"]

#: How often a wait looks at a container's state, in seconds.
_POLL = 0.05


class CriError(Exception):
    """A CRI call failed or a wait timed out; the text says which and why."""


def _code(error: CriError) -> grpc.StatusCode | None:
    """The gRPC status code under a `CriError`, if it came from a call."""
    cause = error.__cause__
    return cause.code() if isinstance(cause, grpc.Call) else None


def _rpc(what: str, call: Any, request: object, timeout: float) -> object:
    try:
        return call(request, timeout=timeout)
    except grpc.RpcError as e:
        raise CriError(f"{what} failed: {e.details() or e.code().name}") from e


class CriClient:
    """containerd's CRI services on `address` (a unix socket path)."""

    def __init__(self, address: str | Path, timeout: float = 60.0) -> None:
        self.channel = grpc.insecure_channel(f"unix://{address}")
        self.runtime = cri_grpc.RuntimeServiceStub(self.channel)
        self.images = cri_grpc.ImageServiceStub(self.channel)
        self.timeout = timeout

    def close(self) -> None:
        """Closes the channel."""
        self.channel.close()

    def version(self, timeout: float = 5.0) -> cri.VersionResponse:
        """The runtime's name and version (`containerd`, `1.6.20~ds1`)."""
        reply = _rpc("Version", self.runtime.Version, cri.VersionRequest(), timeout)
        assert isinstance(reply, cri.VersionResponse)
        return reply

    def status(self, verbose: bool = False) -> cri.StatusResponse:
        """The runtime's conditions (`RuntimeReady`, `NetworkReady`); `verbose` adds
        CRI's `info` (its config, and as `cniconfig` the CNI networks it loaded)."""
        reply = _rpc("Status", self.runtime.Status, cri.StatusRequest(verbose=verbose), 10)
        assert isinstance(reply, cri.StatusResponse)
        return reply

    def image_present(self, ref: str) -> bool:
        """Whether the image `ref` is in CRI's namespace (`k8s.io`)."""
        request = cri.ImageStatusRequest(image=cri.ImageSpec(image=ref))
        reply = _rpc("ImageStatus", self.images.ImageStatus, request, self.timeout)
        assert isinstance(reply, cri.ImageStatusResponse)
        return bool(reply.HasField("image"))

    def sandbox_ids(self, labels: dict[str, str] | None = None) -> list[str]:
        """Every pod sandbox CRI knows, or those carrying all of `labels`."""
        request = cri.ListPodSandboxRequest(
            filter=cri.PodSandboxFilter(label_selector=labels or {})
        )
        reply = _rpc("ListPodSandbox", self.runtime.ListPodSandbox, request, 10)
        assert isinstance(reply, cri.ListPodSandboxResponse)
        return [s.id for s in reply.items]

    def sandbox_named(self, name: str) -> str:
        """The ID of the sandbox whose metadata name is `name`; "" when there is none."""
        reply = _rpc("ListPodSandbox", self.runtime.ListPodSandbox, cri.ListPodSandboxRequest(), 10)
        assert isinstance(reply, cri.ListPodSandboxResponse)
        return next((s.id for s in reply.items if s.metadata.name == name), "")

    def remove_sandbox(self, sandbox_id: str) -> None:
        """`stop_pod` + `remove_pod` (its containers go with it); gone is fine."""
        try:
            self.stop_pod(sandbox_id)
        except CriError as e:
            if _code(e) != grpc.StatusCode.NOT_FOUND:
                raise
            return
        self.remove_pod(sandbox_id)

    def container_status(self, container_id: str) -> cri.ContainerStatus:
        """A container's CRI status."""
        request = cri.ContainerStatusRequest(container_id=container_id)
        reply = _rpc("ContainerStatus", self.runtime.ContainerStatus, request, self.timeout)
        assert isinstance(reply, cri.ContainerStatusResponse)
        return reply.status

    def sandbox_ip(self, sandbox_id: str) -> str:
        """The pod's IP address from CNI; "" for a host-network pod."""
        request = cri.PodSandboxStatusRequest(pod_sandbox_id=sandbox_id)
        reply = _rpc("PodSandboxStatus", self.runtime.PodSandboxStatus, request, self.timeout)
        assert isinstance(reply, cri.PodSandboxStatusResponse)
        return str(reply.status.network.ip)

    def list_pods(self) -> list[cri.PodSandbox]:
        """Every pod sandbox, in CRI's order."""
        reply = _rpc("ListPodSandbox", self.runtime.ListPodSandbox, cri.ListPodSandboxRequest(), 10)
        assert isinstance(reply, cri.ListPodSandboxResponse)
        return list(reply.items)

    def pod_status(self, sandbox_id: str) -> cri.PodSandboxStatusResponse:
        """A sandbox's status, verbose (`info` holds containerd's JSON about it)."""
        request = cri.PodSandboxStatusRequest(pod_sandbox_id=sandbox_id, verbose=True)
        reply = _rpc("PodSandboxStatus", self.runtime.PodSandboxStatus, request, self.timeout)
        assert isinstance(reply, cri.PodSandboxStatusResponse)
        return reply

    def list_containers(self) -> list[cri.Container]:
        """Every container of every sandbox, in CRI's order."""
        request = cri.ListContainersRequest()
        reply = _rpc("ListContainers", self.runtime.ListContainers, request, 10)
        assert isinstance(reply, cri.ListContainersResponse)
        return list(reply.containers)

    def container_stats(self, container_id: str) -> cri.ContainerStats:
        """A container's CPU, memory and writable-layer usage, as the runtime's shim reads it."""
        request = cri.ContainerStatsRequest(container_id=container_id)
        reply = _rpc("ContainerStats", self.runtime.ContainerStats, request, self.timeout)
        assert isinstance(reply, cri.ContainerStatsResponse)
        return reply.stats

    def container_status_verbose(self, container_id: str) -> cri.ContainerStatusResponse:
        """A container's status, verbose (`info` holds containerd's JSON about it)."""
        request = cri.ContainerStatusRequest(container_id=container_id, verbose=True)
        reply = _rpc("ContainerStatus", self.runtime.ContainerStatus, request, self.timeout)
        assert isinstance(reply, cri.ContainerStatusResponse)
        return reply

    def list_images(self) -> list[cri.Image]:
        """Every image of CRI's namespace (`k8s.io`)."""
        reply = _rpc("ListImages", self.images.ListImages, cri.ListImagesRequest(), 10)
        assert isinstance(reply, cri.ListImagesResponse)
        return list(reply.images)

    def image_status(self, ref: str) -> cri.ImageStatusResponse:
        """An image's status, verbose; `image` is unset when there is no such image."""
        request = cri.ImageStatusRequest(image=cri.ImageSpec(image=ref), verbose=True)
        reply = _rpc("ImageStatus", self.images.ImageStatus, request, self.timeout)
        assert isinstance(reply, cri.ImageStatusResponse)
        return reply

    def stop_pod(self, sandbox_id: str) -> None:
        """StopPodSandbox: stops its containers and its sandbox."""
        request = cri.StopPodSandboxRequest(pod_sandbox_id=sandbox_id)
        _rpc("StopPodSandbox", self.runtime.StopPodSandbox, request, self.timeout)

    def remove_pod(self, sandbox_id: str) -> None:
        """RemovePodSandbox: removes a stopped sandbox and its containers."""
        request = cri.RemovePodSandboxRequest(pod_sandbox_id=sandbox_id)
        _rpc("RemovePodSandbox", self.runtime.RemovePodSandbox, request, self.timeout)

    def sandbox_ready(self, sandbox_id: str) -> bool:
        """Whether the sandbox is SANDBOX_READY."""
        request = cri.PodSandboxStatusRequest(pod_sandbox_id=sandbox_id)
        reply = _rpc("PodSandboxStatus", self.runtime.PodSandboxStatus, request, self.timeout)
        assert isinstance(reply, cri.PodSandboxStatusResponse)
        return bool(reply.status.state == cri.SANDBOX_READY)


@dataclass
class PodRun:
    """One pod with one container, under one runtime handler."""

    #: The CRI client.
    client: CriClient
    #: The runtime handler (`runc`, `runsc`); "" is containerd's default.
    handler: str
    #: The pod's log directory (CRI writes `<log_dir>/<name>.log`).
    log_dir: Path
    #: The pod's name; unique by default.
    name: str = field(default_factory=lambda: f"nc-{uuid.uuid4().hex[:10]}")
    #: A network namespace of its own (CRI sets it up with CNI); False: the host's.
    own_network: bool = False

    #: The sandbox's labels (CRI's; `check` marks its pods with one, to find leftovers).
    labels: dict[str, str] = field(default_factory=dict)
    #: The pod's cgroup parent (cgroupfs form, e.g. `/kubepods/pod1`); "" is containerd's.
    cgroup_parent: str = ""
    #: Set by `start_sandbox`.
    sandbox_id: str = ""
    #: Set by `start_container` (the last container started).
    container_id: str = ""

    def config(self) -> cri.PodSandboxConfig:
        """The sandbox config: the host's network or its own, its log dir."""
        namespaces = cri.NamespaceOption(network=cri.POD if self.own_network else cri.NODE)
        return cri.PodSandboxConfig(
            metadata=cri.PodSandboxMetadata(name=self.name, uid=self.name, namespace="nc-check"),
            log_directory=str(self.log_dir),
            labels=self.labels,
            linux=cri.LinuxPodSandboxConfig(
                cgroup_parent=self.cgroup_parent,
                security_context=cri.LinuxSandboxSecurityContext(namespace_options=namespaces),
            ),
        )

    def start_sandbox(self) -> str:
        """RunPodSandbox; returns the sandbox ID.

        When it fails, CRI may keep the sandbox (NOTREADY: e.g. its network could not be
        torn down); its ID is then taken, so that `remove` removes it too.
        """
        request = cri.RunPodSandboxRequest(config=self.config(), runtime_handler=self.handler)
        try:
            reply = _rpc(
                f"RunPodSandbox under {self.handler!r}",
                self.client.runtime.RunPodSandbox,
                request,
                self.client.timeout,
            )
        except CriError:
            try:
                self.sandbox_id = self.client.sandbox_named(self.name)
            except CriError:
                pass  # the first error is the one to report
            raise
        assert isinstance(reply, cri.RunPodSandboxResponse)
        self.sandbox_id = reply.pod_sandbox_id
        return self.sandbox_id

    def start_container(
        self, image: str, command: list[str] | None, name: str = "c", memory_limit: int = 0
    ) -> str:
        """CreateContainer + StartContainer; `command` None runs the image's own.

        `memory_limit`: the container's memory limit in bytes (CRI's
        `memory_limit_in_bytes`); 0 sets none.
        """
        resources = cri.LinuxContainerResources(memory_limit_in_bytes=memory_limit)
        config = cri.ContainerConfig(
            metadata=cri.ContainerMetadata(name=name),
            image=cri.ImageSpec(image=image),
            command=command or [],
            log_path=f"{name}.log",
            linux=cri.LinuxContainerConfig(resources=resources),
        )
        request = cri.CreateContainerRequest(
            pod_sandbox_id=self.sandbox_id, config=config, sandbox_config=self.config()
        )
        what = f"CreateContainer from {image!r} under {self.handler!r}"
        reply = _rpc(what, self.client.runtime.CreateContainer, request, self.client.timeout)
        assert isinstance(reply, cri.CreateContainerResponse)
        self.container_id = reply.container_id
        start = cri.StartContainerRequest(container_id=self.container_id)
        _rpc("StartContainer", self.client.runtime.StartContainer, start, self.client.timeout)
        return self.container_id

    def wait_state(self, states: tuple[int, ...], timeout: float) -> cri.ContainerStatus:
        """Waits until the container is in one of `states`; returns its status."""
        deadline = time.monotonic() + timeout
        while True:
            status = self.client.container_status(self.container_id)
            if status.state in states:
                return status
            if time.monotonic() >= deadline:
                state = cri.ContainerState.Name(status.state)
                short = self.container_id[:12]
                raise CriError(f"container {short} still {state} after {timeout:g}s")
            time.sleep(_POLL)

    def stop_container(self, grace: int = 10) -> None:
        """StopContainer: SIGTERM, SIGKILL after `grace` seconds."""
        request = cri.StopContainerRequest(container_id=self.container_id, timeout=grace)
        _rpc("StopContainer", self.client.runtime.StopContainer, request, grace + 30)

    def log_text(self) -> str:
        """The container's CRI log (`<time> <stream> <tag> <line>` per line)."""
        path = self.client.container_status(self.container_id).log_path
        return Path(path).read_text(encoding="utf-8", errors="replace") if path else ""

    def remove(self) -> None:
        """StopPodSandbox + RemovePodSandbox; once done (or never started), nothing."""
        if not self.sandbox_id:
            return
        self.client.remove_sandbox(self.sandbox_id)
        self.sandbox_id = ""
