"""Distinct names for distinct things: no two public classes of `actors/` share a name.

Two classes of one name (the containerd lifecycle's `Outcome` and the preseed's, the
supervisor's `Node` and containerd's node protocol) make a reader open the import to
learn which one a line means, and make a wrong import type-check when both have the
same fields. This test reads every module of `actors/` with `ast` (nothing is
imported) and lists each public top-level class name defined in more than one place.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ACTORS = ROOT / "actors"


def public_classes(path: Path) -> list[str]:
    """The names of the classes `path` defines at its top level, private ones left out."""
    tree = ast.parse(path.read_text(), filename=str(path))
    return [
        node.name
        for node in tree.body
        if isinstance(node, ast.ClassDef) and not node.name.startswith("_")
    ]


def homes_by_name() -> dict[str, list[str]]:
    """Class name -> every module of `actors/` that defines it, as paths from the root."""
    homes: dict[str, list[str]] = defaultdict(list)
    for path in sorted(ACTORS.rglob("*.py")):
        if path.name.endswith(("_pb2.py", "_pb2_grpc.py")):
            continue
        for name in public_classes(path):
            homes[name].append(path.relative_to(ROOT).as_posix())
    return homes


def test_the_walk_finds_the_classes_of_the_house() -> None:
    homes = homes_by_name()

    assert homes["Tree"] == ["actors/supervisor/core/tree.py"]
    assert homes["ContainerdLifecycle"] == ["actors/containerd/core/lifecycle.py"]
    assert homes["Severity"] == ["actors/supervisor/core/severity.py"]


def test_no_two_public_classes_of_actors_share_a_name() -> None:
    shared = {name: paths for name, paths in homes_by_name().items() if len(paths) > 1}

    assert shared == {}
