"""Layer blobs: tars of given files, or of one file of random bytes, plain or gzip.

Deterministic: every tar header has mtime 0, uid/gid 0 and no user names, and a gzip
stream carries no name and mtime 0, so the same files (or seed) give the same digest.
"""

from __future__ import annotations

import hashlib
import io
import tarfile
import zlib
from collections.abc import Mapping
from pathlib import Path
from typing import BinaryIO, Literal

from tests.support.images.blobs import OCI_LAYER, OCI_LAYER_GZIP, Blob, iter_random_bytes

__all__ = ["Compression", "make_layer", "random_layer"]

Compression = Literal["none", "gzip"]


class _HashingSink:
    """Writes a layer tar, optionally gzip-compressed, while hashing both forms."""

    def __init__(self, out: BinaryIO, compression: Compression, level: int) -> None:
        self.out = out
        self.diff = hashlib.sha256()
        self.blob = hashlib.sha256()
        self.size = 0
        # wbits 31: a gzip wrapper with mtime 0 and no file name, so output is deterministic.
        self.gz = zlib.compressobj(level, zlib.DEFLATED, 31) if compression == "gzip" else None

    def write(self, data: bytes) -> None:
        self.diff.update(data)
        self._emit(self.gz.compress(data) if self.gz else data)

    def close(self) -> None:
        if self.gz:
            self._emit(self.gz.flush())

    def _emit(self, data: bytes) -> None:
        self.blob.update(data)
        self.size += len(data)
        self.out.write(data)


def _layer_media_type(compression: Compression) -> str:
    return {"none": OCI_LAYER, "gzip": OCI_LAYER_GZIP}[compression]


def _tar_header(name: str, size: int, kind: bytes = tarfile.REGTYPE, mode: int = 0o644) -> bytes:
    info = tarfile.TarInfo(name)
    info.size, info.type, info.mode, info.mtime = size, kind, mode, 0
    return info.tobuf(tarfile.PAX_FORMAT)


def _layer_blob(
    sink: _HashingSink, media_type: str, *, data: bytes | None = None, path: Path | None = None
) -> Blob:
    """The blob a closed sink wrote."""
    return Blob(
        media_type,
        "sha256:" + sink.blob.hexdigest(),
        sink.size,
        data=data,
        path=path,
        diff_id="sha256:" + sink.diff.hexdigest(),
    )


def make_layer(
    files: Mapping[str, bytes], *, compression: Compression = "none", level: int = 6
) -> Blob:
    """A layer blob: a tar of `files` (path → content), parent directories included.

    Args:
        files: relative file paths and their contents, written in sorted order.
        compression: "none" (media type `...layer.v1.tar`) or "gzip" (`...tar+gzip`).
        level: the gzip level.
    """
    media_type = _layer_media_type(compression)
    out = io.BytesIO()
    sink = _HashingSink(out, compression, level)
    dirs: set[str] = set()
    for name in sorted(files):
        parts = name.strip("/").split("/")
        for i in range(1, len(parts)):
            d = "/".join(parts[:i]) + "/"
            if d not in dirs:
                dirs.add(d)
                sink.write(_tar_header(d, 0, tarfile.DIRTYPE, 0o755))
        content = files[name]
        sink.write(_tar_header(name.strip("/"), len(content)))
        sink.write(content + bytes(-len(content) % 512))
    sink.write(bytes(1024))
    sink.close()
    return _layer_blob(sink, media_type, data=out.getvalue())


def random_layer(
    size: int,
    *,
    seed: int,
    compression: Compression = "none",
    spool_dir: Path | None = None,
    level: int = 1,
) -> Blob:
    """A layer holding one file (`data/random-<seed>.bin`) of `size` incompressible bytes.

    Args:
        size: bytes of file content (the tar adds about 2 KiB of headers and padding).
        seed: makes the content; the same seed gives the same blob.
        compression: "none" or "gzip" (gzip barely shrinks random data but costs CPU).
        spool_dir: write the blob to a file there (`<digest hex>`), not to memory.
        level: the gzip level.
    """
    media_type = _layer_media_type(compression)
    tmp = spool_dir / f".spool-{seed}-{size}-{compression}" if spool_dir else None
    if tmp:
        tmp.parent.mkdir(parents=True, exist_ok=True)
    with open(tmp, "wb") if tmp else io.BytesIO() as out:
        sink = _HashingSink(out, compression, level)
        sink.write(_tar_header("data/", 0, tarfile.DIRTYPE, 0o755))
        sink.write(_tar_header(f"data/random-{seed}.bin", size))
        for chunk in iter_random_bytes(size, seed):
            sink.write(chunk)
        sink.write(bytes(-size % 512) + bytes(1024))
        sink.close()
        data = out.getvalue() if isinstance(out, io.BytesIO) else None
    if tmp is None:
        return _layer_blob(sink, media_type, data=data)
    return _layer_blob(sink, media_type, path=tmp.replace(tmp.with_name(sink.blob.hexdigest())))
