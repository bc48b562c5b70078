"""What a pure module may import, and how a test reads a module's imports.

Shared by the purity tests of the supervisor's core (`tests/core`) and of
containerd's core (`tests/containerd`).
"""

from __future__ import annotations

import ast
from pathlib import Path

__all__ = ["FORBIDDEN", "PURE_STDLIB", "imported_modules"]

#: The standard library's modules that do no I/O, read no clock and start no thread.
PURE_STDLIB = {
    "__future__",
    "abc",
    "bisect",
    "collections",
    "dataclasses",
    "enum",
    "fnmatch",
    "functools",
    "heapq",
    "itertools",
    "math",
    "random",
    "re",
    "types",
    "typing",
}
FORBIDDEN = {"os", "subprocess", "socket", "threading", "time", "pykka", "msgpack", "grpc"}


def imported_modules(path: Path) -> set[str]:
    """Every module an `import` or `from ... import` of the file names, top level or not."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path}: relative import of {node.module!r}"
            assert node.module is not None
            found.add(node.module)
    return found
