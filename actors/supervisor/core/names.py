"""Runnable names and distinguished names (DNs) of the supervision tree.

This is the one module that knows what names and DNs look like; the log tree
(`actors.logtree`) checks its DNs with `dn_problem` and matches subtrees with
`in_subtree` from here.

A name is `[a-z0-9_]{1,64}`, checked against the *whole* name. (Go's
`reNodeName` is an unanchored regexp, so Go accepts e.g. `oneSibling`; we do
not copy that bug.) A DN is a path of names joined by dots. The supervision
tree's DNs start at its root: the root is `root`, its child `foo` is
`root.foo`, and so on (`is_valid_dn`); the log tree accepts any such path
(`dn_problem`), since what it stores is not limited to supervised nodes.
A DN's subtree is the DN itself and every DN that extends it by whole parts:
`root.a` holds `root.a.b` but not `root.ab`.

This module is pure: string functions only.
"""

from __future__ import annotations

import re

from actors.supervisor.core.errors import InvalidName

__all__ = [
    "NAME_RE",
    "ROOT_DN",
    "ancestors",
    "child_dn",
    "dn_problem",
    "in_subtree",
    "is_valid_dn",
    "is_valid_name",
    "name_of",
    "parent_dn",
    "validate_dn",
    "validate_name",
]

#: The DN (and name) of the root node.
ROOT_DN = "root"

#: A valid runnable or sub-logger name, matched against the whole string.
NAME_RE = re.compile(r"[a-z0-9_]{1,64}")


def is_valid_name(name: object) -> bool:
    """Whether `name` is a string that is a valid runnable name."""
    return isinstance(name, str) and NAME_RE.fullmatch(name) is not None


def validate_name(name: object, *, what: str = "runnable name") -> str:
    """Return `name` if it is valid, else raise.

    Args:
        name: the candidate name.
        what: how the error message calls it, e.g. "sub-logger name".

    Raises:
        InvalidName: `runnable name 'Foo' is invalid`.
    """
    if not is_valid_name(name):
        raise InvalidName(f"{what} {name!r} is invalid")
    assert isinstance(name, str)
    return name


def dn_problem(dn: object) -> str | None:
    """What is wrong with `dn` as a dotted path of names; None if nothing is.

    Args:
        dn: the candidate DN.

    Returns:
        None for a valid DN, else the reason, e.g. `not a string` or
        `part 'Foo' does not match [a-z0-9_]{1,64}`.
    """
    if not isinstance(dn, str):
        return "not a string"
    for part in dn.split("."):
        if NAME_RE.fullmatch(part) is None:
            return f"part {part!r} does not match [a-z0-9_]{{1,64}}"
    return None


def is_valid_dn(dn: object) -> bool:
    """Whether `dn` is a DN of the supervision tree: `root`, then `.name` parts."""
    return dn_problem(dn) is None and isinstance(dn, str) and dn.split(".")[0] == ROOT_DN


def validate_dn(dn: object) -> str:
    """Return `dn` if it is a well-formed DN, else raise `InvalidName`."""
    if not is_valid_dn(dn):
        raise InvalidName(f"dn {dn!r} is invalid")
    assert isinstance(dn, str)
    return dn


def child_dn(parent: str, name: str) -> str:
    """The DN of the child `name` of `parent`: `child_dn("root", "a") == "root.a"`."""
    return f"{parent}.{name}"


def parent_dn(dn: str) -> str | None:
    """The DN of the parent of `dn`, None for the root."""
    head, dot, _ = dn.rpartition(".")
    return head if dot else None


def name_of(dn: str) -> str:
    """The last part of `dn`: `name_of("root.a.b") == "b"`."""
    return dn.rpartition(".")[2]


def ancestors(dn: str) -> tuple[str, ...]:
    """The DNs above `dn`, root first, without `dn` itself."""
    parts = dn.split(".")
    return tuple(".".join(parts[:i]) for i in range(1, len(parts)))


def in_subtree(dn: str, top: str) -> bool:
    """Whether `dn` is `top` or one of its descendants by whole parts.

    Args:
        dn: a valid DN.
        top: a valid DN, or `""` for the whole tree (every DN is in it).
    """
    if not top:
        return True
    return dn == top or dn.startswith(top + ".")
