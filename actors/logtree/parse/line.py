"""What a parser makes of one line: :class:`ParsedLine`, and the formats.

Every parser is a pure function ``parse(line: bytes, now: float, cache) -> ParsedLine |
None``: None means "not this format", and the caller keeps the line raw, byte for byte.
A parser never raises on any input (a property test checks it).
"""

from __future__ import annotations

import enum
from typing import NamedTuple

from actors.logtree.severity import Severity

__all__ = ["MAX_FIELDS", "ParseFormat", "ParsedLine", "message_of"]

MAX_FIELDS = 64
"""Most ``key=value`` fields of a line; a line with more is not parsed (it stays raw)."""


class ParseFormat(enum.StrEnum):
    """How the lines of a raw log are read (the ``[log] parse`` table's values)."""

    RAW = "raw"
    """Not at all: every line is a raw entry."""
    GLOG = "glog"
    """glog/klog (runsc, many Go programs): ``I1204 02:46:05.465477   25623 main.go:230] text``."""
    LOGRUS = "logrus"
    """logrus (containerd): text ``time="…" level=info msg="…" k=v``, or JSON ``{…}``."""
    AUTO = "auto"
    """Each line as whichever of the above it is."""


class ParsedLine(NamedTuple):
    """The parts of one parsed line.

    Attributes:
        severity: the line's level.
        timestamp: the line's time, seconds since the Unix epoch (``now`` if it has none).
        file: source file base name (glog), else ``""``.
        line: source line number (glog), else 0.
        pid: process or thread id (glog), else 0.
        text: the message; or, when the message is the rest of the line as it is
            (glog), the byte offset where it starts — decoding waits until it is
            shown (:meth:`message`).
        fields: other ``key=value`` fields, values as text; None when there are none.
    """

    severity: Severity
    timestamp: float
    file: str
    line: int
    pid: int
    text: str | int
    fields: dict[str, str] | None

    def message(self, line: bytes) -> str:
        """The message as text, given the line this was parsed from."""
        return message_of(self.text, line)


def message_of(text: str | int, line: bytes) -> str:
    """A message as text: ``text`` itself, or the tail of ``line`` from offset ``text``."""
    if isinstance(text, str):
        return text
    return line[text:].decode("utf-8", "backslashreplace")
