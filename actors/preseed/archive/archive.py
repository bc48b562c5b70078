"""Opening a preseed file safely and reading it as a seekable, indexed tar.

`open_archive` refuses anything that is not a regular file *before* opening it
for reading (a FIFO or a socket where a tarball should be must never hang the
importer), opens with `O_NONBLOCK`, and checks the type again on the open file.
A gzip or zstd archive (detected by its magic bytes, whatever its name) is
stream-decompressed into an unnamed temporary file (`O_TMPFILE`, so nothing is
left behind if the process dies), because reading a tar with seeks is far faster
than streaming it. Decompression output is produced in bounded chunks, so a
"compression bomb" costs disk, not memory.

The result is an `Archive`: a file descriptor, the tar index of it, and
`read_json` that reads a member of at most `MAX_JSON_BYTES` (16 MiB) and parses it.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import tempfile
import zlib
from dataclasses import dataclass
from typing import IO, Any, Self, cast

import zstandard

from actors.preseed.archive.tarindex import TarEntry, TarIndex, index_tar
from actors.preseed.errors import ArchiveError, IncompleteArchive

__all__ = ["MAX_JSON_BYTES", "Archive", "open_archive", "parse_json"]

MAX_JSON_BYTES = 16 << 20
_CHUNK = 1 << 20
_GZIP_MAGIC = b"\x1f\x8b"
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_KINDS = [
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a fifo"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
]


@dataclass
class Archive:
    """An open tar archive, indexed."""

    #: Descriptor of the (decompressed) tar; read with `pread` only.
    fd: int
    #: Size of the tar in bytes.
    size: int
    #: The tar's files and links.
    index: TarIndex
    #: "none", "gzip" or "zstd".
    compression: str
    #: Size of the file as found on disk, in bytes.
    source_size: int
    #: Modification time of that file, in nanoseconds.
    source_mtime_ns: int

    def pread(self, offset: int, length: int) -> bytes:
        """Read exactly `length` bytes at `offset` of the tar.

        Raises:
            ArchiveError: the tar ends before that (it changed under us).
        """
        data = os.pread(self.fd, length, offset)
        if len(data) != length:
            raise IncompleteArchive(f"archive is truncated at offset {offset + len(data)}")
        return data

    def sha256(self, entry: TarEntry) -> str:
        """The sha256 digest of a member, read in 1 MiB chunks."""
        hasher = hashlib.sha256()
        offset, end = entry.offset, entry.offset + entry.size
        while offset < end:
            data = self.pread(offset, min(_CHUNK, end - offset))
            hasher.update(data)
            offset += len(data)
        return "sha256:" + hasher.hexdigest()

    def read_member(self, entry: TarEntry) -> bytes:
        """Read a JSON member of at most `MAX_JSON_BYTES`.

        Raises:
            ArchiveError: the member is larger than the limit.
        """
        if entry.size > MAX_JSON_BYTES:
            raise ArchiveError(
                f"{entry.name!r} is larger than the {MAX_JSON_BYTES >> 20} MiB limit for json "
                f"({entry.size} bytes)"
            )
        return self.pread(entry.offset, entry.size)

    def read_json(self, entry: TarEntry) -> Any:
        """Read and parse a JSON member of at most `MAX_JSON_BYTES`.

        Raises:
            ArchiveError: too large, not UTF-8 JSON, or nested too deeply.
        """
        return parse_json(self.read_member(entry), repr(entry.name))

    def close(self) -> None:
        """Close the descriptor (the temporary file, if any, vanishes with it)."""
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def parse_json(data: bytes, what: str) -> Any:
    """Parse a JSON document; `what` names it in the error.

    Raises:
        ArchiveError: the bytes are not UTF-8 JSON, or are nested too deeply.
    """
    try:
        return json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        raise ArchiveError(f"{what} is not valid json: {e}") from None
    except RecursionError:
        raise ArchiveError(f"{what} is not valid json: nested too deeply") from None


def _kind(mode: int) -> str:
    for test, name in _KINDS:
        if test(mode):
            return name
    return "not a regular file"


def _open_regular(path: str | os.PathLike[str]) -> tuple[int, os.stat_result]:
    try:
        before = os.stat(path)
    except OSError as e:
        raise ArchiveError(f"cannot open: {e.strerror}") from None
    if not stat.S_ISREG(before.st_mode):
        raise ArchiveError(f"not a regular file ({_kind(before.st_mode)})")
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY)
    except OSError as e:
        raise ArchiveError(f"cannot open: {e.strerror}") from None
    after = os.fstat(fd)
    if not stat.S_ISREG(after.st_mode):
        os.close(fd)
        raise ArchiveError(f"not a regular file ({_kind(after.st_mode)})")
    return fd, after


def _gunzip(src: int, size: int, out: int) -> None:
    d = zlib.decompressobj(16 + zlib.MAX_WBITS)
    offset = 0
    while offset < size:
        data = os.pread(src, _CHUNK, offset)
        if not data:
            break
        offset += len(data)
        while data:
            try:
                chunk = d.decompress(data, _CHUNK)
            except zlib.error as e:
                raise ArchiveError(f"corrupt gzip stream: {e}") from None
            _write_all(out, chunk)
            data = d.unconsumed_tail
            if d.eof:
                rest = d.unused_data + data
                if not rest:
                    break
                if not rest.startswith(_GZIP_MAGIC):
                    raise ArchiveError("corrupt gzip stream: trailing garbage after the data")
                d = zlib.decompressobj(16 + zlib.MAX_WBITS)
                data = rest
    if not d.eof:
        raise IncompleteArchive("corrupt gzip stream: unexpected end of data")


class _Source:
    """A minimal file object over a descriptor, for zstandard's stream reader."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.offset = 0

    def read(self, n: int = -1) -> bytes:
        data = os.pread(self.fd, n if n >= 0 else _CHUNK, self.offset)
        self.offset += len(data)
        return data


