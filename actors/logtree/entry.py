"""Log entries: what the tree stores and what readers get back.

There are two kinds of entry, told apart by their `kind` attribute (`"leveled"` or
`"raw"`), and three classes:

* `LeveledEntry` — one call to a leveled logger: a severity, one or more lines of
  text kept together as one atomic entry, the writer's wall-clock time and the source
  location. Writers build it; the tree stamps a copy with its `seq`.
* `RawEntry` — one line of a raw byte stream (a child's stdout/stderr, a FIFO),
  without its newline, cut to `MAX_LINE_LENGTH` bytes, with its length before
  cutting, and the fields its stream's reader learned about it, if any. The tree
  builds these itself, thousands per chunk, so a raw entry is a named tuple built
  in C: immutable, no per-instance `__dict__`, cheap to create.

Both carry `seq`: a number unique and increasing across the whole tree, assigned when
the entry is appended. Sorting by `seq` gives the order the tree stored entries in; a
reader that took a backlog and then a stream sees strictly increasing `seq` values.
`seq` 0 means "not stored yet"; stored entries start at 1.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar, Literal, NamedTuple, TypeAlias

from actors.logtree.errors import LogTreeError
from actors.supervisor.core.severity import Severity

__all__ = ["MAX_LINE_LENGTH", "Entry", "LeveledEntry", "ParsedEntry", "RawEntry", "Severity"]

#: Bytes of a raw line kept; the rest is cut and only counted in `original_length`.
MAX_LINE_LENGTH = 1024


@dataclass(frozen=True, slots=True, kw_only=True)
class LeveledEntry:
    """One leveled log call; its lines form one atomic entry."""

    kind: ClassVar[Literal["leveled"]] = "leveled"
    #: A leveled call has no original line (see `ParsedEntry.raw`).
    raw: ClassVar[None] = None

    #: DN of the logger that wrote it, e.g. `root.containerd.preseed`.
    dn: str
    #: How severe the entry is.
    severity: Severity
    #: The message, one string per line, without newline characters; at least one (possibly empty)
    #: line.
    lines: tuple[str, ...]
    #: Wall-clock time of the log call, in seconds since the Unix epoch, as given by the writer.
    timestamp: float
    #: Base name of the source file of the log call, e.g. `preseed.py`.
    file: str
    #: Line number of the log call in `file` (0 when unknown).
    line: int
    #: Tree-wide sequence number, assigned by the tree when stored; 0 before.
    seq: int = 0
    #: Process id of the writer, 0 when unknown.
    pid: int = 0
    #: Structured key/value fields, or None for none.
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

        The message is split on `\\n`; a trailing `\\r` on each line is dropped.
        """
        lines = tuple(part.removesuffix("\r") for part in message.split("\n"))
        return cls(dn=dn, severity=severity, lines=lines, timestamp=timestamp, file=file, line=line)

    @property
    def message(self) -> str:
        """The lines joined with `\\n`."""
        return "\n".join(self.lines)


class RawEntry(NamedTuple):
    """One line of a raw log stream."""

    #: Tree-wide sequence number, assigned when stored.
    seq: int
    #: DN of the raw logger, e.g. `root.containerd`.
    dn: str
    #: The line without its `\n` (and without one trailing `\r`), cut to `MAX_LINE_LENGTH`
    #: bytes. Arbitrary bytes, not necessarily UTF-8.
    data: bytes
    #: Length of the line in bytes before cutting.
    original_length: int
    #: Wall-clock time the line was completed in the tree (or the time the writer gave for its
    #: chunk), in seconds since the Unix epoch.
    timestamp: float
    #: Structured key/value fields the stream's reader learned about the line (runsc's
    #: `sandbox` and `container`, see `actors.logtree.parse.runsc`), or None.
    fields: Mapping[str, str] | None = None

    @property
    def kind(self) -> Literal["raw"]:
        """Always `"raw"`; tells raw entries from leveled ones."""
        return "raw"

    @property
    def cut(self) -> bool:
        """True when the line was longer than `MAX_LINE_LENGTH` and was cut."""
        return self.original_length > len(self.data)


class ParsedEntry(NamedTuple):
    """A leveled entry parsed from a line of a program's log (see `actors.logtree.parse`)."""

    #: Tree-wide sequence number, assigned when stored (arrival order; the parsed time never
    #: reorders entries).
    seq: int
    #: DN of the raw logger the line came from, e.g. `root.containerd`.
    dn: str
    #: The severity the line gave.
    severity: Severity
    #: The time the line gave, seconds since the Unix epoch; when it gave none (a Go panic), the
    #: time the child read it. Data only, never an order.
    timestamp: float
    #: Source file base name the line gave (glog), or `""`.
    file: str
    #: Source line the line gave, 0 when none.
    line: int
    #: Process or thread id the line gave (glog), 0 when none.
    pid: int
    #: The message of the first line (logrus: unquoted and unescaped); or, when it is the rest of
    #: `head` as is (glog), its byte offset in `head`. `text` gives it as text either way.
    body: str | int
    #: The line's other `key=value` fields, values as text, or None.
    fields: dict[str, str] | None
    #: The first line's original bytes, cut to `PARSE_LIMIT` bytes.
    head: bytes
    #: The first line's length in bytes before cutting.
    original_length: int
    #: Continuation lines (a goroutine dump, a multi-line message) as their original bytes joined
    #: with `\n`; `b""` when none.
    more: bytes

    @property
    def kind(self) -> Literal["leveled"]:
        """Always `"leveled"`: a parsed entry is a leveled entry."""
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
        """The lines joined with `\n`."""
        return "\n".join(self.lines)

    @property
    def raw(self) -> bytes:
        """The original bytes: the first line, then `\n` and the continuation lines."""
        return self.head + self.more

    @property
    def cut(self) -> bool:
        """True when the first line was longer than the parse limit and was cut."""
        return self.original_length > len(self.head)


#: What readers get: a leveled or a raw entry; `entry.kind` tells which.
Entry: TypeAlias = LeveledEntry | ParsedEntry | RawEntry
