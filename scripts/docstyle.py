#!/usr/bin/env python3
"""Bring docstrings and field docs to the house style (see ARCHITECTURE.md), in place.

The house style, which `tests/test_lint.py` checks in `actors/`, `messages/` and `bench/`:

* Google-style docstrings whose code names are in single backticks: `name`, never
  reST's double backticks or roles (:class:`Name`).
* Every field, constant and instance attribute documented by a `#:` comment above it,
  never by an `Attributes:` section of the class docstring or by a string after it.

This script rewrites what it can: an `Attributes:` entry moves to a `#:` comment above
its field (a class-level annotated field, or `self.name` first set in `__init__`); a
string after an assignment becomes a `#:` comment above it; roles and double backticks
in docstrings and comments become single backticks. Run `ruff format` afterwards.

Usage: scripts/docstyle.py FILE...   (prints each file it changed)
"""

from __future__ import annotations

import ast
import io
import re
import sys
import textwrap
import tokenize

#: The line length comments are wrapped to (ruff's line-length).
WIDTH = 100
#: A reST role around a name: :class:`Name`, :meth:`~mod.Name.f`.
ROLE = re.compile(r":(?:func|class|meth|attr|mod|data|exc|obj|py:\w+):`~?\.?([^`]+)`")
#: reST's inline literal: ``text``.
DOUBLE = re.compile(r"``([^`\n]+?)``")

#: (first line, end line exclusive, replacement lines), 0-based.
Edit = tuple[int, int, list[str]]


def comment_lines(text: str, indent: str) -> list[str]:
    """`text` as `#:` comment lines at `indent`, wrapped, first letter capitalised."""
    text = text.replace("\\\\", "\\")  # a docstring's source spells \n as \\n
    if text[:1].islower() and not text.startswith(("e.g.", "i.e.")):
        text = text[0].upper() + text[1:]
    out: list[str] = []
    for para in text.split("\n\n"):
        words = " ".join(para.split())
        width = WIDTH - len(indent) - 3
        out.extend(textwrap.wrap(words, width, break_long_words=False, break_on_hyphens=False))
    return [f"{indent}#: {line}".rstrip() for line in out]


def _is_doc(stmt: ast.stmt) -> bool:
    return (
        isinstance(stmt, ast.Expr)
        and isinstance(stmt.value, ast.Constant)
        and isinstance(stmt.value.value, str)
    )


def _section(doc: list[str], start: int) -> tuple[dict[str, str], int]:
    """The entries of the `Attributes:` section at `doc[start]`, and where it ends."""
    head = len(doc[start]) - len(doc[start].lstrip())
    entries: dict[str, str] = {}
    current: str | None = None
    entry_indent: int | None = None
    i = start + 1
    while i < len(doc):
        line, stripped = doc[i], doc[i].strip()
        indent = len(line) - len(line.lstrip())
        if stripped == "":
            rest = [d for d in doc[i + 1 :] if d.strip()]
            if not rest or len(rest[0]) - len(rest[0].lstrip()) <= head:
                break
            i += 1
            continue
        if stripped.startswith('"""') or indent <= head:
            break
        entry_indent = indent if entry_indent is None else entry_indent
        match = re.match(r"(\w+)(?: \([^)]*\))?:\s?(.*)$", stripped)
        if indent == entry_indent and match:
            current = match.group(1)
            entries[current] = match.group(2)
        elif current is not None:
            entries[current] += " " + stripped
        i += 1
    return entries, i


def _targets(node: ast.ClassDef, lines: list[str]) -> dict[str, tuple[int, str]]:
    """Field name -> (line, indent) of its definition in the class or its `__init__`."""
    found: dict[str, tuple[int, str]] = {}
    for stmt in node.body:
        target: ast.expr | None = stmt.target if isinstance(stmt, ast.AnnAssign) else None
        if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1:
            target = stmt.targets[0]
        if isinstance(target, ast.Name):
            found.setdefault(target.id, (stmt.lineno - 1, " " * stmt.col_offset))
    init = next(
        (s for s in node.body if isinstance(s, ast.FunctionDef) and s.name == "__init__"), None
    )
    for sub in ast.walk(init) if init is not None else ():
        attr: ast.expr | None = None
        if isinstance(sub, ast.AnnAssign):
            attr = sub.target
        elif isinstance(sub, ast.Assign) and len(sub.targets) == 1:
            attr = sub.targets[0]
        if (
            isinstance(sub, ast.stmt)
            and isinstance(attr, ast.Attribute)
            and isinstance(attr.value, ast.Name)
            and attr.value.id == "self"
            and lines[sub.lineno - 1].strip().startswith("self.")
        ):
            found.setdefault(attr.attr, (sub.lineno - 1, " " * sub.col_offset))
    return found


