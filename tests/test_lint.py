"""The code passes the project's linters (ruff check and format, mypy --strict) and its size ceiling."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PATHS = ["actors", "messages", "tests", "bench", "scripts"]

pytestmark = pytest.mark.timeout(300)


def test_ruff_finds_nothing() -> None:
    r = subprocess.run(
        [sys.executable, "-m", "ruff", "check", *PATHS],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stdout + r.stderr


def test_the_code_is_formatted_as_ruff_format_writes_it() -> None:
    r = subprocess.run(
        [sys.executable, "-m", "ruff", "format", "--check", *PATHS],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stdout + r.stderr


def test_mypy_strict_finds_nothing() -> None:
    r = subprocess.run(
        [sys.executable, "-m", "mypy", "actors", "messages"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stdout + r.stderr


def test_docstrings_and_field_docs_follow_the_one_house_style() -> None:
    """Single backticks, no reST roles, fields documented by `#:` comments (scripts/docstyle.py)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("docstyle", ROOT / "scripts" / "docstyle.py")
    assert spec is not None and spec.loader is not None
    docstyle = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(docstyle)
    off = []
    for top in ("actors", "messages", "bench"):
        for path in sorted((ROOT / top).rglob("*.py")):
            if path.name.endswith(("_pb2.py", "_pb2_grpc.py")) or ".venv" in path.parts:
                continue
            src = path.read_text()
            styled = docstyle.single_backticks(
                docstyle.attribute_strings_to_comments(docstyle.attributes_to_comments(src))
            )
            if styled != src:
                off.append(str(path.relative_to(ROOT)))
    assert off == [], "run scripts/docstyle.py on these files, then ruff format"


#: STYLE.md's hard ceiling of a module's length, in lines.
MAX_MODULE_LINES = 600


def test_no_module_is_longer_than_the_styles_hard_ceiling() -> None:
    """Generated protobuf modules excepted: they are not written by us."""
    too_long = {}
    for top in ("actors", "messages", "bench", "scripts", "tests", "contrib"):
        for path in (ROOT / top).rglob("*.py"):
            if "_pb2" in path.name:
                continue
            lines = path.read_text(encoding="utf-8").count("\n")
            if lines > MAX_MODULE_LINES:
                too_long[str(path.relative_to(ROOT))] = lines
    assert too_long == {}, f"split these modules (STYLE.md: {MAX_MODULE_LINES} lines at most)"


def test_no_file_edits_the_import_path() -> None:
    """The checkout is the one import root (pyproject's ``pythonpath``; scripts run as
    ``python -m scripts.NAME``): a file that edits ``sys.path`` would load a second copy
    of a module under another name."""
    editing = []
    for top in ("actors", "messages", "bench", "scripts", "tests", "contrib", "bin"):
        for path in (ROOT / top).rglob("*.py"):
            if "_pb2" in path.name:
                continue
            text = path.read_text(encoding="utf-8")
            if re.search(r"sys\.path\.(insert|append|extend)|sys\.path\s*[+]?=", text):
                editing.append(str(path.relative_to(ROOT)))
    assert editing == [], "import from the checkout's root instead of editing sys.path"
