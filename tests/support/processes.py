"""Processes as `/proc` shows them: alive or not, their command lines, their children.

Read-only helpers of the system tests and the soak; nothing here signals anything.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

__all__ = [
    "all_pids",
    "child_named",
    "cmdline",
    "pid_alive",
    "pids_mentioning",
    "proc_stat",
]


def pid_alive(pid: int) -> bool:
    """Whether `pid` exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError):
        return False


def all_pids() -> Iterator[int]:
    """Every pid in `/proc`, in its order."""
    for name in os.listdir("/proc"):
        if name.isdigit():
            yield int(name)


def proc_stat(pid: int) -> tuple[str, int, int] | None:
    """`(command name, parent pid, start time in clock ticks)` of `pid`; None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read()
    except OSError:
        return None
    close = raw.rindex(b")")
    comm = raw[raw.index(b"(") + 1 : close].decode(errors="replace")
    fields = raw[close + 2 :].split()
    return comm, int(fields[1]), int(fields[19])


def cmdline(pid: int) -> str:
    """The command line of `pid`, its arguments joined by spaces; "" if it is gone."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def pids_mentioning(text: str) -> list[int]:
    """Processes other than this one whose command line contains `text`."""
    found = []
    for pid in all_pids():
        if pid == os.getpid():
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if text.encode() in f.read():
                    found.append(pid)
        except OSError:
            continue
    return found


def child_named(ppid: int, comm: str) -> int | None:
    """The pid of a child of `ppid` whose command name is `comm`, if there is one."""
    for pid in all_pids():
        stat = proc_stat(pid)
        if stat is not None and stat[0] == comm and stat[1] == ppid:
            return pid
    return None
