"""A strict, seekable tar reader that only indexes: names → byte ranges.

`index_tar` walks the headers of a tar file through `os.pread` (it never reads
file data) and returns a `TarIndex`: for every regular file its offset and size
in the tar, and the archive's links resolved to the entries they name. It
understands ustar, POSIX pax (`x`, `g`) and GNU long names (`L`, `K`).

Rules (each broken rule raises `ArchiveError` naming the entry):

- names are cleaned like Go's `path.Clean`; an absolute name or a `..`
  component is refused, as is a name seen twice (naming both entries: digest,
  size and offset, and saying whether their content differs — Go's reader lets
  the last one win);
- the archive must end with its end-of-archive blocks: a file that ends before
  them (or inside an entry) raises `IncompleteArchive`, which a watcher reads
  as "still being copied";
- symbolic links must resolve inside the archive (relative to their directory),
  hard links must name an earlier regular file;
- character and block devices, FIFOs, sparse files and unknown entry types are
  refused; directories are ignored;
- the header checksum must be right, sizes must be octal or base-256 numbers
  that fit the file, and pax/long-name records are bounded (1 MiB), as is the
  number of entries, so that no input makes the reader use unbounded memory.
"""

from __future__ import annotations

import hashlib
import os
import posixpath
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from actors.preseed.errors import ArchiveError, IncompleteArchive

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


# The fields of a ustar header block, as byte ranges (POSIX.1-1988 + ustar).
_NAME = slice(0, 100)
_SIZE = slice(124, 136)
_CHECKSUM = slice(148, 156)
_TYPEFLAG = slice(156, 157)
_LINKNAME = slice(157, 257)
_MAGIC = slice(257, 263)
_PREFIX = slice(345, 500)
_USTAR = b"ustar\x00"
_META = (b"x", b"g", b"L", b"K")


@dataclass(frozen=True, slots=True)
class TarEntry:
    """One regular file in the tar."""

    #: Cleaned path inside the archive.
    name: str
    #: Byte offset of the file's data in the tar file.
    offset: int
    #: Size of the data in bytes.
    size: int


@dataclass(frozen=True, slots=True)
class TarIndex:
    """The regular files of a tar and its links, resolved."""

    #: Regular files by cleaned name, in archive order.
    files: Mapping[str, TarEntry]
    #: Symbolic and hard links: cleaned name → cleaned target name.
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
    stored = header[_CHECKSUM]
    try:
        expected = _number(stored, "checksum")
    except ArchiveError:
        return False
    blanked = header[: _CHECKSUM.start] + b" " * 8 + header[_CHECKSUM.stop :]
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


@dataclass(frozen=True, slots=True)
class _Header:
    """One tar entry as its header block(s) describe it, pax/GNU records applied."""

    #: The entry type byte (`b"0"` regular, `b"2"` symlink, …).
    typeflag: bytes
    #: Byte offset of the entry's data in the tar.
    data: int
    #: Size of the data in bytes.
    size: int
    #: The raw (uncleaned) path.
    name: str
    #: The raw link target ("" for non-links).
    link: str
    #: Offset of the header after this entry.
    next: int


def _text(field: bytes) -> str:
    return field.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")


def _padded(data: int, size: int) -> int:
    return data + (size + BLOCK - 1) // BLOCK * BLOCK


def _block(fd: int, offset: int) -> bytes | None:
    """The header block at `offset`, or None at the end-of-archive marker."""
    header = os.pread(fd, BLOCK, offset)
    if not header:
        raise IncompleteArchive(
            f"archive is truncated at offset {offset}: it ends without its end-of-archive blocks"
        )
    if len(header) < BLOCK:
        raise IncompleteArchive(f"archive is truncated at offset {offset}")
    if header == bytes(BLOCK):
        following = os.pread(fd, BLOCK, offset + BLOCK)
        if following and following != bytes(len(following)):
            raise ArchiveError(f"corrupt tar header at offset {offset + BLOCK}")
        return None
    if not _checksum_ok(header):
        if offset == 0:
            raise ArchiveError("not a tar archive")
        raise ArchiveError(f"corrupt tar header at offset {offset}")
    return header


def _apply_meta(typeflag: bytes, payload: bytes, offset: int, pending: dict[str, str]) -> None:
    """Record a pax (`x`) or GNU long-name (`L`, `K`) record for the next entry."""
    if typeflag == b"x":
        pending.update(_pax_records(payload, offset))
    elif typeflag == b"L":
        pending["path"] = _text(payload)
    elif typeflag == b"K":
        pending["linkpath"] = _text(payload)


