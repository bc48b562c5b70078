"""Lets gVisor's sandbox reach its TMPDIR inside the private state directory.

runsc's sandbox process runs as user `nobody` (65534) in a user namespace of
its own, and at start it opens its `TMPDIR` (`O_PATH`) to mount the tmpfs of
its chroot there. Under a 0700 state directory that open fails
(`Open(<state>/tmp, _, _): permission denied`). Rather than a world-writable
`/tmp`, or opening the state directory to everyone, `grant_search` adds one
POSIX ACL entry, `user:65534:--x`, to the directories on the way (the state
directory and `<state>/runsc`): search only — nobody can list, read or write
anything there — and only for that one user. Files keep their own modes.

The ACL is written as the kernel's `system.posix_acl_access` xattr (version 2:
entries of tag, permissions, id, sorted by tag then id), so no `setfacl` is
needed. `search_blocked_at` finds an ancestor the sandbox cannot pass, for the
preflight check to name.
"""

from __future__ import annotations

import os
import stat
import struct
from pathlib import Path

__all__ = ["SANDBOX_UID", "AccessError", "grant_search", "named_grants", "search_blocked_at"]

#: The host uid of runsc's sandbox and gofer-less processes (`nobody`).
SANDBOX_UID = 65534
_XATTR = "system.posix_acl_access"
_VERSION = 2
_USER_OBJ, _USER, _GROUP_OBJ, _GROUP, _MASK, _OTHER = 0x01, 0x02, 0x04, 0x08, 0x10, 0x20
_UNDEFINED_ID = 0xFFFFFFFF
_EXECUTE = 1


class AccessError(Exception):
    """The ACL could not be set: the text names the directory and the cause."""


def _entries(path: Path) -> list[tuple[int, int, int]]:
    try:
        data = os.getxattr(path, _XATTR)
    except OSError:
        return []
    if len(data) < 4 or struct.unpack_from("<I", data)[0] != _VERSION:
        return []
    return [struct.unpack_from("<HHI", data, off) for off in range(4, len(data) - 7, 8)]


def named_grants(path: Path) -> dict[str, int]:
    """The ACL's named entries of `path`: `{"user:65534": 1, "group:10": 5}` (rwx bits)."""
    kinds = {_USER: "user", _GROUP: "group"}
    return {f"{kinds[tag]}:{ident}": perm for tag, perm, ident in _entries(path) if tag in kinds}


def grant_search(path: Path, uid: int = SANDBOX_UID) -> None:
    """Adds `user:<uid>:--x` to `path`'s access ACL, keeping its mode's bits.

    Raises:
        AccessError: the file system refuses ACLs (or the path is gone).
    """
    mode = os.stat(path).st_mode
    owner, group, other = (mode >> 6) & 7, (mode >> 3) & 7, mode & 7
    named = {(tag, ident): perm for tag, perm, ident in _entries(path) if tag in (_USER, _GROUP)}
    named[(_USER, uid)] = named.get((_USER, uid), 0) | _EXECUTE
    mask = group
    for perm in named.values():
        mask |= perm
    entries = [(_USER_OBJ, owner, _UNDEFINED_ID)]
    entries += [(tag, perm, ident) for (tag, ident), perm in sorted(named.items()) if tag == _USER]
    entries.append((_GROUP_OBJ, group, _UNDEFINED_ID))
    entries += [(tag, perm, ident) for (tag, ident), perm in sorted(named.items()) if tag == _GROUP]
    entries += [(_MASK, mask, _UNDEFINED_ID), (_OTHER, other, _UNDEFINED_ID)]
    data = struct.pack("<I", _VERSION) + b"".join(struct.pack("<HHI", *e) for e in entries)
    try:
        os.setxattr(path, _XATTR, data)
    except OSError as e:
        raise AccessError(
            f"cannot let runsc's sandbox (uid {uid}) search {str(path)!r}: {e.strerror or e}; "
            "the runsc handler needs a file system with POSIX ACLs for the state directory"
        ) from e


def _searchable(path: Path, uid: int) -> bool:
    st = os.stat(path)
    if st.st_uid == uid:
        return bool(st.st_mode & stat.S_IXUSR)
    entries = _entries(path)
    mask = next((perm for tag, perm, _ in entries if tag == _MASK), 7)
    for tag, perm, ident in entries:
        if tag == _USER and ident == uid:
            return bool(perm & mask & _EXECUTE)
    return bool(st.st_mode & stat.S_IXOTH)


def search_blocked_at(path: Path, uid: int = SANDBOX_UID) -> Path | None:
    """The first directory from `/` down to `path` that `uid` may not search, or None.

    Group membership is not considered (`nobody` is in no group that matters).
    """
    for directory in [*reversed(path.parents), path]:
        try:
            if not _searchable(directory, uid):
                return directory
        except OSError:
            return directory
    return None
