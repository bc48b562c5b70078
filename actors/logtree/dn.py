"""Distinguished names (DNs): the dotted addresses of the log tree.

A DN is a dot-separated path of names, each matching ``[a-z0-9_]{1,64}`` in full, for
example ``root.containerd.runsc``. The supervision tree names its nodes the same way, so
a node's DN is also the DN of its logs. A DN's subtree is the DN itself and every DN
that extends it by whole parts: ``root.a`` holds ``root.a.b`` but not ``root.ab``.

Rules:
    * Validation is anchored (``re.fullmatch``); Go's unanchored check is not copied.
    * The empty string is not a DN. Read and verbosity calls accept it as a pattern
      meaning "the whole tree" (see :func:`in_subtree`).
"""

from __future__ import annotations

import re

from actors.logtree.errors import LogTreeError

__all__ = ["in_subtree", "validate_dn", "validate_pattern"]

_PART = re.compile(r"[a-z0-9_]{1,64}")


def validate_dn(dn: object) -> str:
    """Checks that ``dn`` is a valid DN and returns it.

    Args:
        dn: the candidate DN.

    Returns:
        The DN, unchanged.

    Raises:
        LogTreeError: ``dn`` is not a string, or one of its parts is not a valid name.
    """
    if not isinstance(dn, str):
        raise LogTreeError(f"dn {dn!r} is invalid: not a string")
    for part in dn.split("."):
        if _PART.fullmatch(part) is None:
            raise LogTreeError(
                f"dn {dn!r} is invalid: part {part!r} does not match [a-z0-9_]{{1,64}}"
            )
    return dn


def validate_pattern(pattern: object) -> str:
    """Checks a subtree pattern: a valid DN, or ``""`` for the whole tree.

    Args:
        pattern: the candidate pattern.

    Returns:
        The pattern, unchanged.

    Raises:
        LogTreeError: the pattern is neither ``""`` nor a valid DN.
    """
    if pattern == "":
        return ""
    return validate_dn(pattern)


def in_subtree(dn: str, pattern: str) -> bool:
    """Tells whether ``dn`` lies in the subtree named by ``pattern``.

    Args:
        dn: a valid DN.
        pattern: a valid DN, or ``""`` for the whole tree.

    Returns:
        True when ``dn`` equals ``pattern`` or descends from it by whole parts.
    """
    if not pattern:
        return True
    return dn == pattern or dn.startswith(pattern + ".")
