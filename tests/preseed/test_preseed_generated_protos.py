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
