"""Tar members written by hand: deterministic headers, streamed content, nothing of the machine.

Every archive the project writes (a layer, an OCI tarball) is a sequence of
`TarMember`s written by `write_tar`: each header in PAX format (extended headers
only for what USTAR cannot hold), mtime 0, uid and gid 0, no owner names, the
mode given; a file's content streamed from bytes or a `Blob` and padded to the
512-byte block; two zero blocks at the end. The same entries give the same bytes
on every machine. A name is written as given (no leading `/` removed, no `..`
refused): the caller decides what is well-formed, so a test can write what is
not.
"""

from __future__ import annotations

import os
import tarfile
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Literal

from actors.images.blobs import CHUNK, Blob

__all__ = ["TarMember", "tar_chunks", "tar_header", "write_tar"]

_KINDS = {"file": tarfile.REGTYPE, "dir": tarfile.DIRTYPE, "symlink": tarfile.SYMTYPE}


def _header(name: str, type_: bytes, size: int, mode: int, linkname: str) -> bytes:
    info = tarfile.TarInfo(name)
    info.type = type_
    info.size = size
    info.mode = mode & 0o7777
    info.mtime = 0
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.linkname = linkname
    return info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")


def tar_header(
    name: str,
    *,
    kind: Literal["file", "dir", "symlink"] = "file",
    size: int = 0,
    mode: int = 0o644,
    target: str = "",
) -> bytes:
    """One tar header with a fixed owner (0:0, no names) and time (0): only the entry decides it.

    Args:
        name: the member's name, without leading `/` (a directory gets its trailing `/`).
        kind: `"file"`, `"dir"` or `"symlink"`.
        size: a file's content length in bytes.
        mode: the permission bits.
        target: a symlink's target.
    """
    return _header(
        name + ("/" if kind == "dir" else ""),
        _KINDS[kind],
        size if kind == "file" else 0,
        mode,
        target,
    )


@dataclass(frozen=True, slots=True)
class TarMember:
    """One member of an archive, written as given."""

    #: Its name inside the archive, as is (a directory's should end in `/`).
    name: str
    #: A regular file's content (bytes, or a `Blob` streamed from memory or its file).
    data: bytes | Blob | None = None
    #: Its `tarfile` type flag (`REGTYPE`, `DIRTYPE`, `SYMTYPE`, `LNKTYPE`, `CHRTYPE`, …).
    type: bytes = tarfile.REGTYPE
    #: A symlink's or hard link's target.
    linkname: str = ""
    #: Its permission bits.
    mode: int = 0o644

    @classmethod
    def directory(cls, name: str) -> TarMember:
        """A directory member `name/`, mode 0755."""
        return cls(name.rstrip("/") + "/", type=tarfile.DIRTYPE, mode=0o755)

    @property
    def size(self) -> int:
        """The content length its header states (that of `data`; 0 without)."""
        return self.data.size if isinstance(self.data, Blob) else len(self.data or b"")

    def header(self) -> bytes:
        """Its tar header."""
        return _header(self.name, self.type, self.size, self.mode, self.linkname)


def tar_chunks(entries: Iterable[TarMember]) -> Iterator[bytes]:
    """The bytes of a tar of `entries`, in order, as a stream of chunks (at most `CHUNK` each)."""
    for entry in entries:
        yield entry.header()
        if entry.data is None or entry.type not in tarfile.REGULAR_TYPES:
            continue
        if isinstance(entry.data, bytes):
            yield entry.data
        else:
            with entry.data.open() as src:
                while chunk := src.read(CHUNK):
                    yield chunk
        yield bytes(-entry.size % tarfile.BLOCKSIZE)
    yield bytes(2 * tarfile.BLOCKSIZE)


def _write_stream(out: BinaryIO, entries: Iterable[TarMember]) -> None:
    for chunk in tar_chunks(entries):
        out.write(chunk)


def write_tar(out: Path | BinaryIO, entries: Iterable[TarMember]) -> None:
    """Writes a tar of `entries`, in order, to a path (atomically, mode 0644) or a stream.

    Raises:
        OSError: the file could not be written (the path is then left as it was).
    """
    if not isinstance(out, Path):
        _write_stream(out, entries)
        return
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            _write_stream(f, entries)
        os.chmod(tmp, 0o644)
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
