"""Whether a stream is systemd's journal, so that stderr lines carry syslog priorities.

When a service's stderr is connected to the journal, journald reads a leading `<N>`
on a line as that line's syslog priority (`SyslogLevelPrefix=`, on by default), so
`journalctl -p err` shows only errors. systemd tells a service that its stderr is the
journal with `JOURNAL_STREAM=<st_dev>:<st_ino>` of that stream; the variable is
inherited, so it counts only when stderr really is that file. The priorities
themselves are `actors.logtree.format.syslog_priority` (the severity's
`Severity.syslog`; raw lines, which have none, are informational).
"""

from __future__ import annotations

import os
from collections.abc import Mapping

__all__ = ["stream_is_journal"]


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