def _entry(header: bytes, offset: int, file_size: int, pending: dict[str, str]) -> _Header:
    """The entry of a (non-metadata) header block, with the pending records applied."""
    data = offset + BLOCK
    size = _number(header[_SIZE], f"size of the entry at offset {offset}")
    name = header[_NAME].split(b"\0", 1)[0]
    if header[_MAGIC] == _USTAR:
        prefix = header[_PREFIX].split(b"\0", 1)[0]
        if prefix:
            name = prefix + b"/" + name
    name_text = pending.pop("path", None) or name.decode("utf-8", "surrogateescape")
    link_text = pending.pop("linkpath", None) or _text(header[_LINKNAME])
    if "size" in pending:
        try:
            size = int(pending.pop("size"))
        except ValueError:
            raise ArchiveError(f"corrupt pax size at offset {offset}") from None
        if size < 0:
            raise ArchiveError(f"corrupt pax size at offset {offset}")
    pending.clear()
    if data + size > file_size:
        raise IncompleteArchive(f"archive is truncated at offset {file_size}")
    return _Header(header[_TYPEFLAG], data, size, name_text, link_text, _padded(data, size))


def _headers(fd: int, file_size: int) -> Iterator[_Header]:
    """The entries of the tar, in order, up to its end-of-archive marker."""
    offset = 0
    pending: dict[str, str] = {}
    for _ in range(MAX_ENTRIES * 2):
        header = _block(fd, offset)
        if header is None:
            return
        typeflag = header[_TYPEFLAG]
        if typeflag in _META:
            size = _number(header[_SIZE], f"size of the entry at offset {offset}")
            if offset + BLOCK + size > file_size:
                raise IncompleteArchive(f"archive is truncated at offset {file_size}")
            if size > _MAX_META:
                raise ArchiveError(f"tar metadata record at offset {offset} is too large")
            _apply_meta(typeflag, os.pread(fd, size, offset + BLOCK), offset, pending)
            offset = _padded(offset + BLOCK, size)
            continue
        entry = _entry(header, offset, file_size, pending)
        yield entry
        offset = entry.next
    raise ArchiveError(f"archive has more than {MAX_ENTRIES} entries")


def _same_content(fd: int, a: TarEntry, b: TarEntry) -> bool:
    if a.size != b.size:
        return False
    return _member_digest(fd, a) == _member_digest(fd, b)


def _member_digest(fd: int, entry: TarEntry) -> str:
    hasher = hashlib.sha256()
    offset, end = entry.offset, entry.offset + entry.size
    while offset < end:
        data = os.pread(fd, min(1 << 20, end - offset), offset)
        if not data:
            break
        hasher.update(data)
        offset += len(data)
    return "sha256:" + hasher.hexdigest()


def _describe(fd: int, entry: TarEntry | str) -> str:
    if isinstance(entry, str):
        return f"a link to {entry!r}"
    return f"{_member_digest(fd, entry)} ({entry.size} bytes at offset {entry.offset})"


def _classify(header: _Header, name: str, files: Mapping[str, TarEntry]) -> TarEntry | str:
    """A regular file's entry, or a link's cleaned target; refuses every other type."""
    typeflag, raw_link = header.typeflag, header.link
    if typeflag in _REGULAR:
        return TarEntry(name, header.data, header.size)
    if typeflag == b"2":
        if raw_link.startswith("/"):
            raise ArchiveError(f"symlink {name!r} points out of the archive ({raw_link!r})")
        target = posixpath.normpath(posixpath.join(posixpath.dirname(name), raw_link))
        if target == ".." or target.startswith("../"):
            raise ArchiveError(f"symlink {name!r} points out of the archive ({raw_link!r})")
        return target
    if typeflag == b"1":
        if raw_link.startswith("/") or ".." in raw_link.split("/"):
            raise ArchiveError(f"hard link {name!r} points out of the archive ({raw_link!r})")
        target = posixpath.normpath(raw_link)
        if target not in files:
            raise ArchiveError(
                f"hard link {name!r} points to {raw_link!r}, which is not an earlier file"
            )
        return target
    if typeflag in _REFUSED:
        raise ArchiveError(f"entry {name!r} is {_REFUSED[typeflag]}")
    raise ArchiveError(f"entry {name!r} has unsupported type {typeflag!r}")


def index_tar(fd: int, file_size: int) -> TarIndex:
    """Index the tar in `fd` (a seekable file of `file_size` bytes).

    Raises:
        ArchiveError: the tar is malformed or breaks one of the module's rules.
    """
    files: dict[str, TarEntry] = {}
    links: dict[str, str] = {}
    for header in _headers(fd, file_size):
        if header.typeflag == b"5":
            continue
        name = _clean(header.name)
        if name == ".":
            raise ArchiveError(f"entry {header.name!r} has an empty name")
        entry = _classify(header, name, files)
        earlier = files.get(name) or links.get(name)
        if earlier is not None:
            same = (
                _same_content(fd, earlier, entry)
                if isinstance(earlier, TarEntry) and isinstance(entry, TarEntry)
                else earlier == entry
            )
            how = "" if same else " with different content"
            raise ArchiveError(
                f"member {name!r} appears twice{how}: "
                f"{_describe(fd, earlier)} and {_describe(fd, entry)}"
            )
        if len(files) + len(links) >= MAX_ENTRIES:
            raise ArchiveError(f"archive has more than {MAX_ENTRIES} entries")
        if isinstance(entry, TarEntry):
            files[name] = entry
        else:
            links[name] = entry
    return TarIndex(files=files, links=links)