def _zstd_frames_complete(fd: int, size: int) -> bool:
    """Walk the zstd frame and block headers: does the last frame end properly?"""
    offset = 0
    while offset < size:
        head = os.pread(fd, 18, offset)
        if len(head) < 4:
            return False
        magic = int.from_bytes(head[:4], "little")
        if 0x184D2A50 <= magic <= 0x184D2A5F:  # skippable frame
            if len(head) < 8:
                return False
            offset += 8 + int.from_bytes(head[4:8], "little")
            continue
        if head[:4] != _ZSTD_MAGIC or len(head) < 5:
            return False
        desc = head[4]
        fcs_flag, single, has_checksum, dict_flag = (
            desc >> 6,
            (desc >> 5) & 1,
            (desc >> 2) & 1,
            desc & 3,
        )
        header = 1 + (0 if single else 1) + (0, 1, 2, 4)[dict_flag]
        header += (1 if single else 0, 2, 4, 8)[fcs_flag]
        offset += 4 + header
        while True:
            block = os.pread(fd, 3, offset)
            if len(block) < 3:
                return False
            value = int.from_bytes(block, "little")
            last, kind, length = value & 1, (value >> 1) & 3, value >> 3
            offset += 3 + (1 if kind == 1 else length)
            if offset > size:
                return False
            if last:
                break
        offset += 4 if has_checksum else 0
    return offset == size


def _unzstd(src: int, size: int, out: int) -> None:
    reader = zstandard.ZstdDecompressor().stream_reader(
        cast("IO[bytes]", _Source(src)), read_size=_CHUNK, read_across_frames=True
    )
    try:
        while chunk := reader.read(_CHUNK):
            _write_all(out, chunk)
    except zstandard.ZstdError as e:
        raise ArchiveError(f"corrupt zstd stream: {e}") from None
    if not _zstd_frames_complete(src, size):
        raise IncompleteArchive("corrupt zstd stream: unexpected end of data")


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _decompress(src: int, size: int, kind: str, temp_dir: str | None) -> tuple[int, int]:
    try:
        with tempfile.TemporaryFile(dir=temp_dir) as tmp:
            out = os.dup(tmp.fileno())
    except OSError as e:
        raise ArchiveError(f"cannot create a temporary file for decompression: {e}") from None
    try:
        (_gunzip if kind == "gzip" else _unzstd)(src, size, out)
        return out, os.fstat(out).st_size
    except OSError as e:
        os.close(out)
        raise ArchiveError(f"cannot decompress the archive: {e.strerror or e}") from None
    except BaseException:
        os.close(out)
        raise


def open_archive(path: str | os.PathLike[str], *, temp_dir: str | None = None) -> Archive:
    """Open, decompress if needed, and index a tar archive.

    Args:
        path: The file. It must be a regular file (symbolic links are followed).
        temp_dir: Where a compressed archive is decompressed (default: the system's).

    Raises:
        ArchiveError: not a regular file, empty, corrupt compression, or a bad tar.
    """
    fd, st = _open_regular(path)
    try:
        if st.st_size == 0:
            raise IncompleteArchive("file is empty")
        magic = os.pread(fd, 4, 0)
        compression = "none"
        tar_fd, tar_size = fd, st.st_size
        if magic.startswith(_GZIP_MAGIC):
            compression = "gzip"
        elif magic == _ZSTD_MAGIC:
            compression = "zstd"
        if compression != "none":
            tar_fd, tar_size = _decompress(fd, st.st_size, compression, temp_dir)
            os.close(fd)
            fd = tar_fd
        index = index_tar(tar_fd, tar_size)
        return Archive(tar_fd, tar_size, index, compression, st.st_size, st.st_mtime_ns)
    except BaseException:
        os.close(fd)
        raise
