"""What identifies a file from one start of the agent to the next: its key.

The agent keeps what it learned of a file beside its state (what containerd's
`--version` printed, the sandbox image it built from catatonit) and trusts it
while the file is the same, unchanged file: the same resolved path, device,
inode, size, mtime and ctime. An upgrade in place, a copy over it or an edit
changes its ctime, which no one can set back.
"""

from __future__ import annotations

import os
import shutil

__all__ = ["file_key"]


def file_key(path: str) -> list[object] | None:
    """The key of the file `path` names (a bare name is looked up on PATH, as
    `subprocess` does), or None when there is none (a JSON-ready list)."""
    found = shutil.which(path) if os.sep not in path else path
    if found is None:
        return None
    try:
        st = os.stat(found)
    except OSError:
        return None
    real = os.path.realpath(found)
    return [real, st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns]
