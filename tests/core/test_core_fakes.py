"""The fake runnables' shapes: spawns_more is a chain (GO_SCENARIOS.md), spawns_tree a binary tree."""

from __future__ import annotations

import ast
from pathlib import Path

from actors.supervisor import NodeState
from actors.supervisor.testing import fakes
from actors.supervisor.testing.simulation import (
    Simulation,
    go_policies,
    runs_groups,
    spawns_more,
    spawns_tree,
)

HEALTHY, DONE = NodeState.HEALTHY, NodeState.DONE


def test_spawns_more_starts_a_chain_of_as_many_nodes_as_levels() -> None:
    sim = Simulation(runs_groups({"one": spawns_more(3)}), policies=go_policies())
    sim.start()

    assert sim.states() == {
        "root": DONE,
        "root.one": HEALTHY,
        "root.one.sub": HEALTHY,
        "root.one.sub.sub": HEALTHY,
        "root.one.sub.sub.sub": HEALTHY,
    }


def test_spawns_tree_starts_a_binary_tree_of_as_many_levels() -> None:
    sim = Simulation(runs_groups({"one": spawns_tree(2)}), policies=go_policies())
    sim.start()

    assert sim.states() == {
        "root": DONE,
        "root.one": HEALTHY,
        "root.one.a": HEALTHY,
        "root.one.a.a": HEALTHY,
        "root.one.a.b": HEALTHY,
        "root.one.b": HEALTHY,
        "root.one.b.a": HEALTHY,
        "root.one.b.b": HEALTHY,
    }


def test_the_fakes_do_not_import_the_simulation_that_imports_them() -> None:
    tree = ast.parse(Path(fakes.__file__).read_text())
    imported = {
        node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module
    }

    assert "actors.supervisor.testing.simulation" not in imported
