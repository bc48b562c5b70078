"""Linux inotify through the C library: the kernel interface, no third-party package.

`Inotify` owns one inotify descriptor (non-blocking, close-on-exec). `add_watch`
watches a directory for the events that matter to the preseed watch; `read`
returns the queued events, decoded, without blocking (call it after `poll` said
the descriptor is readable). Names are bytes decoded with `os.fsdecode`.

The kernel drops events when its queue overflows (`IN_Q_OVERFLOW`); the caller
must then re-list what it watches.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import enum
import errno
import os
import struct
from dataclasses import dataclass

__all__ = ["Event", "Inotify", "Mask"]


class Mask(enum.IntFlag):
    """inotify event bits (from <sys/inotify.h>)."""

    MODIFY = 0x00000002
    ATTRIB = 0x00000004
    CLOSE_WRITE = 0x00000008
    MOVED_FROM = 0x00000040
    MOVED_TO = 0x00000080
    CREATE = 0x00000100
    DELETE = 0x00000200
    DELETE_SELF = 0x00000400
    MOVE_SELF = 0x00000800
    UNMOUNT = 0x00002000
    Q_OVERFLOW = 0x00004000
    IGNORED = 0x00008000
    ONLYDIR = 0x01000000
    ISDIR = 0x40000000


_HEADER = struct.Struct("iIII")  # wd, mask, cookie, len
_IN_NONBLOCK = os.O_NONBLOCK
_IN_CLOEXEC = os.O_CLOEXEC
_READ_SIZE = 64 * 1024


@dataclass(frozen=True, slots=True)
class Event:
    """One inotify event."""

    #: The watch it belongs to (-1 for a queue overflow).
    wd: int
    #: What happened.
    mask: Mask
    #: The entry's name inside the watched directory ("" for the directory itself).
    name: str


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


class Inotify:
    """One inotify instance. Not thread-safe: one thread reads, the same one adds watches."""

    def __init__(self) -> None:
        """Create the instance.

        Raises:
            OSError: the kernel refused (e.g. the per-user instance limit).
        """
        self._libc = _libc()
        fd = self._libc.inotify_init1(_IN_NONBLOCK | _IN_CLOEXEC)
        if fd < 0:
            code = ctypes.get_errno()
            raise OSError(code, f"inotify_init1: {os.strerror(code)}")
        self.fd: int = fd

    def add_watch(self, path: str, mask: Mask) -> int:
        """Watch `path` for the events in `mask`; return the watch descriptor.

        Raises:
            OSError: the path is missing, not a directory (with ONLYDIR), or the
                watch limit is reached.
        """
        wd = self._libc.inotify_add_watch(self.fd, os.fsencode(path), ctypes.c_uint32(int(mask)))
        if wd < 0:
            code = ctypes.get_errno()
            raise OSError(code, f"inotify_add_watch {path!r}: {os.strerror(code)}")
        return int(wd)

    def read(self) -> list[Event]:
        """The events queued now (empty if none); never blocks."""
        try:
            data = os.read(self.fd, _READ_SIZE)
        except BlockingIOError:
            return []
        except OSError as e:
            if e.errno == errno.EINTR:
                return []
            raise
        events = []
        offset = 0
        while offset + _HEADER.size <= len(data):
            wd, mask, _cookie, length = _HEADER.unpack_from(data, offset)
            start = offset + _HEADER.size
            raw = data[start : start + length].split(b"\0", 1)[0]
            events.append(Event(wd, Mask(mask), os.fsdecode(raw)))
            offset = start + length
        return events

    def close(self) -> None:
        """Close the descriptor (watches vanish with it)."""
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
