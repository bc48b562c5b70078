"""Runnable names and distinguished names (DNs) of the supervision tree.

A name is `[a-z0-9_]{1,64}`, checked against the *whole* name. (Go's
`reNodeName` is an unanchored regexp, so Go accepts e.g. `oneSibling`; we do
not copy that bug.) A DN is the path of names from the root, joined by dots:
the root is `root`, its child `foo` is `root.foo`, and so on.

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


def is_valid_dn(dn: object) -> bool:
    """Whether `dn` is `root` followed by zero or more `.name` parts."""
    if not isinstance(dn, str):
        return False
    parts = dn.split(".")
    return parts[0] == ROOT_DN and all(is_valid_name(p) for p in parts[1:])


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
    """Whether `dn` is `top` or one of its descendants."""
    return dn == top or dn.startswith(top + ".")
