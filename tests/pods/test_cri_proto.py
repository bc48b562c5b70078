"""Our CRI subset keeps kubernetes/cri-api's runtime.v1 names and field numbers.

Regeneration and staleness of the modules are checked with every other proto by
tests/preseed/test_preseed_generated_protos.py (scripts/gen_protos covers messages/cri).
"""

from __future__ import annotations

from messages.cri.runtime.v1 import api_pb2 as cri


def fields(message: type) -> dict[str, int]:
    return {f.name: f.number for f in message.DESCRIPTOR.fields}  # type: ignore[attr-defined]


def test_the_services_and_rpcs_are_runtime_v1s() -> None:
    services = cri.DESCRIPTOR.services_by_name
    assert cri.DESCRIPTOR.package == "runtime.v1"
    assert sorted(services) == ["ImageService", "RuntimeService"]
    assert sorted(m.name for m in services["ImageService"].methods) == ["ImageStatus", "ListImages"]
    assert sorted(m.name for m in services["RuntimeService"].methods) == [
        "ContainerStats",
        "ContainerStatus",
        "CreateContainer",
        "ExecSync",
        "ListContainers",
        "ListPodSandbox",
        "PodSandboxStatus",
        "RemoveContainer",
        "RemovePodSandbox",
        "RunPodSandbox",
        "StartContainer",
        "Status",
        "StopContainer",
        "StopPodSandbox",
        "Version",
    ]


def test_the_fields_kubelet_sets_keep_their_numbers() -> None:
    assert fields(cri.PodSandboxConfig) == {
        "metadata": 1,
        "hostname": 2,
        "log_directory": 3,
        "labels": 6,
        "annotations": 7,
        "linux": 8,
    }
    assert fields(cri.RunPodSandboxRequest) == {"config": 1, "runtime_handler": 2}
    assert fields(cri.NamespaceOption) == {"network": 1, "pid": 2, "ipc": 3, "target_id": 4}
    assert cri.NamespaceMode.Value("NODE") == 2
    assert cri.NamespaceMode.Value("POD") == 0
    assert fields(cri.ContainerConfig) == {
        "metadata": 1,
        "image": 2,
        "command": 3,
        "args": 4,
        "working_dir": 5,
        "envs": 6,
        "labels": 9,
        "annotations": 10,
        "log_path": 11,
        "linux": 15,
    }
    assert fields(cri.LinuxContainerConfig) == {"resources": 1, "security_context": 2}
    assert fields(cri.LinuxContainerSecurityContext) == {"privileged": 2}
    assert fields(cri.LinuxSandboxSecurityContext) == {"namespace_options": 1, "privileged": 6}
    assert fields(cri.ExecSyncRequest) == {"container_id": 1, "cmd": 2, "timeout": 3}
    assert fields(cri.ExecSyncResponse) == {"stdout": 1, "stderr": 2, "exit_code": 3}
    assert fields(cri.LinuxContainerResources) == {
        "cpu_period": 1,
        "cpu_quota": 2,
        "cpu_shares": 3,
        "memory_limit_in_bytes": 4,
        "oom_score_adj": 5,
    }
    assert fields(cri.LinuxPodSandboxConfig) == {"cgroup_parent": 1, "security_context": 2}
    status = fields(cri.ContainerStatus)
    assert (status["state"], status["exit_code"], status["reason"], status["log_path"]) == (
        3,
        7,
        10,
        15,
    )
    assert cri.ContainerState.Value("CONTAINER_EXITED") == 2
    assert fields(cri.ImageSpec) == {"image": 1, "annotations": 2}


def test_the_fields_of_a_pods_network_and_the_runtimes_status_keep_their_numbers() -> None:
    assert fields(cri.PodSandboxStatus)["network"] == 5
    assert fields(cri.PodSandboxNetworkStatus) == {"ip": 1, "additional_ips": 2}
    assert fields(cri.PodIP) == {"ip": 1}
    assert fields(cri.StatusRequest) == {"verbose": 1}
    assert fields(cri.StatusResponse) == {"status": 1, "info": 2}
    assert fields(cri.RuntimeStatus) == {"conditions": 1}
    assert fields(cri.RuntimeCondition) == {"type": 1, "status": 2, "reason": 3, "message": 4}


def test_the_fields_of_container_stats_keep_their_numbers() -> None:
    assert fields(cri.ContainerStatsRequest) == {"container_id": 1}
    assert fields(cri.ContainerStatsResponse) == {"stats": 1}
    assert fields(cri.ContainerStats) == {
        "attributes": 1,
        "cpu": 2,
        "memory": 3,
        "writable_layer": 4,
    }
    assert fields(cri.ContainerAttributes) == {
        "id": 1,
        "metadata": 2,
        "labels": 3,
        "annotations": 4,
    }
    assert fields(cri.CpuUsage) == {
        "timestamp": 1,
        "usage_core_nano_seconds": 2,
        "usage_nano_cores": 3,
    }
    assert fields(cri.MemoryUsage) == {
        "timestamp": 1,
        "working_set_bytes": 2,
        "available_bytes": 3,
        "usage_bytes": 4,
        "rss_bytes": 5,
        "page_faults": 6,
        "major_page_faults": 7,
    }
    assert fields(cri.UInt64Value) == {"value": 1}
