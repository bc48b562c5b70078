"""`PreseedActor`: the pykka actor that owns the preseed queue, its imports and the watch.

Theory of operation. The actor's thread owns all the state; nothing in it
blocks:

- On start it begins watching the directory (when `watch` is on, *before* it
  lists the directory for the import, so that no file copied in meanwhile is
  missed), lists it, and queues every archive in the documented order
  (`import_order`).
- `ImportQueue` (pure) holds the files waiting, in that order, and the ones
  being imported; a file that becomes ready again while being imported is
  imported once more after. At most `parallel` imports run at a time, each in
  a worker thread that tells the actor its `FileOutcome`. A burst of 100 files is
  100 queue entries, not 100 imports.
- The watch thread tells the actor `_Ready` (a file complete and quiet),
  `_Removed`, `_Ignored` (a directory in a namespace directory, a non-directory
  at the top: one warning) and `_Stalled` (a file written to and not closed for
  a while: one line). A ready entry of any type but a directory is queued: the
  importer imports it or fails it naming why (a FIFO, a device, a dangling or
  looping link), so that everything that appears gets a verdict. A removed
  tarball's images stay; only its pins are released.
- Whenever the queue drains, the actor *settles*: saves the import record and
  releases the pins of tarballs that are gone (`Preseeder.settle`).
- The first drain ends the **initial pass**: one line `initial preseed
  finished: …` and `on_initial(failures)`. With failures the runnable fails
  the node (its restart policy retries, as without the watch); without, it
  signals HEALTHY, and — when `watch` is off — the actor stops and the node
  signals DONE.
- After the initial pass, a file that fails is logged at ERROR and stays
  failed until it changes; a file found incomplete (still being copied, or
  truncated) is logged as waiting, never as failed, and is imported when its
  writer completes it.
- **Healing** (with the watch, and `heal`): before it lists anything, the actor
  subscribes to containerd's image events (`actors.containerd.api.events`).
  When containerd reports an image deleted — by whoever: `ctr images rm`,
  `crictl rmi`, another client's GC — the tarballs the record says hold it are
  queued like a copied-in file; their import finds the image gone, says so at
  WARNING and imports it again with its pins. A tarball that is gone is not
  (its pins were released when it went, and the record forgot it): removing
  the tarball first is how an operator deletes an image for good. After the
  event stream broke and was subscribed again (events may have been missed),
  every file of the record is queued once: the import record is compared
  with containerd's store, and what is missing is imported again.
- A bad file fails alone. Files are named in `actors.fs_names` display form
  (`PreseedFile.display`), so no name breaks the line, label or message that
  names it; and reporting one file's outcome (its log lines, its metric) runs
  guarded: should it raise all the same, one ERROR line says so and the actor
  goes on with the next file.
"""

from __future__ import annotations

import concurrent.futures
import logging
import os
import stat
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pykka

from actors.containerd.api.events import ImageEvent, ImageEventKind, ImageEvents
from actors.fs_names import display, quoted
from actors.mailbox import tell_or_drop
from actors.preseed.errors import FAILURES, PreseedError
from actors.preseed.importer.results import ImportResult
from actors.preseed.service.directory import (
    describe,
    ignored_at_top,
    ignored_in_namespace,
    import_order,
    scan_dir,
)
from actors.preseed.service.preseeder import FileOutcome, FileOutcomeKind, Preseeder, PreseedFile
from actors.preseed.service.watch import DEFAULT_QUIET, DEFAULT_STALL, DirectoryWatch

__all__ = [
    "ImportQueue",
    "InitialPass",
    "PreseedActor",
    "PreseedSettings",
    "StopRequested",
]


@dataclass
class ImportQueue:
    """The files waiting to be imported and those being imported (pure)."""

    #: The sort key of the import order.
    key: Callable[[PreseedFile], Any]
    #: Files waiting, unordered (ordered when taken).
    waiting: set[PreseedFile] = field(default_factory=set)
    #: Files being imported now.
    running: set[PreseedFile] = field(default_factory=set)
    #: Files that became ready again while being imported.
    again: set[PreseedFile] = field(default_factory=set)

    def add(self, f: PreseedFile) -> None:
        """Queue a file (once; after its running import if it is running)."""
        if f in self.running:
            self.again.add(f)
        else:
            self.waiting.add(f)

    def remove(self, f: PreseedFile) -> None:
        """Drop a file that is gone (a running import of it ends on its own)."""
        self.waiting.discard(f)
        self.again.discard(f)

    def take(self, limit: int) -> list[PreseedFile]:
        """Start the first files in order, so that at most `limit` run."""
        free = max(0, limit - len(self.running))
        chosen = sorted(self.waiting, key=self.key)[:free]
        for f in chosen:
            self.waiting.discard(f)
            self.running.add(f)
        return chosen

    def finished(self, f: PreseedFile) -> None:
        """An import ended; a file ready again meanwhile goes back to waiting."""
        self.running.discard(f)
        if f in self.again:
            self.again.discard(f)
            self.waiting.add(f)

    @property
    def idle(self) -> bool:
        """Nothing waiting, nothing running."""
        return not self.waiting and not self.running


