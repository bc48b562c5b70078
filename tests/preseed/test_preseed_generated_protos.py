"""The checked-in protobuf modules are what scripts/gen_protos makes from the .proto files."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _generated(base: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(base)): p.read_bytes()
        for pattern in ("*_pb2.py", "*_pb2.pyi", "*_pb2_grpc.py")
        for p in (base / "messages").rglob(pattern)
    }


def test_checked_in_generated_modules_match_a_fresh_generation(tmp_path: Path) -> None:
    subprocess.run(
        [str(ROOT / "scripts" / "gen_protos"), str(tmp_path)],
        check=True,
        env={"PYTHON": sys.executable, "PATH": "/usr/bin:/bin"},
    )
    fresh = _generated(tmp_path)
    checked_in = _generated(ROOT)

    assert fresh, "gen_protos generated nothing"
    assert sorted(checked_in) == sorted(fresh)
    stale = [name for name in fresh if fresh[name] != checked_in[name]]
    assert stale == [], f"stale generated modules, run scripts/gen_protos: {stale}"


def test_every_containerd_proto_keeps_containerds_package_names() -> None:
    from messages.containerd.services.content.v1 import content_pb2
    from messages.containerd.services.images.v1 import images_pb2
    from messages.containerd.services.leases.v1 import leases_pb2
    from messages.containerd.services.namespaces.v1 import namespace_pb2
    from messages.containerd.services.version.v1 import version_pb2
    from messages.containerd.types import descriptor_pb2

    services = {
        m.DESCRIPTOR.package: sorted(m.DESCRIPTOR.services_by_name)
        for m in (content_pb2, images_pb2, leases_pb2, namespace_pb2, version_pb2)
    }
    assert services == {
        "containerd.services.content.v1": ["Content"],
        "containerd.services.images.v1": ["Images"],
        "containerd.services.leases.v1": ["Leases"],
        "containerd.services.namespaces.v1": ["Namespaces"],
        "containerd.services.version.v1": ["Version"],
    }
    assert descriptor_pb2.Descriptor.DESCRIPTOR.full_name == "containerd.types.Descriptor"
    write = content_pb2.WriteContentRequest.DESCRIPTOR
    assert {f.name: f.number for f in write.fields} == {
        "action": 1,
        "ref": 2,
        "total": 3,
        "expected": 4,
        "offset": 5,
        "data": 6,
        "labels": 7,
    }
    image = images_pb2.Image.DESCRIPTOR
    assert {f.name: f.number for f in image.fields} == {
        "name": 1,
        "labels": 2,
        "target": 3,
        "created_at": 7,
        "updated_at": 8,
    }


def test_the_unpack_protos_keep_containerds_names_and_field_numbers() -> None:
    from messages.containerd.services.diff.v1 import diff_pb2
    from messages.containerd.services.snapshots.v1 import snapshots_pb2
    from messages.containerd.types import mount_pb2

    def numbers(message: object) -> dict[str, int]:
        return {f.name: f.number for f in message.DESCRIPTOR.fields}  # type: ignore[attr-defined]

    assert sorted(snapshots_pb2.DESCRIPTOR.services_by_name["Snapshots"].methods_by_name) == [
        "Commit",
        "Prepare",
        "Remove",
        "Stat",
    ]
    assert sorted(diff_pb2.DESCRIPTOR.services_by_name["Diff"].methods_by_name) == ["Apply"]
    assert snapshots_pb2.DESCRIPTOR.package == "containerd.services.snapshots.v1"
    assert diff_pb2.DESCRIPTOR.package == "containerd.services.diff.v1"
    assert mount_pb2.Mount.DESCRIPTOR.full_name == "containerd.types.Mount"
    assert numbers(mount_pb2.Mount) == {"type": 1, "source": 2, "target": 3, "options": 4}
    assert numbers(snapshots_pb2.PrepareSnapshotRequest) == {
        "snapshotter": 1,
        "key": 2,
        "parent": 3,
        "labels": 4,
    }
    assert numbers(snapshots_pb2.CommitSnapshotRequest) == {
        "snapshotter": 1,
        "name": 2,
        "key": 3,
        "labels": 4,
    }
    assert numbers(snapshots_pb2.Info) == {
        "name": 1,
        "parent": 2,
        "kind": 3,
        "created_at": 4,
        "updated_at": 5,
        "labels": 6,
    }
    assert numbers(diff_pb2.ApplyRequest) == {"diff": 1, "mounts": 2, "payloads": 3}
    assert numbers(diff_pb2.ApplyResponse) == {"applied": 1}
