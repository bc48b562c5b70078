"""Rule 0, derived from the folders: the core imports no I/O, threads, clocks, actors or codecs.

Every module under `actors/supervisor/core/` may import only other core modules and
the standard library's pure modules below. The simulation harness under
`actors/supervisor/testing/` (`simulation`, `fakes`) drives the core without
processes, so it keeps the same rule, plus the harness's own modules.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import actors.supervisor
from tests.support.purity import FORBIDDEN, PURE_STDLIB, imported_modules

PACKAGE = Path(actors.supervisor.__file__).parent
CORE_DIR = PACKAGE / "core"

CORE_MODULES = sorted(p.relative_to(PACKAGE).as_posix() for p in CORE_DIR.rglob("*.py"))
HARNESS_MODULES = ["testing/simulation.py", "testing/fakes.py"]


def test_the_core_folder_holds_the_modules_of_the_pure_core() -> None:
    assert {Path(m).stem for m in CORE_MODULES} >= {
        "states",
        "policy",
        "events",
        "names",
        "errors",
        "backoff",
        "node",
        "restart",
        "rules",
        "watch",
        "operations",
        "tree",
    }


@pytest.mark.parametrize("module", CORE_MODULES)
def test_a_core_module_imports_only_the_core_and_pure_stdlib(module: str) -> None:
    imports = imported_modules(PACKAGE / module)

    outside = {
        m
        for m in imports
        if m.split(".")[0] not in PURE_STDLIB and not m.startswith("actors.supervisor.core")
    }
    assert outside == set()


@pytest.mark.parametrize("module", HARNESS_MODULES)
def test_the_simulation_harness_imports_only_the_core_itself_and_pure_stdlib(module: str) -> None:
    imports = imported_modules(PACKAGE / module)

    outside = {
        m
        for m in imports
        if m.split(".")[0] not in PURE_STDLIB
        and not m.startswith("actors.supervisor.core")
        and not m.startswith("actors.supervisor.testing")
    }
    assert outside == set()
    assert {m for m in imports if m.split(".")[0] in FORBIDDEN} == set()


def test_the_facade_loads_no_runtime_or_process_module() -> None:
    imports = imported_modules(PACKAGE / "__init__.py")

    assert {m for m in imports if m.split(".")[0] in FORBIDDEN} == set()
    assert {
        m
        for m in imports
        if m.startswith("actors.supervisor.") and not m.startswith("actors.supervisor.core")
    } == set()
