"""What a parser makes of one line: `ParsedLine`, and the formats.

Every parser is a pure function ``parse(line: bytes, now: float, cache) -> ParsedLine |
None``: None means "not this format", and the caller keeps the line raw, byte for byte.
A parser never raises on any input (a property test checks it).
"""

from __future__ import annotations

import enum
from typing import NamedTuple

from actors.supervisor.core.severity import Severity

__all__ = ["MAX_FIELDS", "ParseFormat", "ParsedLine", "message_of"]

#: Most `key=value` fields of a line; a line with more is not parsed (it stays raw).
MAX_FIELDS = 64


class ParseFormat(enum.StrEnum):
    """How the lines of a raw log are read (the `[log] parse` table's values)."""

    #: Not at all: every line is a raw entry.
    RAW = "raw"
    #: Glog/klog (runsc, many Go programs): `I1204 02:46:05.465477 25623 main.go:230] text`.
    GLOG = "glog"
    #: Logrus (containerd): text `time="…" level=info msg="…" k=v`, or JSON `{…}`.
    LOGRUS = "logrus"
    #: Each line as whichever of the above it is.
    AUTO = "auto"


class ParsedLine(NamedTuple):
    """The parts of one parsed line."""

    #: The line's level.
    severity: Severity
    #: The line's time, seconds since the Unix epoch (`now` if it has none).
    timestamp: float
    #: Source file base name (glog), else `""`.
    file: str
    #: Source line number (glog), else 0.
    line: int
    #: Process or thread id (glog), else 0.
    pid: int
    #: The message; or, when the message is the rest of the line as it is (glog), the byte offset
    #: where it starts — decoding waits until it is shown (`message`).
    text: str | int
    #: Other `key=value` fields, values as text; None when there are none.
    fields: dict[str, str] | None

    def message(self, line: bytes) -> str:
        """The message as text, given the line this was parsed from."""
        return message_of(self.text, line)


def message_of(text: str | int, line: bytes) -> str:
    """A message as text: `text` itself, or the tail of `line` from offset `text`."""
    if isinstance(text, str):
        return text
    return line[text:].decode("utf-8", "backslashreplace")
