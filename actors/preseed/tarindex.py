"""A strict, seekable tar reader that only indexes: names → byte ranges.

`index_tar` walks the headers of a tar file through `os.pread` (it never reads
file data) and returns a `TarIndex`: for every regular file its offset and size
in the tar, and the archive's links resolved to the entries they name. It
understands ustar, POSIX pax (`x`, `g`) and GNU long names (`L`, `K`).

Rules (each broken rule raises `ArchiveError` naming the entry):

- names are cleaned like Go's `path.Clean`; an absolute name or a `..`
  component is refused, as is a name seen twice;
- symbolic links must resolve inside the archive (relative to their directory),
  hard links must name an earlier regular file;
- character and block devices, FIFOs, sparse files and unknown entry types are
  refused; directories are ignored;
- the header checksum must be right, sizes must be octal or base-256 numbers
  that fit the file, and pax/long-name records are bounded (1 MiB), as is the
  number of entries, so that no input makes the reader use unbounded memory.
"""

from __future__ import annotations

import os
import posixpath
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from actors.preseed.errors import ArchiveError

__all__ = ["MAX_ENTRIES", "TarEntry", "TarIndex", "index_tar"]

BLOCK = 512
MAX_ENTRIES = 100_000
_MAX_META = 1 << 20
_MAX_LINK_DEPTH = 16
_REGULAR = (b"0", b"\0", b"7")
_REFUSED = {
    b"3": "a character device",
    b"4": "a block device",
    b"6": "a fifo",
    b"S": "a sparse file",
}


@dataclass(frozen=True, slots=True)
class TarEntry:
    """One regular file in the tar.

    Attributes:
        name: Cleaned path inside the archive.
        offset: Byte offset of the file's data in the tar file.
        size: Size of the data in bytes.
    """

    name: str
    offset: int
    size: int


@dataclass(frozen=True, slots=True)
class TarIndex:
    """The regular files of a tar and its links, resolved.

    Attributes:
        files: Regular files by cleaned name, in archive order.
        links: Symbolic and hard links: cleaned name → cleaned target name.
    """

    files: Mapping[str, TarEntry]
    links: Mapping[str, str]

    def lookup(self, name: str) -> TarEntry | None:
        """The regular file at `name`, following links; None if there is none.

        Raises:
            ArchiveError: the links form a loop or a chain longer than 16.
        """
        for _ in range(_MAX_LINK_DEPTH):
            entry = self.files.get(name)
            if entry is not None:
                return entry
            target = self.links.get(name)
            if target is None:
                return None
            name = target
        raise ArchiveError(f"link {name!r} is part of a loop or too long a chain")


def _clean(raw: str, what: str = "entry") -> str:
    if raw.startswith("/"):
        raise ArchiveError(f"{what} {raw!r} has an absolute path")
    if ".." in raw.split("/"):
        raise ArchiveError(f"{what} {raw!r} escapes the archive")
    cleaned = posixpath.normpath(raw) if raw else "."
    return cleaned


def _number(field: bytes, what: str) -> int:
    if field and field[0] & 0x80:
        if field[0] == 0xFF:
            raise ArchiveError(f"{what} is negative")
        value = field[0] & 0x7F
        for byte in field[1:]:
            value = (value << 8) | byte
        return value
    text = field.split(b"\0", 1)[0].strip(b" ")
    if not text:
        return 0
    try:
        return int(text, 8)
    except ValueError:
        raise ArchiveError(f"{what} {text!r} is not an octal number") from None


def _checksum_ok(header: bytes) -> bool:
    stored = header[148:156]
    try:
        expected = _number(stored, "checksum")
    except ArchiveError:
        return False
    blanked = header[:148] + b" " * 8 + header[156:]
    unsigned = sum(blanked)
    signed = sum(b - 256 if b > 127 else b for b in blanked)
    return expected in (unsigned, signed)


def _pax_records(data: bytes, offset: int) -> dict[str, str]:
    records: dict[str, str] = {}
    pos = 0
    while pos < len(data):
        if data[pos:].strip(b"\0") == b"":
            break
        space = data.find(b" ", pos)
        if space < 0:
            raise ArchiveError(f"corrupt pax header at offset {offset}")
        try:
            length = int(data[pos:space])
        except ValueError:
            raise ArchiveError(f"corrupt pax header at offset {offset}") from None
        if length <= space - pos or pos + length > len(data):
            raise ArchiveError(f"corrupt pax header at offset {offset}")
        record = data[space + 1 : pos + length]
        if not record.endswith(b"\n") or b"=" not in record:
            raise ArchiveError(f"corrupt pax header at offset {offset}")
        key, value = record[:-1].split(b"=", 1)
        records[key.decode("utf-8", "surrogateescape")] = value.decode("utf-8", "surrogateescape")
        pos += length
    return records


