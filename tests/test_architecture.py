"""ARCHITECTURE.md's import table is the rule: every import of the code obeys it.

The table "What may import what" names, per area (a dotted module prefix), the other
areas it may import. This test reads that table from ARCHITECTURE.md itself, walks
every module of `actors/` and `messages/` (imports inside functions included) and
fails on any import the table does not allow, so the map and the code cannot drift.
A module belongs to the longest area that prefixes its name; importing a module of
one's own area is always allowed.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TABLE_HEADING = "## What may import what"
ANYTHING = "*"


def read_table() -> dict[str, tuple[str, ...]]:
    """{area: the prefixes it may import} from ARCHITECTURE.md; `*` allows anything."""
    text = (ROOT / "ARCHITECTURE.md").read_text()
    section = text.split(TABLE_HEADING, 1)[1].split("\n## ", 1)[0]
    rules: dict[str, tuple[str, ...]] = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 2 or not cells[0].startswith("`"):
            continue
        allowed = tuple(re.findall(r"`([\w.*]+)`", cells[1]))
        for area in re.findall(r"`([\w.]+)`", cells[0]):
            rules[area] = allowed
    return rules


RULES = read_table()


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def project_modules() -> list[Path]:
    found = [*ROOT.joinpath("actors").rglob("*.py"), *ROOT.joinpath("messages").rglob("*.py")]
    return sorted(p for p in found if "_pb2" not in p.name)


def imports_of(path: Path) -> set[str]:
    """The project modules `path` imports, anywhere in the file."""
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module)
            out.update(f"{node.module}.{a.name}" for a in node.names)
    return {m for m in out if m.split(".")[0] in ("actors", "messages")}


def area_of(module: str) -> str | None:
    matches = [a for a in RULES if module == a or module.startswith(a + ".")]
    return max(matches, key=len) if matches else None


def allowed(module: str, target: str) -> bool:
    own, theirs = area_of(module), area_of(target)
    if own is None:
        return False
    if own == theirs:
        return True
    rule = RULES[own]
    return ANYTHING in rule or any(target == p or target.startswith(p + ".") for p in rule)


def test_the_table_names_every_area_of_the_house() -> None:
    assert {
        "actors.supervisor.core",
        "actors.logtree",
        "messages",
        "actors.config",
        "actors.containerd.core",
        "actors.containerd.api",
        "actors.containerd.runtimes",
        "actors.containerd",
        "actors.preseed",
        "actors.agent",
    } <= set(RULES)


@pytest.mark.parametrize("path", project_modules(), ids=lambda p: module_name(p))
def test_every_import_is_one_the_architecture_table_allows(path: Path) -> None:
    module = module_name(path)
    assert area_of(module) is not None, f"{module} is in no area of ARCHITECTURE.md's table"
    # `from pkg import name` names a module or an attribute: judge it by its package
    # when the longer name is not a module of the project.
    bad = sorted(
        t
        for t in imports_of(path)
        if not allowed(module, t) and not (_is_attribute(t) and allowed(module, _parent(t)))
    )
    assert bad == [], f"{module} imports what ARCHITECTURE.md does not allow: {bad}"


def test_nothing_below_the_agent_imports_the_agent() -> None:
    offenders = sorted(
        module_name(p)
        for p in project_modules()
        if not module_name(p).startswith("actors.agent")
        and any(t == "actors.agent" or t.startswith("actors.agent.") for t in imports_of(p))
    )
    assert offenders == []


def _parent(name: str) -> str:
    return name.rsplit(".", 1)[0]


def _is_attribute(name: str) -> bool:
    as_path = ROOT.joinpath(*name.split("."))
    return not (as_path.with_suffix(".py").exists() or as_path.is_dir())
