"""Watching the preseed directory: inotify events in, "this file is complete" out.

Two parts:

- `Settler` is pure (no I/O, `now` passed in): it turns file events into
  decisions. A file is *ready* once its writer closed it (`IN_CLOSE_WRITE`) or
  it was moved in complete (`IN_MOVED_TO`), and nothing happened to it for
  `quiet` seconds since — so a copy written in pieces, each piece closing the
  file, is taken once, after the last piece. A file still open for writing is
  never ready, however long it is quiet; once it has been silent for `stall`
  seconds it is reported *stalled*, once, so that it is not silently pending.
- `DirectoryWatch` is the thread: it watches `<dir>` and every namespace
  directory in it (a namespace directory created later is watched when it
  appears, and its files are taken as written), blocks in `poll(2)` on the
  inotify descriptor and a wake-up pipe (with a timeout only while a file is
  settling — no polling loop), and calls `on_ready(namespace, name)`,
  `on_removed(namespace, name)`, `on_ignored(namespace, name)` and
  `on_stalled(namespace, name)`. A kernel queue overflow re-lists everything.

**Everything that appears gets a verdict within a bound.** Only a regular file
has a writer to wait for. Whatever else is created in a namespace directory —
a symbolic link (whatever it points to), a hard link to a file written
elsewhere, a FIFO, a device, a socket — gets no `IN_CLOSE_WRITE`, so it is
taken as complete at its `IN_CREATE` (a hard link is a regular file whose link
count is above 1 when it appears) and is ready after `quiet`: the importer
then imports it (a link to a tarball) or fails it with one line naming it and
why (the importer refuses what is not a regular file). A directory created in a
namespace directory, and anything but a directory created at the top, is
`on_ignored` (one warning, as the initial scan gives). A regular file still
open for writing is `on_stalled` after `stall` seconds (one line), and ready
when its writer closes it.

The importer may still find a ready file incomplete (a copy that paused for
longer than `quiet` with the file closed): the caller then waits for the next
event on it instead of reporting a failure.
"""

from __future__ import annotations

import os
import select
import stat
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from actors.preseed.service.inotify import Event, Inotify, Mask
from actors.wakeup import Wakeup

__all__ = ["DEFAULT_QUIET", "DEFAULT_STALL", "DirectoryWatch", "Settler"]

#: Seconds a closed file must stay untouched before it is imported.
DEFAULT_QUIET = 0.5
#: Seconds a file written to and not closed may be silent before it is reported stalled.
DEFAULT_STALL = 30.0

_DIR_MASK = Mask.CREATE | Mask.MOVED_TO | Mask.MOVED_FROM | Mask.DELETE | Mask.ONLYDIR
_NS_MASK = _DIR_MASK | Mask.MODIFY | Mask.CLOSE_WRITE | Mask.ATTRIB

#: A file as (namespace, file name).
Key = tuple[str, str]


@dataclass
class Settler:
    """Which files are complete, from their events (pure; time is an argument)."""

    #: Seconds without events a closed file needs to be ready.
    quiet: float = DEFAULT_QUIET
    #: Seconds without events after which a file still being written is reported stalled.
    stall: float = DEFAULT_STALL
    #: Files written to and not closed since, with their last event time.
    writing: dict[Key, float] = field(default_factory=dict)
    #: Files closed (or moved in) and their last event time.
    closed: dict[Key, float] = field(default_factory=dict)
    #: Files of `writing` already reported stalled (until their next event).
    reported: set[Key] = field(default_factory=set)

    def written(self, key: Key, now: float) -> None:
        """Data was written to the file, or it was created: not ready."""
        self.closed.pop(key, None)
        self.reported.discard(key)
        self.writing[key] = now

    def completed(self, key: Key, now: float) -> None:
        """The writer closed it, or it was moved in: ready after the quiet period."""
        self.writing.pop(key, None)
        self.reported.discard(key)
        self.closed[key] = now

    def touched(self, key: Key, now: float) -> None:
        """Metadata changed: restart the quiet period of a closed file."""
        if key in self.closed:
            self.closed[key] = now

    def removed(self, key: Key) -> None:
        """The file is gone."""
        self.writing.pop(key, None)
        self.closed.pop(key, None)
        self.reported.discard(key)

    def due(self, now: float) -> list[Key]:
        """The files ready now (in name order), forgotten by the settler."""
        ready = sorted(k for k, t in self.closed.items() if now - t >= self.quiet)
        for key in ready:
            del self.closed[key]
        return ready

    def stalled(self, now: float) -> list[Key]:
        """The files being written and silent for `stall` seconds, each reported once."""
        found = sorted(
            k for k, t in self.writing.items() if now - t >= self.stall and k not in self.reported
        )
        self.reported.update(found)
        return found

    def next_deadline(self) -> float | None:
        """When the next closed file becomes ready or the next written one stalls, or None."""
        times = [t + self.quiet for t in self.closed.values()]
        times += [t + self.stall for k, t in self.writing.items() if k not in self.reported]
        return min(times) if times else None