def _headers(fd: int, file_size: int) -> Iterator[tuple[bytes, int, int, str, str]]:
    """Yield (typeflag, data offset, size, name, linkname) with pax/GNU records applied."""
    offset = 0
    pending: dict[str, str] = {}
    count = 0
    while True:
        header = os.pread(fd, BLOCK, offset)
        if not header:
            return
        if len(header) < BLOCK:
            raise ArchiveError(f"archive is truncated at offset {offset}")
        if header == bytes(BLOCK):
            following = os.pread(fd, BLOCK, offset + BLOCK)
            if following and following != bytes(len(following)):
                raise ArchiveError(f"corrupt tar header at offset {offset + BLOCK}")
            return
        if not _checksum_ok(header):
            if offset == 0:
                raise ArchiveError("not a tar archive")
            raise ArchiveError(f"corrupt tar header at offset {offset}")
        count += 1
        if count > MAX_ENTRIES * 2:
            raise ArchiveError(f"archive has more than {MAX_ENTRIES} entries")
        typeflag = header[156:157]
        size = _number(header[124:136], f"size of the entry at offset {offset}")
        data = offset + BLOCK
        if data + size > file_size:
            raise ArchiveError(f"archive is truncated at offset {file_size}")
        next_offset = data + (size + BLOCK - 1) // BLOCK * BLOCK
        if typeflag in (b"x", b"g", b"L", b"K"):
            if size > _MAX_META:
                raise ArchiveError(f"tar metadata record at offset {offset} is too large")
            payload = os.pread(fd, size, data)
            if typeflag == b"x":
                pending.update(_pax_records(payload, offset))
            elif typeflag == b"L":
                pending["path"] = payload.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")
            elif typeflag == b"K":
                pending["linkpath"] = payload.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")
            offset = next_offset
            continue
        name = header[0:100].split(b"\0", 1)[0]
        if header[257:263] == b"ustar\x00":
            prefix = header[345:500].split(b"\0", 1)[0]
            if prefix:
                name = prefix + b"/" + name
        link = header[157:257].split(b"\0", 1)[0]
        name_text = pending.pop("path", None) or name.decode("utf-8", "surrogateescape")
        link_text = pending.pop("linkpath", None) or link.decode("utf-8", "surrogateescape")
        if "size" in pending:
            try:
                size = int(pending.pop("size"))
            except ValueError:
                raise ArchiveError(f"corrupt pax size at offset {offset}") from None
            if size < 0 or data + size > file_size:
                raise ArchiveError(f"archive is truncated at offset {file_size}")
            next_offset = data + (size + BLOCK - 1) // BLOCK * BLOCK
        pending.clear()
        yield typeflag, data, size, name_text, link_text
        offset = next_offset


def index_tar(fd: int, file_size: int) -> TarIndex:
    """Index the tar in `fd` (a seekable file of `file_size` bytes).

    Raises:
        ArchiveError: the tar is malformed or breaks one of the module's rules.
    """
    files: dict[str, TarEntry] = {}
    links: dict[str, str] = {}
    seen: set[str] = set()
    for typeflag, data, size, raw_name, raw_link in _headers(fd, file_size):
        name = _clean(raw_name)
        if typeflag == b"5":
            continue
        if name == ".":
            raise ArchiveError(f"entry {raw_name!r} has an empty name")
        if name in seen:
            raise ArchiveError(f"duplicate entry {name!r}")
        seen.add(name)
        if len(seen) > MAX_ENTRIES:
            raise ArchiveError(f"archive has more than {MAX_ENTRIES} entries")
        if typeflag in _REGULAR:
            files[name] = TarEntry(name, data, size)
        elif typeflag == b"2":
            if raw_link.startswith("/"):
                raise ArchiveError(f"symlink {name!r} points out of the archive ({raw_link!r})")
            target = posixpath.normpath(posixpath.join(posixpath.dirname(name), raw_link))
            if target == ".." or target.startswith("../"):
                raise ArchiveError(f"symlink {name!r} points out of the archive ({raw_link!r})")
            links[name] = target
        elif typeflag == b"1":
            if raw_link.startswith("/") or ".." in raw_link.split("/"):
                raise ArchiveError(f"hard link {name!r} points out of the archive ({raw_link!r})")
            target = posixpath.normpath(raw_link)
            if target not in files:
                raise ArchiveError(
                    f"hard link {name!r} points to {raw_link!r}, which is not an earlier file"
                )
            links[name] = target
        elif typeflag in _REFUSED:
            raise ArchiveError(f"entry {name!r} is {_REFUSED[typeflag]}")
        else:
            raise ArchiveError(f"entry {name!r} has unsupported type {typeflag!r}")
    return TarIndex(files=files, links=links)