@dataclass(frozen=True, slots=True)
class InitialPass:
    """How the initial pass ended."""

    #: The error text of every file that failed.
    failures: tuple[str, ...]
    #: How many files it took up (imported, unchanged, failed).
    files: int


@dataclass(frozen=True, slots=True, kw_only=True)
class PreseedSettings:
    """How the actor runs."""

    #: The preseed directory.
    directory: str
    #: Keep watching after the initial pass.
    watch: bool = True
    #: Imports at once (at least 1).
    parallel: int = 1
    #: Seconds a closed file must stay untouched before it is imported.
    quiet: float = DEFAULT_QUIET
    #: With `watch`: import again, from its tarball, an image containerd reports deleted.
    heal: bool = True
    #: Seconds a file being written may be silent before one line says it is still open.
    stall: float = DEFAULT_STALL


@dataclass(frozen=True, slots=True)
class _Ready:
    namespace: str
    name: str


@dataclass(frozen=True, slots=True)
class _Removed:
    namespace: str
    name: str


@dataclass(frozen=True, slots=True)
class _ImageChanged:
    event: ImageEvent


@dataclass(frozen=True, slots=True)
class _Subscribed:
    again: bool


@dataclass(frozen=True, slots=True)
class _Ignored:
    namespace: str
    name: str


@dataclass(frozen=True, slots=True)
class _Stalled:
    namespace: str
    name: str


@dataclass(frozen=True, slots=True)
class _Finished:
    file: PreseedFile
    outcome: FileOutcome | None
    error: str | None


@dataclass(frozen=True, slots=True)
class StopRequested:
    """Tell it to the actor to stop: no new import starts; it stops once the running end."""


