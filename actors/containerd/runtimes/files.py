"""Writing the files containerd and its runtimes read: whole, or not at all.

containerd's config, the runsc launcher and the default CNI network are read by
other processes at any moment (containerd at its start, the runc shim at every
runsc call, CRI when the CNI directory changes): each is written to a temporary
file beside its target and renamed over it, so a reader sees the old file or the
new one, never half of one, and a failed write leaves the old file in place.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

__all__ = ["write_atomically"]


def write_atomically(path: Path, text: str, mode: int) -> None:
    """Writes `text` (UTF-8) to `path` with permission bits `mode`, atomically.

    Creates `path`'s directory if missing.

    Raises:
        OSError: the directory or the file could not be written; `path` is unchanged.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
