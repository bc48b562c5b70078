"""The bounds of every config value, whatever its key: hostile TOML in, a problem out.

No key of the agent takes a value nested deeper than a few levels, an integer beyond
64 bits, a float that is not finite, a string with a control character or longer
than a path, or a table or array of thousands of items. A file may still hold such a
value (a typo, a generated file gone wrong, someone probing `config check`), and it
must be refused like any other bad value: one line naming the file and the dotted
key, never a traceback. Two stages:

1. **Text that `tomllib` cannot parse at all.** Nesting thousands of levels deep
   overflows the parser's recursion, and an integer of more than 4300 decimal
   digits overflows Python's int conversion. `locate` finds the statement at fault
   with a small scanner (strings and comments skipped, brackets counted) so that
   the error names its key; the scanner only ever runs on text `tomllib` already
   refused, so it can never refuse a valid file.
2. **Parsed values.** `check_bounds` walks the parsed document before any key is
   read, records one problem per value out of `LIMITS`, and returns the document
   without those values, so that the readers of the keys do not report them a
   second time (a key left out takes its default; the file is refused anyway).

This module is pure: no I/O.
"""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["LIMITS", "Limits", "check_bounds", "locate", "shown"]


@dataclass(frozen=True, slots=True)
class Limits:
    """The bounds of any value, whatever its key."""

    #: Deepest nesting of tables and arrays, counting a top-level table as 1
    #: (`[policy."root"]` is 2; the deepest key of the schema is 3).
    depth: int = 8
    #: Items of one array, keys of one table.
    items: int = 256
    #: Bytes (UTF-8) of one string or key: a path is at most 4095 bytes.
    string_bytes: int = 4095
    #: The smallest and largest integer: TOML's own 64 bits.
    int_min: int = -(2**63)
    int_max: int = 2**63 - 1


#: The bounds in force.
LIMITS = Limits()

#: Characters of a repr shown in a message before it is cut.
_SHOWN = 60
#: A value `check_bounds` left out.
_DROP = object()
#: The depth from which a table is part of one key's value (a table of labels), not
#: the file's structure (the top level, a section, `policy`, `policy."<pattern>"`).
_VALUE_DEPTH = 3


def shown(value: object) -> str:
    """`repr(value)` for a message: a long string cut to 60 characters, with its length said."""
    if isinstance(value, (list, dict)):
        what = "an array" if isinstance(value, list) else "a table"
        return f"<{what} of {len(value)} item{'' if len(value) == 1 else 's'}>"
    if isinstance(value, str) and len(value) > _SHOWN:
        return f"{value[:_SHOWN]!r}… ({len(value)} characters)"
    text = repr(value)
    return text if len(text) <= _SHOWN else f"{text[:_SHOWN]}… ({len(text)} characters)"


def _control(text: str) -> str | None:
    """The first control character of `text` (C0, DEL, C1), or None."""
    for ch in text:
        if unicodedata.category(ch) == "Cc":
            return ch
    return None


def _string_problem(text: str, limits: Limits) -> str | None:
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > limits.string_bytes:
        return (
            f"{shown(text)} is too long: {size} bytes; a string here may have at most "
            f"{limits.string_bytes} bytes"
        )
    bad = _control(text)
    if bad is not None:
        return (
            f"{shown(text)} contains the control character {bad!r}; no key takes "
            "control characters (NUL, newline, escape, ...)"
        )
    return None


def _scalar_problem(value: object, limits: Limits) -> str | None:
    """Why a leaf value is out of every key's bounds, or None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        if limits.int_min <= value <= limits.int_max:
            return None
        digits = len(str(abs(value))) if abs(value) < 10**4000 else "thousands of"
        return (
            f"an integer of {digits} digits is out of range; TOML integers are 64-bit "
            f"({limits.int_min} to {limits.int_max})"
        )
    if isinstance(value, float):
        return None if math.isfinite(value) else f"{value!r} is not a finite number"
    if isinstance(value, str):
        return _string_problem(value, limits)
    return None


def check_bounds(
    doc: dict[str, Any],
    problem: Callable[[str, str], None],
    key_of: Callable[[str, str], str],
    limits: Limits = LIMITS,
) -> dict[str, Any]:
    """Records a problem for every value out of `limits`; returns `doc` without them.

    Args:
        doc: the parsed TOML document.
        problem: records `(dotted key, text)`.
        key_of: joins a dotted prefix and one key as TOML writes it (`values.dotted`).
        limits: the bounds.

    Returns:
        A copy of `doc` without the values (and keys) that broke a bound.
    """

    def walk_table(prefix: str, table: dict[str, Any], depth: int) -> Any:
        out: dict[str, Any] = {}
        if len(table) > limits.items:
            problem(
                prefix or "<top level>",
                f"a table of {len(table)} keys is too large; at most {limits.items} here",
            )
            return out
        for name, value in table.items():
            key = key_of(prefix, name)
            why = _string_problem(name, limits)
            if why is not None:
                problem(prefix or "<top level>", f"the key {why}")
                continue
            kept = walk(key, value, depth + 1)
            if kept is not _DROP:
                out[name] = kept
            elif depth >= _VALUE_DEPTH:
                return _DROP  # part of one value: drop the value whole
        return out

    def walk(key: str, value: object, depth: int) -> object:
        if isinstance(value, (dict, list)):
            if depth > limits.depth:
                problem(
                    key,
                    f"tables and arrays nested deeper than {limits.depth} levels; "
                    "no key takes values nested this deep",
                )
                return _DROP
            if isinstance(value, dict):
                return walk_table(key, value, depth)
            if len(value) > limits.items:
                problem(
                    key, f"an array of {len(value)} items is too long; at most {limits.items} here"
                )
                return _DROP
            items = [walk(f"{key}[{i}]", item, depth) for i, item in enumerate(value)]
            if any(item is _DROP for item in items):
                return _DROP
            return items
        why = _scalar_problem(value, limits)
        if why is None:
            return value
        problem(key, why)
        return _DROP

    kept: dict[str, Any] = walk_table("", doc, 0)
    return kept


# ---------------------------------------------------------------- locating a parse failure


@dataclass(slots=True)
class _Scan:
    """Where the scanner is: the current table header and the current statement's key."""

    #: The parts of the last `[header]` or `[[header]]`.
    table: tuple[str, ...] = ()
    #: The parts of the key of the statement being read.
    key: tuple[str, ...] = ()
    #: The line the statement started on (1-based).
    line: int = 1