def attributes_to_comments(src: str) -> str:
    """Move every class docstring's `Attributes:` entries to `#:` comments."""
    lines = src.split("\n")
    edits: list[Edit] = []
    for node in ast.walk(ast.parse(src)):
        if not isinstance(node, ast.ClassDef) or not node.body or not _is_doc(node.body[0]):
            continue
        first, end = node.body[0].lineno - 1, node.body[0].end_lineno or 0
        doc = lines[first:end]
        start = next((k for k, line in enumerate(doc) if line.strip() == "Attributes:"), None)
        if start is None:
            continue
        entries, stop = _section(doc, start)
        targets = _targets(node, lines)
        kept = {}
        for name, text in entries.items():
            if name not in targets:
                kept[name] = text
                continue
            at, indent = targets[name]
            if not lines[at - 1].strip().startswith("#:"):
                edits.append((at, at, comment_lines(text.strip(), indent)))
        head, rest = doc[:start], doc[stop:]
        if kept:
            indent = " " * (len(doc[start]) - len(doc[start].lstrip()) + 4)
            head.append(doc[start])
            head.extend(f"{indent}{n}: {' '.join(t.split())}" for n, t in kept.items())
            print(f"{node.name}: kept {sorted(kept)} (no such field)", file=sys.stderr)
        else:
            while head and not head[-1].strip():
                head.pop()
            if len(head) == 1 and all(r.strip() in ("", '"""') for r in rest):
                head, rest = [head[0].rstrip() + '"""'], []
        edits.append((first, end, head + rest))
    for first, end, replacement in sorted(edits, reverse=True):
        lines[first:end] = replacement
    return "\n".join(lines)


def attribute_strings_to_comments(src: str) -> str:
    """Turn a string statement right after an assignment into a `#:` comment above it."""
    tree = ast.parse(src)
    lines = src.split("\n")
    edits: list[Edit] = []
    bodies = [tree.body] + [n.body for n in ast.walk(tree) if isinstance(n, ast.ClassDef)]
    for body in bodies:
        for prev, stmt in zip(body, body[1:], strict=False):
            if not (_is_doc(stmt) and isinstance(prev, (ast.Assign, ast.AnnAssign))):
                continue
            assert isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant)
            edits.append((stmt.lineno - 1, stmt.end_lineno or 0, []))
            at = prev.lineno - 1
            if not lines[at - 1].strip().startswith("#:"):
                text = textwrap.dedent(str(stmt.value.value)).strip().replace("\\", "\\\\")
                edits.append((at, at, comment_lines(text, " " * prev.col_offset)))
    for first, end, replacement in sorted(edits, reverse=True):
        lines[first:end] = replacement
    return "\n".join(lines)


def single_backticks(src: str) -> str:
    """Roles and double backticks in docstrings and comments become single backticks."""
    offsets = [0]
    for line in src.split("\n"):
        offsets.append(offsets[-1] + len(line) + 1)
    spans = []
    for tok in tokenize.generate_tokens(io.StringIO(src).readline):
        doc = tok.type == tokenize.STRING and re.match(r"^[rRuU]?(\"\"\"|''')", tok.string)
        if doc or tok.type == tokenize.COMMENT:
            new = DOUBLE.sub(r"`\1`", ROLE.sub(r"`\1`", tok.string))
            if new != tok.string:
                a = offsets[tok.start[0] - 1] + tok.start[1]
                b = offsets[tok.end[0] - 1] + tok.end[1]
                spans.append((a, b, new))
    for a, b, new in sorted(spans, reverse=True):
        src = src[:a] + new + src[b:]
    return src


def main(paths: list[str]) -> int:
    for path in paths:
        with open(path) as f:
            src = f.read()
        out = single_backticks(attribute_strings_to_comments(attributes_to_comments(src)))
        if out != src:
            with open(path, "w") as f:
                f.write(out)
            print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
