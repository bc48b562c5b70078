"""Syslog priorities for lines written to systemd's journal through stderr.

When a service's stderr is connected to the journal, journald reads a leading
`<N>` on a line as that line's syslog priority (`SyslogLevelPrefix=`, on by
default), so `journalctl -p err` shows only errors. systemd tells a service that
its stderr is the journal with `JOURNAL_STREAM=<st_dev>:<st_ino>` of that stream;
the variable is inherited, so it counts only when stderr really is that file.

Rules:
    * FATAL is `<2>` (critical), ERROR `<3>`, WARNING `<4>`, INFO `<6>`.
    * Raw lines (a program's own output) have no severity: `<6>`, so that a raw line
      which happens to start with `<` is not read as a priority.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from actors.logtree.entry import Severity

__all__ = ["RAW_PRIORITY", "stream_is_journal", "syslog_priority"]

#: The priority of lines without a severity (informational).
RAW_PRIORITY = 6

_PRIORITIES = {
    Severity.FATAL: 2,
    Severity.ERROR: 3,
    Severity.WARNING: 4,
    Severity.INFO: 6,
}


def syslog_priority(severity: Severity) -> int:
    """The syslog priority (0 emergency … 7 debug) of a leveled entry's severity."""
    return _PRIORITIES[severity]


def stream_is_journal(environ: Mapping[str, str], fd: int) -> bool:
    """Whether `fd` is the journal stream `JOURNAL_STREAM` in `environ` names.

    False when the variable is missing or malformed, or names another file (stderr
    was redirected after systemd started us), or `fd` is closed.
    """
    device, sep, inode = environ.get("JOURNAL_STREAM", "").partition(":")
    if not sep or not device.isdigit() or not inode.isdigit():
        return False
    try:
        st = os.fstat(fd)
    except OSError:
        return False
    return (st.st_dev, st.st_ino) == (int(device), int(inode))
