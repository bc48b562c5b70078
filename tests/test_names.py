"""One name per thing in `actors/`: no two public classes share a name, and DNs are spelled once.

Two classes of one name (the containerd lifecycle's `Outcome` and the preseed's, the
supervisor's `Node` and containerd's node protocol) make a reader open the import to
learn which one a line means, and make a wrong import type-check when both have the
same fields. A DN written out in several modules drifts when the tree changes shape.
These tests read every module of `actors/` with `ast` (nothing is imported): each
public top-level class name is defined once, and the DNs of containerd's wing appear
as a string only in `actors/containerd/core/dns.py` (prose around them is free).
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

from actors.containerd.core.dns import CONTAINERD_DN, PRESEED_DN, RUNSC_DN

ROOT = Path(__file__).resolve().parents[1]
ACTORS = ROOT / "actors"
#: The one module that may spell the wing's DNs.
DNS_HOME = "actors/containerd/core/dns.py"


def public_classes(path: Path) -> list[str]:
    """The names of the classes `path` defines at its top level, private ones left out."""
    tree = ast.parse(path.read_text(), filename=str(path))
    return [
        node.name
        for node in tree.body
        if isinstance(node, ast.ClassDef) and not node.name.startswith("_")
    ]


def modules() -> list[Path]:
    """Every hand-written module of `actors/`."""
    return sorted(
        p for p in ACTORS.rglob("*.py") if not p.name.endswith(("_pb2.py", "_pb2_grpc.py"))
    )


def homes_by_name() -> dict[str, list[str]]:
    """Class name -> every module of `actors/` that defines it, as paths from the root."""
    homes: dict[str, list[str]] = defaultdict(list)
    for path in modules():
        for name in public_classes(path):
            homes[name].append(path.relative_to(ROOT).as_posix())
    return homes


def spelled_dns(path: Path) -> set[str]:
    """The wing's DNs that `path` holds as a whole string literal."""
    dns = {CONTAINERD_DN, RUNSC_DN, PRESEED_DN}
    return {
        node.value
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path)))
        if isinstance(node, ast.Constant) and node.value in dns
    }


def test_the_walk_finds_the_classes_of_the_house() -> None:
    homes = homes_by_name()

    assert homes["Tree"] == ["actors/supervisor/core/tree.py"]
    assert homes["ContainerdLifecycle"] == ["actors/containerd/core/lifecycle.py"]
    assert homes["Severity"] == ["actors/supervisor/core/severity.py"]


def test_no_two_public_classes_of_actors_share_a_name() -> None:
    shared = {name: paths for name, paths in homes_by_name().items() if len(paths) > 1}

    assert shared == {}


def test_the_wing_dns_are_spelled_only_in_their_home() -> None:
    spelled = {
        path.relative_to(ROOT).as_posix(): sorted(found)
        for path in modules()
        if (found := spelled_dns(path)) and path.relative_to(ROOT).as_posix() != DNS_HOME
    }

    assert spelled == {}
    assert spelled_dns(ROOT / DNS_HOME) == set()  # built from ROOT_DN and the child names
    assert (CONTAINERD_DN, RUNSC_DN, PRESEED_DN) == (
        "root.containerd",
        "root.containerd.runsc",
        "root.containerd.preseed",
    )