class PreseedActor(pykka.ThreadingActor):
    """Owns the import queue, the worker threads and the watch. Handlers run in its thread."""

    def __init__(
        self,
        *,
        preseeder: Preseeder,
        settings: PreseedSettings,
        log: logging.Logger,
        on_initial: Callable[[InitialPass], None],
        on_result: Callable[[ImportResult], None],
        done: concurrent.futures.Future[str | None],
        on_failure: Callable[[str], None] | None = None,
        on_image_event: Callable[[ImageEvent], None] | None = None,
    ) -> None:
        super().__init__()
        #: Told every image event of containerd (with the watch), on the actor's thread.
        self._on_image_event = on_image_event
        #: Told `<namespace>/<file>` of every file that failed (for the failures metric).
        self._on_failure = on_failure
        self._preseeder = preseeder
        self._settings = settings
        self._log = log
        self._on_initial = on_initial
        self._on_result = on_result
        self._done = done
        self._queue = ImportQueue(import_order(preseeder.sandbox_image, preseeder.holds))
        self._pool = concurrent.futures.ThreadPoolExecutor(
            max_workers=max(1, settings.parallel), thread_name_prefix="nc-preseed"
        )
        self._watch: DirectoryWatch | None = None
        self._events: ImageEvents | None = None
        self._initial = True
        self._initial_failures: list[str] = []
        self._counts = {kind: 0 for kind in FileOutcomeKind}
        self._unchanged = 0
        self._scan_failures = 0
        self._stopping = False
        self._started = time.monotonic()

    def on_start(self) -> None:
        directory = self._settings.directory
        try:
            scan_dir(directory)  # a missing directory fails with the walk's own message
            if self._settings.watch and self._settings.heal:
                self._events = ImageEvents(
                    self._preseeder.client,
                    lambda event: self._tell(_ImageChanged(event)),
                    lambda again: self._tell(_Subscribed(again)),
                )
                self._events.start()
            if self._settings.watch:
                self._watch = DirectoryWatch(
                    directory,
                    lambda ns, name: self._tell(_Ready(ns, name)),
                    lambda ns, name: self._tell(_Removed(ns, name)),
                    on_ignored=lambda ns, name: self._tell(_Ignored(ns, name)),
                    on_stalled=lambda ns, name: self._tell(_Stalled(ns, name)),
                    quiet=self._settings.quiet,
                    stall=self._settings.stall,
                    clock=time.monotonic,
                )
            scan = scan_dir(directory)
        except (PreseedError, OSError) as e:
            text = str(e) if isinstance(e, PreseedError) else f"cannot watch {directory!r}: {e}"
            self._finish(text)
            return
        if self._preseeder.problem:
            self._log.warning("%s", self._preseeder.problem)
        for text in scan.warnings:
            self._log.warning("%s", text)
        for file, text in scan.failures:
            self._log.error("%s", text)
            self._initial_failures.append(text)
            self._failed(file)
        self._scan_failures = len(scan.failures)
        for f in scan.files:
            self._queue.add(f)
        if self._watch is not None:
            self._watch.start()
        self._pump()

    def on_receive(self, message: Any) -> None:
        if isinstance(message, _Ready):
            self._ready(message.namespace, message.name)
        elif isinstance(message, _Ignored):
            ignored = ignored_in_namespace if message.namespace else ignored_at_top
            self._log.warning("%s", ignored(message.name))
        elif isinstance(message, _Stalled):
            shown = PreseedFile(message.namespace, message.name, "").display
            self._log.info(
                "preseed file %s has been open for writing for %gs without a change; it is "
                "imported once its writer closes it",
                quoted(shown),
                self._settings.stall,
            )
        elif isinstance(message, _Removed):
            self._queue.remove(self._file(message.namespace, message.name))
            self._pump()
        elif isinstance(message, _ImageChanged):
            if self._on_image_event is not None:
                self._on_image_event(message.event)
            if message.event.kind is ImageEventKind.DELETE and not self._stopping:
                self._heal(message.event)
        elif isinstance(message, _Subscribed):
            if message.again and not self._stopping:
                self._compare_with_store()
        elif isinstance(message, _Finished):
            self._queue.finished(message.file)
            if message.error is not None:
                self._finish(message.error)
                return
            assert message.outcome is not None
            self._guarded(message.file.display, self._report, message.outcome)
            self._pump()
        elif isinstance(message, StopRequested):
            self._stopping = True
            self._queue.waiting.clear()
            self._pump()
        else:
            raise TypeError(f"unexpected message {message!r}")

    def on_failure(self, exception_type: Any, exception_value: Any, traceback: Any) -> None:
        self._shutdown()
        if not self._done.done():
            self._done.set_result(f"preseed actor crashed: {exception_value!r}")

    def _tell(self, message: object) -> None:
        tell_or_drop(self.actor_ref, message)

    def _file(self, namespace: str, name: str) -> PreseedFile:
        path = os.path.join(self._settings.directory, namespace, name)
        return PreseedFile(namespace, name, path)

    def _heal(self, event: ImageEvent) -> None:
        """Queue the tarballs of an image deleted in containerd (its import says so).

        An image no tarball of the record holds is none of ours: nothing happens, so
        other clients' deletions cost no settling.
        """
        queued = False
        for name in self._preseeder.tarballs_of(event.namespace, event.name):
            f = self._file(event.namespace, name)
            if os.path.isfile(f.path):
                self._queue.add(f)
                queued = True
            else:
                self._log.info(
                    "image %r in namespace %r was deleted and its tarball %r is gone: "
                    "not importing it again",
                    event.name,
                    event.namespace,
                    f.display,
                )
        if queued:
            self._pump()

    def _compare_with_store(self) -> None:
        """Queue every file of the record once: their imports find what is missing."""
        self._log.info(
            "subscribed to containerd's image events again; comparing the import record "
            "with containerd's images"
        )
        for namespace, name in self._preseeder.recorded():
            f = self._file(namespace, name)
            if os.path.isfile(f.path):
                self._queue.add(f)
        self._pump()

    def _ready(self, namespace: str, name: str) -> None:
        """A watched entry is complete: queue it whatever its type, but for a directory."""
        path = os.path.join(self._settings.directory, namespace, name)
        try:
            st = os.lstat(path)
        except OSError:
            return  # gone again: its removal is told apart
        if stat.S_ISDIR(st.st_mode):
            self._log.warning("%s", ignored_in_namespace(name))
        elif not self._stopping:
            self._queue.add(PreseedFile(namespace, name, path))
            self._pump()

    def _guarded(self, shown: str, step: Callable[..., None], *args: Any) -> None:
        """Runs a step about the file `shown`: its failure is an ERROR line, not the end."""
        try:
            step(*args)
        except Exception as e:  # noqa: BLE001 - one file's report must not end the others'
            self._log.error(
                "cannot report the outcome of preseed file %s: %s: %s",
                quoted(shown),
                type(e).__name__,
                display(str(e)),
            )

    def _pump(self) -> None:
        if self._done.done():
            return
        for f in [] if self._stopping else self._queue.take(self._settings.parallel):
            future = self._pool.submit(self._preseeder.import_file, f)
            future.add_done_callback(self._reporter(f))
        if self._queue.idle:
            self._settle()

    def _reporter(self, f: PreseedFile) -> Callable[[concurrent.futures.Future[FileOutcome]], None]:
        """The done-callback of one import (runs in the worker thread): tell the actor."""

        def done(future: concurrent.futures.Future[FileOutcome]) -> None:
            self._tell(_outcome_message(f, future))

        return done

    def _report(self, outcome: FileOutcome) -> None:
        if outcome.kind is FileOutcomeKind.IMPORTED:
            assert outcome.result is not None
            for text in outcome.result.warnings:
                self._log.warning("%s: %s", quoted(outcome.file.display), text)
            if outcome.result.unchanged:
                self._unchanged += 1
            if self._initial or not outcome.result.unchanged:
                self._log.info("%s", describe(outcome.result))
            self._guarded(outcome.file.display, self._on_result, outcome.result)
        elif outcome.kind is FileOutcomeKind.INCOMPLETE and self._settings.watch:
            self._log.info(
                "waiting for preseed file %s to be complete: %s",
                quoted(outcome.file.display),
                outcome.error,
            )
        else:
            self._log.error("%s", outcome.error)
            if self._initial:
                self._initial_failures.append(outcome.error)
            self._failed(outcome.file.display)
        self._counts[outcome.kind] += 1

    def _failed(self, shown: str) -> None:
        if self._on_failure is not None and not self._stopping:  # a stop cancels imports
            self._guarded(shown, self._on_failure, shown)

    def _settle(self) -> None:
        try:
            present = scan_dir(self._settings.directory).files
            for text in self._preseeder.settle(present):
                self._log.warning("%s", text)
        except FAILURES as e:
            if self._initial:
                self._finish(str(e))
                return
            # containerd restarting takes this node down with it; until then, say so.
            self._log.warning("preseed pins not updated: %s", e)
        if self._initial:
            self._initial = False
            self._end_initial_pass()
        if self._stopping or not self._settings.watch:
            self._finish(None)

    def _end_initial_pass(self) -> None:
        imported = self._counts[FileOutcomeKind.IMPORTED] - self._unchanged
        waiting = self._counts[FileOutcomeKind.INCOMPLETE] if self._settings.watch else 0
        failed = len(self._initial_failures)
        self._log.info(
            "initial preseed finished in %.1fs: %d imported, %d unchanged, %d failed, "
            "%d waiting to be complete; %s",
            time.monotonic() - self._started,
            imported,
            self._unchanged,
            failed,
            waiting,
            f"watching {self._settings.directory!r} for new tarballs"
            if self._settings.watch and not failed
            else "not watching",
        )
        total = sum(self._counts.values()) + self._scan_failures
        self._on_initial(InitialPass(tuple(self._initial_failures), total))
        if self._initial_failures:
            self._stopping = True

    def _shutdown(self) -> None:
        if self._events is not None:
            self._events.stop()
            self._events = None
        if self._watch is not None:
            self._watch.stop()
            self._watch = None
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _finish(self, error: str | None) -> None:
        self._shutdown()
        if not self._done.done():
            self._done.set_result(error)
        self.stop()


def _outcome_message(f: PreseedFile, future: concurrent.futures.Future[FileOutcome]) -> _Finished:
    try:
        return _Finished(f, future.result(), None)
    except concurrent.futures.CancelledError:
        return _Finished(f, FileOutcome(f, FileOutcomeKind.FAILED, error="canceled"), None)
    except Exception as e:  # noqa: BLE001 - containerd gone, or a bug: the node fails
        return _Finished(f, None, str(e))
