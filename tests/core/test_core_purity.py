"""Rule 0: the core modules import no I/O, threads, clocks, actors or codecs."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import actors.supervisor

CORE = [
    "__init__",
    "states",
    "policy",
    "events",
    "names",
    "errors",
    "backoff",
    "node",
    "restart",
    "rules",
    "tree",
    "testing",
    "fakes",
]
FORBIDDEN = {"os", "subprocess", "socket", "threading", "time", "pykka", "msgpack", "grpc"}
PACKAGE = Path(actors.supervisor.__file__).parent


def imported_modules(path: Path) -> set[str]:
    """Every module an `import` or `from ... import` of the file names, top level or not."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module is not None and node.level == 0:
            found.add(node.module)
    return found


@pytest.mark.parametrize("module", CORE)
def test_a_core_module_imports_nothing_that_does_io(module: str) -> None:
    imports = imported_modules(PACKAGE / f"{module}.py")

    assert {m for m in imports if m.split(".")[0] in FORBIDDEN} == set()


@pytest.mark.parametrize("module", CORE)
def test_a_core_module_imports_only_the_core_from_its_own_package(module: str) -> None:
    imports = imported_modules(PACKAGE / f"{module}.py")
    own = {
        m.removeprefix("actors.supervisor.") for m in imports if m.startswith("actors.supervisor.")
    }

    assert own <= set(CORE)
    assert {
        m for m in imports if m.startswith("actors.") and not m.startswith("actors.supervisor")
    } == set()