class DirectoryWatch:
    """The watch thread over `<dir>` and its namespace directories."""

    def __init__(
        self,
        directory: str,
        on_ready: Callable[[str, str], None],
        on_removed: Callable[[str, str], None],
        *,
        on_ignored: Callable[[str, str], None],
        on_stalled: Callable[[str, str], None],
        quiet: float = DEFAULT_QUIET,
        stall: float = DEFAULT_STALL,
        clock: Callable[[], float],
    ) -> None:
        """Start watching now (events from this moment on are kept); call `start` to run.

        Args:
            directory: the preseed directory.
            on_ready: a file (of any type but a directory) is complete and quiet.
            on_removed: a file was removed or moved away.
            on_ignored: something that is not an archive appeared: a directory in a
                namespace directory, or a non-directory at the top (namespace "").
            on_stalled: a file is still being written after `stall` silent seconds.
            quiet: seconds a complete file must stay untouched.
            stall: seconds after which a file being written is reported stalled.
            clock: monotonic seconds.

        Raises:
            OSError: inotify is unavailable or the directory cannot be watched.
        """
        self._dir = directory
        self._on_ready = on_ready
        self._on_removed = on_removed
        self._on_ignored = on_ignored
        self._on_stalled = on_stalled
        self._clock = clock
        self._settler = Settler(quiet, stall)
        self._inotify = Inotify()
        self._wakeup = Wakeup()
        self._namespaces: dict[int, str] = {}
        self._root = self._inotify.add_watch(directory, _DIR_MASK)
        for name in sorted(os.listdir(directory)):
            self._watch_namespace(name, take_files=False)
        self._thread = threading.Thread(target=self._run, name="nc-preseed-watch", daemon=True)

    def start(self) -> None:
        """Start the thread."""
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread and close the descriptors (waits for the thread)."""
        self._wakeup.set()
        if self._thread.is_alive():
            self._thread.join()
        self._inotify.close()
        self._wakeup.close()

    def _watch_namespace(self, name: str, *, take_files: bool) -> None:
        path = os.path.join(self._dir, name)
        if not os.path.isdir(path) or os.path.islink(path):
            return
        try:
            wd = self._inotify.add_watch(path, _NS_MASK)
        except OSError:
            return  # gone again, or not a directory: nothing to watch
        self._namespaces[wd] = name
        if take_files:
            now = self._clock()
            for file in sorted(os.listdir(path)):
                self._settler.completed((name, file), now)

    def _rescan(self) -> None:
        for name in sorted(os.listdir(self._dir)):
            self._watch_namespace(name, take_files=True)

    def _handle(self, event: Event, now: float) -> None:
        appeared = event.mask & (Mask.CREATE | Mask.MOVED_TO)
        if event.mask & Mask.Q_OVERFLOW:
            self._rescan()
            return
        if event.wd == self._root:
            if appeared and event.mask & Mask.ISDIR:
                self._watch_namespace(event.name, take_files=True)
            elif appeared:
                self._on_ignored("", event.name)
            return
        namespace = self._namespaces.get(event.wd)
        if namespace is None or event.mask & Mask.ISDIR:
            if event.mask & Mask.IGNORED:
                self._namespaces.pop(event.wd, None)
            elif namespace is not None and appeared:
                self._on_ignored(namespace, event.name)
            return
        key = (namespace, event.name)
        if event.mask & (Mask.DELETE | Mask.MOVED_FROM):
            self._settler.removed(key)
            self._on_removed(*key)
        elif event.mask & (Mask.CLOSE_WRITE | Mask.MOVED_TO):
            self._settler.completed(key, now)
        elif event.mask & Mask.CREATE and not self._has_writer(namespace, event.name):
            self._settler.completed(key, now)  # a link, a FIFO, a device: no close will come
        elif event.mask & (Mask.CREATE | Mask.MODIFY):
            self._settler.written(key, now)
        elif event.mask & Mask.ATTRIB:
            self._settler.touched(key, now)

    def _has_writer(self, namespace: str, name: str) -> bool:
        """Whether a file just created may have a writer to wait for: a new regular file.

        A symbolic link, a hard link (a regular file that already has another name),
        a FIFO, a device or a socket has none; nor has a file already gone (its
        removal follows).
        """
        try:
            st = os.lstat(os.path.join(self._dir, namespace, name))
        except OSError:
            return False
        return stat.S_ISREG(st.st_mode) and st.st_nlink == 1

    def _run(self) -> None:
        poller = select.poll()
        poller.register(self._inotify.fd, select.POLLIN)
        poller.register(self._wakeup.fd, select.POLLIN)
        while not self._wakeup.is_set():
            deadline = self._settler.next_deadline()
            timeout = None if deadline is None else max(0.0, deadline - self._clock()) * 1000
            poller.poll(timeout)
            if self._wakeup.is_set():
                return
            now = self._clock()
            for event in self._inotify.read():
                self._handle(event, now)
            now = self._clock()
            for key in self._settler.due(now):
                self._on_ready(*key)
            for key in self._settler.stalled(now):
                self._on_stalled(*key)
