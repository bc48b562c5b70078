"""Image layers: a tar of `FileEntry`s, or a tar given as a stream, deterministic to the byte.

`make_layer` writes one layer from files: every entry in path order (a parent
directory before what it holds; parents not given are added as `0755`
directories), every header as `tars` writes it (mtime 0, uid and gid 0, no user
or group names, the mode given; PAX format, whose extended headers appear only
for what USTAR cannot hold). The same entries give the same bytes on every
machine. `layer_from_tar` stores a tar someone else made (a stream of chunks, so a
large one is never held whole) as a layer the same way.

With `"gzip"` the tar is compressed by zlib with no file name and mtime 0 (the
same bytes for the same zlib and level); `"none"` (the default) needs nothing but
the tar. zstd is not offered: the standard library of the Pythons we run on has
no zstd, and this floor imports nothing else.

A file's content is bytes or a file on disk (`FileEntry.source`, streamed, so a
large file is read once); the layer is built in memory, or spooled to a file in
`spool_dir` when given. Its blob's digest is of what is stored (compressed or
not); its `diff_id` is the digest of the uncompressed tar, as the image config
lists it.
"""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
import tempfile
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Literal

from actors.images.blobs import CHUNK, Blob
from actors.images.media import OCI_LAYER, OCI_LAYER_GZIP
from actors.images.tars import tar_header

__all__ = [
    "GZIP_LEVEL",
    "OCI_LAYER",
    "OCI_LAYER_GZIP",
    "Compression",
    "FileEntry",
    "Layer",
    "layer_from_tar",
    "make_layer",
    "tar_header",
]

#: How a layer is stored: `"none"` (a plain tar) or `"gzip"`.
Compression = Literal["none", "gzip"]
#: zlib's level for a gzip layer, unless told otherwise.
GZIP_LEVEL = 6


@dataclass(frozen=True, slots=True, kw_only=True)
class FileEntry:
    """One member of a layer, owned by uid 0 and gid 0."""

    #: Its path in the image, e.g. `/pause` or `etc/config.json` (a leading `/` is dropped).
    path: str
    #: `"file"`, `"dir"` or `"symlink"`.
    kind: Literal["file", "dir", "symlink"] = "file"
    #: A file's content, when given as bytes.
    data: bytes = b""
    #: A file on disk whose content is the file's (instead of `data`).
    source: Path | None = None
    #: Its permission bits.
    mode: int = 0o644
    #: A symlink's target.
    target: str = ""

    @property
    def name(self) -> str:
        """Its name in the tar: the path without leading `/`, a directory without trailing `/`."""
        return self.path.strip("/")

    def size(self) -> int:
        """A file's content length in bytes (0 for the others)."""
        if self.kind != "file":
            return 0
        return os.stat(self.source).st_size if self.source is not None else len(self.data)

    def header(self) -> bytes:
        """Its tar header (`tar_header`)."""
        return tar_header(
            self.name, kind=self.kind, size=self.size(), mode=self.mode, target=self.target
        )


@dataclass(frozen=True, slots=True)
class Layer:
    """A layer blob and its `diff_id`."""

    #: The stored layer (its digest is of the stored, possibly compressed, bytes).
    blob: Blob
    #: `sha256:` digest of the uncompressed tar, listed in the image config's `rootfs`.
    diff_id: str


class _Sink:
    """Writes a tar stream, compressed or not, hashing both forms."""

    def __init__(self, out: BinaryIO, compression: Compression, level: int) -> None:
        self.out = out
        self.diff = hashlib.sha256()
        self.stored = hashlib.sha256()
        self.size = 0
        # wbits 31: a gzip wrapper with no file name and mtime 0.
        self.gz = zlib.compressobj(level, zlib.DEFLATED, 31) if compression == "gzip" else None

    def write(self, data: bytes) -> None:
        self.diff.update(data)
        self._emit(self.gz.compress(data) if self.gz is not None else data)

    def close(self) -> None:
        if self.gz is not None:
            self._emit(self.gz.flush())

    def _emit(self, data: bytes) -> None:
        self.stored.update(data)
        self.size += len(data)
        self.out.write(data)


