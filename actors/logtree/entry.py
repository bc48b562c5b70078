"""Log entries: what the tree stores and what readers get back.

There are two kinds of entry, told apart by their ``kind`` attribute (``"leveled"`` or
``"raw"``), and three classes:

* :class:`LeveledEntry` — one call to a leveled logger: a severity, one or more lines of
  text kept together as one atomic entry, the writer's wall-clock time and the source
  location. Writers build it; the tree stamps a copy with its ``seq``.
* :class:`RawEntry` — one line of a raw byte stream (a child's stdout/stderr, a FIFO),
  without its newline, cut to :data:`MAX_LINE_LENGTH` bytes, with its length before
  cutting. The tree builds these itself, thousands per chunk, so a raw entry is a
  named tuple built in C: immutable, no per-instance ``__dict__``, cheap to create.

Both carry ``seq``: a number unique and increasing across the whole tree, assigned when
the entry is appended. Sorting by ``seq`` gives the order the tree stored entries in; a
reader that took a backlog and then a stream sees strictly increasing ``seq`` values.
``seq`` 0 means "not stored yet"; stored entries start at 1.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar, Literal, NamedTuple, TypeAlias

from actors.logtree.errors import LogTreeError
from actors.logtree.severity import Severity

__all__ = ["MAX_LINE_LENGTH", "Entry", "LeveledEntry", "ParsedEntry", "RawEntry", "Severity"]

MAX_LINE_LENGTH = 1024
"""Bytes of a raw line kept; the rest is cut and only counted in ``original_length``."""


@dataclass(frozen=True, slots=True, kw_only=True)
class LeveledEntry:
    """One leveled log call; its lines form one atomic entry.

    Attributes:
        dn: DN of the logger that wrote it, e.g. ``root.containerd.preseed``.
        severity: how severe the entry is.
        lines: the message, one string per line, without newline characters; at least
            one (possibly empty) line.
        timestamp: wall-clock time of the log call, in seconds since the Unix epoch, as
            given by the writer.
        file: base name of the source file of the log call, e.g. ``preseed.py``.
        line: line number of the log call in ``file`` (0 when unknown).
        seq: tree-wide sequence number, assigned by the tree when stored; 0 before.
        pid: process id of the writer, 0 when unknown.
        fields: structured key/value fields, or None for none.
    """

    kind: ClassVar[Literal["leveled"]] = "leveled"
    raw: ClassVar[None] = None
    """A leveled call has no original line (see :attr:`ParsedEntry.raw`)."""

    dn: str
    severity: Severity
    lines: tuple[str, ...]
    timestamp: float
    file: str
    line: int
    seq: int = 0
    pid: int = 0
    fields: Mapping[str, str] | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.severity, Severity):
            raise LogTreeError(f"leveled entry severity {self.severity!r} is not a Severity")
        if not isinstance(self.lines, tuple) or not self.lines:
            raise LogTreeError(f"leveled entry lines {self.lines!r} is not a non-empty tuple")
        for text in self.lines:
            if not isinstance(text, str) or "\n" in text:
                raise LogTreeError(f"leveled entry line {text!r} is not a string without newline")
        if self.line < 0:
            raise LogTreeError(f"leveled entry source line {self.line!r} is negative")

    @classmethod
    def from_message(
        cls,
        dn: str,
        severity: Severity,
        message: str,
        *,
        timestamp: float,
        file: str = "",
        line: int = 0,
    ) -> LeveledEntry:
        """Builds an entry from a message that may span several lines.

        The message is split on ``\\n``; a trailing ``\\r`` on each line is dropped.
        """
        lines = tuple(part.removesuffix("\r") for part in message.split("\n"))
        return cls(dn=dn, severity=severity, lines=lines, timestamp=timestamp, file=file, line=line)

    @property
    def message(self) -> str:
        """The lines joined with ``\\n``."""
        return "\n".join(self.lines)


class RawEntry(NamedTuple):
    """One line of a raw log stream.

    Attributes:
        seq: tree-wide sequence number, assigned when stored.
        dn: DN of the raw logger, e.g. ``root.containerd``.
        data: the line without its ``\\n`` (and without one trailing ``\\r``), cut to
            :data:`MAX_LINE_LENGTH` bytes. Arbitrary bytes, not necessarily UTF-8.
        original_length: length of the line in bytes before cutting.
        timestamp: wall-clock time the line was completed in the tree (or the time the
            writer gave for its chunk), in seconds since the Unix epoch.
    """

    seq: int
    dn: str
    data: bytes
    original_length: int
    timestamp: float

    @property
    def kind(self) -> Literal["raw"]:
        """Always ``"raw"``; tells raw entries from leveled ones."""
        return "raw"

    @property
    def cut(self) -> bool:
        """True when the line was longer than :data:`MAX_LINE_LENGTH` and was cut."""
        return self.original_length > len(self.data)


class ParsedEntry(NamedTuple):
    """A leveled entry parsed from a line of a program's log (see ``actors.logtree.parse``).

    Attributes:
        seq: tree-wide sequence number, assigned when stored (arrival order; the
            parsed time never reorders entries).
        dn: DN of the raw logger the line came from, e.g. ``root.containerd``.
        severity: the severity the line gave.
        timestamp: the time the line gave, seconds since the Unix epoch; when it gave
            none (a Go panic), the time the child read it. Data only, never an order.
        file: source file base name the line gave (glog), or ``""``.
        line: source line the line gave, 0 when none.
        pid: process or thread id the line gave (glog), 0 when none.
        body: the message of the first line (logrus: unquoted and unescaped); or,
            when it is the rest of ``head`` as is (glog), its byte offset in
            ``head``. :attr:`text` gives it as text either way.
        fields: the line's other ``key=value`` fields, values as text, or None.
        head: the first line's original bytes, cut to ``PARSE_LIMIT`` bytes.
        original_length: the first line's length in bytes before cutting.
        more: continuation lines (a goroutine dump, a multi-line message) as their
            original bytes joined with ``\n``; ``b""`` when none.
    """

    seq: int
    dn: str
    severity: Severity
    timestamp: float
    file: str
    line: int
    pid: int
    body: str | int
    fields: dict[str, str] | None
    head: bytes
    original_length: int
    more: bytes

    @property
    def kind(self) -> Literal["leveled"]:
        """Always ``"leveled"``: a parsed entry is a leveled entry."""
        return "leveled"

    @property
    def text(self) -> str:
        """The first line's message."""
        body = self.body
        if isinstance(body, str):
            return body
        return self.head[body:].decode("utf-8", "backslashreplace")

    @property
    def lines(self) -> tuple[str, ...]:
        """The message lines: the first line's message, then the continuation lines."""
        lines = self.text.split("\n")
        if self.more:
            lines.extend(self.more[1:].decode("utf-8", "backslashreplace").split("\n"))
        return tuple(lines)

    @property
    def message(self) -> str:
        """The lines joined with ``\n``."""
        return "\n".join(self.lines)

    @property
    def raw(self) -> bytes:
        """The original bytes: the first line, then ``\n`` and the continuation lines."""
        return self.head + self.more

    @property
    def cut(self) -> bool:
        """True when the first line was longer than the parse limit and was cut."""
        return self.original_length > len(self.head)


Entry: TypeAlias = LeveledEntry | ParsedEntry | RawEntry
"""What readers get: a leveled or a raw entry; ``entry.kind`` tells which."""
