"""The log tree's DN checks: the one DN grammar, raising `LogTreeError`.

The grammar of names and DNs lives in one module, `actors.supervisor.core.names`
(`dn_problem`, `in_subtree`); this module only turns its verdict into the log
tree's error. A DN is a dot-separated path of names, each matching
`[a-z0-9_]{1,64}` in full, for example `root.containerd.runsc`. The log tree
accepts any such path (the supervision tree's own DNs start at `root`). A DN's
subtree is the DN itself and every DN that extends it by whole parts: `root.a`
holds `root.a.b` but not `root.ab`.

Rules:
    * Validation is anchored (`re.fullmatch`); Go's unanchored check is not copied.
    * The empty string is not a DN. Read and verbosity calls accept it as a pattern
      meaning "the whole tree" (see `in_subtree`).
"""

from __future__ import annotations

from actors.logtree.errors import LogTreeError
from actors.supervisor.core.names import dn_problem, in_subtree

__all__ = ["in_subtree", "validate_dn", "validate_pattern"]


def validate_dn(dn: object) -> str:
    """Checks that `dn` is a valid DN and returns it.

    Args:
        dn: the candidate DN.

    Returns:
        The DN, unchanged.

    Raises:
        LogTreeError: `dn` is not a string, or one of its parts is not a valid name.
    """
    problem = dn_problem(dn)
    if problem is not None:
        raise LogTreeError(f"dn {dn!r} is invalid: {problem}")
    assert isinstance(dn, str)
    return dn


def validate_pattern(pattern: object) -> str:
    """Checks a subtree pattern: a valid DN, or `""` for the whole tree.

    Args:
        pattern: the candidate pattern.

    Returns:
        The pattern, unchanged.

    Raises:
        LogTreeError: the pattern is neither `""` nor a valid DN.
    """
    if pattern == "":
        return ""
    return validate_dn(pattern)