def _with_parents(entries: Iterable[FileEntry]) -> list[FileEntry]:
    """`entries` in path order, with the parent directories not given added."""
    given = {e.name: e for e in entries}
    if "" in given:
        raise ValueError("a layer entry needs a path below '/'")
    for name in list(given):
        parts = name.split("/")
        for i in range(1, len(parts)):
            parent = "/".join(parts[:i])
            given.setdefault(parent, FileEntry(path=parent, kind="dir", mode=0o755))
    return [given[name] for name in sorted(given)]


def _entry_chunks(entry: FileEntry) -> Iterator[bytes]:
    yield entry.header()
    if entry.kind != "file":
        return
    size = 0
    if entry.source is not None:
        expected = entry.size()
        with open(entry.source, "rb") as f:
            while chunk := f.read(CHUNK):
                yield chunk
                size += len(chunk)
        if size != expected:
            raise OSError(f"{str(entry.source)!r} changed while it was read")
    else:
        yield entry.data
        size = len(entry.data)
    yield bytes(-size % tarfile.BLOCKSIZE)


def _files_tar(ordered: list[FileEntry]) -> Iterator[bytes]:
    for entry in ordered:
        yield from _entry_chunks(entry)
    yield bytes(2 * tarfile.BLOCKSIZE)


def make_layer(
    entries: Iterable[FileEntry],
    *,
    compression: Compression = "none",
    level: int = GZIP_LEVEL,
    spool_dir: Path | None = None,
) -> Layer:
    """One layer holding `entries`.

    Args:
        entries: the files, directories and symlinks, in any order; one per path.
        compression: `"none"` (`OCI_LAYER`) or `"gzip"` (`OCI_LAYER_GZIP`).
        level: zlib's level (1-9) when compressed.
        spool_dir: write the blob to a file there (named by its digest's hex), not to memory.

    Raises:
        ValueError: an entry without a path.
        OSError: a source file could not be read, or changed while it was.
    """
    ordered = _with_parents(entries)
    return layer_from_tar(
        _files_tar(ordered), compression=compression, level=level, spool_dir=spool_dir
    )


def layer_from_tar(
    chunks: Iterable[bytes],
    *,
    compression: Compression = "none",
    level: int = GZIP_LEVEL,
    spool_dir: Path | None = None,
) -> Layer:
    """A layer whose uncompressed tar is the concatenation of `chunks`, stored as asked.

    Args:
        chunks: the tar's bytes, in order (e.g. `tars.tar_chunks` of some entries).
        compression: `"none"` (`OCI_LAYER`) or `"gzip"` (`OCI_LAYER_GZIP`).
        level: zlib's level (1-9) when compressed.
        spool_dir: write the blob to a file there (named by its digest's hex), not to memory.

    Raises:
        OSError: the spool file could not be written, or what `chunks` raises.
    """
    media_type = OCI_LAYER_GZIP if compression == "gzip" else OCI_LAYER
    if spool_dir is None:
        out = io.BytesIO()
        sink = _Sink(out, compression, level)
        _drain(sink, chunks)
        blob = Blob(media_type, "sha256:" + sink.stored.hexdigest(), sink.size, data=out.getvalue())
        return Layer(blob, "sha256:" + sink.diff.hexdigest())
    spool_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".layer-", dir=spool_dir)
    try:
        with os.fdopen(fd, "wb") as f:
            sink = _Sink(f, compression, level)
            _drain(sink, chunks)
        final = spool_dir / sink.stored.hexdigest()
        os.replace(tmp, final)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    blob = Blob(media_type, "sha256:" + sink.stored.hexdigest(), sink.size, path=final)
    return Layer(blob, "sha256:" + sink.diff.hexdigest())


def _drain(sink: _Sink, chunks: Iterable[bytes]) -> None:
    for chunk in chunks:
        sink.write(chunk)
    sink.close()