def _key_parts(raw: str) -> list[str]:
    """The parts of a dotted TOML key as written (`policy."root.x"` → policy, root.x)."""
    parts: list[str] = []
    i, n = 0, len(raw)
    while i < n:
        ch = raw[i]
        if ch in "\"'":
            end = _skip_string(raw, i)
            parts.append(raw[i + 1 : end - 1])
            i = end
        elif ch == "." or ch.isspace():
            i += 1
        else:
            j = i
            while j < n and raw[j] not in ".\"' \t":
                j += 1
            parts.append(raw[i:j])
            i = j
    return parts


def locate(
    text: str, max_depth: int, max_digits: int, key_of: Callable[[str, str], str]
) -> tuple[int, str, str] | None:
    """Finds a statement nested deeper than `max_depth` or with a digit run over `max_digits`.

    Used only after `tomllib` refused `text` with a `RecursionError` or a
    `ValueError`, to name the key at fault.

    Args:
        text: the TOML text.
        max_depth: the deepest nesting allowed.
        max_digits: the longest run of digits allowed.
        key_of: joins a dotted prefix and one key as TOML writes it.

    Returns:
        (line, dotted key as written, what is wrong), or None when none is found.
    """
    at = _Scan()
    depth = 0
    line = 1
    digits = 0
    i, n = 0, len(text)
    line_start = 0
    while i < n:
        ch = text[i]
        if ch == "\n":
            line += 1
            line_start = i + 1
            digits = 0
            i += 1
            continue
        if ch == "#":
            end = text.find("\n", i)
            i = n if end < 0 else end
            continue
        if ch in "\"'":
            i = _skip_string(text, i)
            digits = 0
            continue
        if depth == 0 and ch == "[" and not text[line_start:i].strip():
            end = text.find("\n", i)
            header = text[i : n if end < 0 else end].split("#", 1)[0].strip()
            at.table = tuple(_key_parts(header.strip("[]")))
            at.key = ()
            i = n if end < 0 else end
            continue
        if depth == 0 and ch == "=":
            at.key = tuple(_key_parts(text[line_start:i]))
            at.line = line
        elif ch in "[{":
            depth += 1
            if depth > max_depth:
                return at.line, _joined(at, key_of), f"nested deeper than {max_depth} levels"
        elif ch in "]}":
            depth = max(0, depth - 1)
        if ch.isdigit() or (ch == "_" and digits):
            digits += 1
            if digits > max_digits:
                return at.line, _joined(at, key_of), f"a number of more than {max_digits} digits"
        else:
            digits = 0
        i += 1
    return None


def _joined(at: _Scan, key_of: Callable[[str, str], str]) -> str:
    key = ""
    for part in (*at.table, *at.key):
        key = key_of(key, part)
    return key


def _skip_string(text: str, i: int) -> int:
    """The index after the string starting at `text[i]` (basic, literal, multi-line)."""
    quote = text[i]
    if text.startswith(quote * 3, i):
        end = text.find(quote * 3, i + 3)
        if quote == '"':
            while end > 0 and _escaped(text, end):
                end = text.find(quote * 3, end + 1)
        return len(text) if end < 0 else end + 3
    j = i + 1
    while j < len(text) and text[j] != "\n":
        if text[j] == "\\" and quote == '"':
            j += 2
            continue
        if text[j] == quote:
            return j + 1
        j += 1
    return j


def _escaped(text: str, at: int) -> bool:
    """Whether the character at `at` is escaped by an odd run of backslashes."""
    run = 0
    while at - run - 1 >= 0 and text[at - run - 1] == "\\":
        run += 1
    return run % 2 == 1
