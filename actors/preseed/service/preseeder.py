"""Importing preseed files one by one: `Preseeder`, shared by the walk and the actor.

`Preseeder.import_file` imports one `PreseedFile` (several threads may call it
on different files): the import record skips unchanged files (and, with
unpack, still makes sure their layers are unpacked), pins are added as
labels, and a failure is that file's `FileOutcome`, never an exception — one bad
file never stops the others. Progress goes to the log (a line per
`PROGRESS_INTERVAL`), to `progress` and to `imports` (the `importing` fact), which
is told when each import ends. A file that ends too early (`IncompleteArchive`)
is told apart as INCOMPLETE, so the watch can wait for its writer instead of
reporting it as failed. `Preseeder.settle` saves the record and releases the
pins of tarballs that are gone.

Healing: a file whose recorded images containerd no longer has is imported
again, with its pins, and each image deleted outside the agent is named in one
WARNING with its tarball. `tarballs_of` says which files hold an image (the
actor asks when containerd reports a deletion), `recorded` which files the
record holds (compared with the store after a broken event stream). An image
whose tarball was removed has left the record already: it stays deleted.
"""

from __future__ import annotations

import dataclasses
import enum
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from actors.containerd.api.client import ContainerdClient
from actors.fs_names import display, quoted
from actors.preseed.errors import FAILURES, PreseedError, as_preseed_error
from actors.preseed.importer.archive_import import display_name, import_archive, unpack_images
from actors.preseed.importer.leases import create_lease, delete_lease
from actors.preseed.importer.options import ImportOptions
from actors.preseed.importer.results import ImportResult
from actors.preseed.importing import ImportsUnderWay
from actors.preseed.service.pins import pin_image, pin_labels, release_stale_pins
from actors.preseed.service.record import ImportRecord, RecordCheck

__all__ = ["PROGRESS_INTERVAL", "FileOutcome", "FileOutcomeKind", "PreseedFile", "Preseeder"]

PROGRESS_INTERVAL = 5.0


class _Progress:
    """Logs `importing 'ns/file': 120/300 MB (40%), 151 MB/s` every few seconds."""

    def __init__(
        self,
        log: logging.Logger,
        file: str,
        interval: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.log = log
        self.file = file
        self.interval = interval
        self.clock = clock
        self.started = clock()
        self.next = self.started + interval

    def __call__(self, done: int, total: int) -> None:
        now = self.clock()
        if now < self.next or done >= total:
            return
        self.next = now + self.interval
        rate = done / (now - self.started) / 1e6
        percent = 100 * done // total if total else 100
        self.log.info(
            "importing %s: %d/%d MB (%d%%), %.0f MB/s",
            quoted(self.file),
            done // 1_000_000,
            total // 1_000_000,
            percent,
            rate,
        )


@dataclass(frozen=True, order=True, slots=True)
class PreseedFile:
    """One archive of the preseed directory."""

    #: The containerd namespace (the directory it lies in).
    namespace: str
    #: Its file name.
    name: str
    #: Its path (`<dir>/<namespace>/<name>`).
    path: str

    @property
    def display(self) -> str:
        """How it is named everywhere: `<namespace>/<name>`, each in `fs_names.display` form."""
        return f"{display(self.namespace)}/{display(self.name)}"


class FileOutcomeKind(enum.Enum):
    """How the import of one file ended."""

    IMPORTED = "imported"
    FAILED = "failed"
    INCOMPLETE = "incomplete"


@dataclass(frozen=True, slots=True)
class FileOutcome:
    """The outcome of one file's import."""

    #: The file.
    file: PreseedFile
    #: Imported (or unchanged), failed, or incomplete (it ends too early: still being copied, or
    #: truncated).
    kind: FileOutcomeKind
    #: The import's result, when imported.
    result: ImportResult | None = None
    #: The full error text, when failed or incomplete.
    error: str = ""


class Preseeder:
    """Imports preseed files one by one with a shared import record and pin policy.

    Thread-safe: `import_file` may run in several threads at once (on different
    files); the record is guarded by a lock.
    """

    def __init__(
        self,
        client: ContainerdClient,
        *,
        options: ImportOptions,
        record_path: str | os.PathLike[str] | None,
        log: logging.Logger,
        pin: bool = False,
        sandbox_image: str | None = None,
        progress_interval: float = PROGRESS_INTERVAL,
        progress: Callable[[str, int, int], None] | None = None,
        imports: ImportsUnderWay | None = None,
    ) -> None:
        self._client = client
        #: Also told (file, bytes done, bytes total) as a file is imported, if set.
        self._progress = progress
        #: The imports under way (the `importing` fact), if reported.
        self._imports = imports
        self._log = log
        self._pin = pin
        #: The CRI sandbox image (always pinned), or None.
        self.sandbox_image = sandbox_image
        self._interval = progress_interval
        self._lock = threading.Lock()
        self._record = ImportRecord(record_path) if record_path is not None else None
        if self._record is not None and options.temp_dir is None:
            state_dir = os.path.dirname(os.path.abspath(self._record.path))
            os.makedirs(state_dir, exist_ok=True)
            options = dataclasses.replace(options, temp_dir=state_dir)
        self._options = options
        self.problem = self._record.problem if self._record is not None else None

    @property
    def client(self) -> ContainerdClient:
        """The containerd it imports into."""
        return self._client

    def tarballs_of(self, namespace: str, image: str) -> list[str]:
        """The names of the files in `namespace` the record says hold `image`, sorted."""
        if self._record is None:
            return []
        with self._lock:
            entries = list(self._record.entries.values())
        return sorted(
            os.path.basename(e.path)
            for e in entries
            if e.namespace == namespace and any(name == image for name, *_ in e.images)
        )

    def recorded(self) -> list[tuple[str, str]]:
        """Every file of the record, as (namespace, file name), sorted."""
        if self._record is None:
            return []
        with self._lock:
            entries = list(self._record.entries.values())
        return sorted((e.namespace, os.path.basename(e.path)) for e in entries)

    def holds(self, f: PreseedFile, image: str) -> bool:
        """Whether the record says `f` was imported with an image of that name."""
        if self._record is None:
            return False
        with self._lock:
            entry = self._record.entries.get((f.namespace, os.path.abspath(f.path)))
        return entry is not None and any(name == image for name, *_ in entry.images)

    def options_for(self, f: PreseedFile) -> ImportOptions:
        """The import options of one file: the pins, when pinning, added to the labels."""
        if not self._pin:
            return self._options
        labels = {**self._options.labels, **pin_labels(f.display)}
        return dataclasses.replace(self._options, labels=labels)

    def import_file(self, f: PreseedFile) -> FileOutcome:
        """Import one file (or find it unchanged); never raises for a bad file.

        A containerd failure is that file's failure too (as in the one-shot walk).
        """
        try:
            return self._import_file(f)
        finally:
            if self._imports is not None:
                self._imports.ended(f.display)

    def _import_file(self, f: PreseedFile) -> FileOutcome:
        options = self.options_for(f)
        try:
            with self._lock:
                check = (
                    self._record.check(self._client, f.path, f.namespace, options)
                    if self._record is not None
                    else RecordCheck()
                )
            for name in check.deleted:
                self._log.warning(
                    "image %r in namespace %r was deleted outside the agent; "
                    "importing it again from its tarball %r",
                    name,
                    f.namespace,
                    f.display,
                )
            unchanged = check.unchanged
            if unchanged is not None and options.unpack:
                unchanged = self._unpack(unchanged, options, f.display)
            result = unchanged or import_archive(
                self._client,
                f.path,
                namespace=f.namespace,
                options=options,
                progress=self._progress_of(f),
            )
            self._pin_sandbox(result)
        except Exception as failure:  # noqa: BLE001 - a bad file fails alone, whatever it raised
            e = (
                as_preseed_error(failure)
                if isinstance(failure, FAILURES)
                else PreseedError(f"internal error: {type(failure).__name__}: {failure}")
            )
            if self._record is not None:
                with self._lock:
                    self._record.forget(f.path, f.namespace)
            text = str(e) if e.file else str(PreseedError.for_file(f.display, e.cause))
            kind = FileOutcomeKind.INCOMPLETE if e.incomplete else FileOutcomeKind.FAILED
            return FileOutcome(f, kind, error=text)
        if self._record is not None:
            with self._lock:
                self._record.put(result, options)
        return FileOutcome(f, FileOutcomeKind.IMPORTED, result=result)

    def _progress_of(self, f: PreseedFile) -> Callable[[int, int], None]:
        """The progress callback of one file's import: the log's lines, and `progress`."""
        logged = _Progress(self._log, f.display, self._interval)
        told, imports = self._progress, self._imports
        if told is None and imports is None:
            return logged

        def progress(done: int, total: int) -> None:
            logged(done, total)
            if told is not None:
                told(f.display, done, total)
            if imports is not None:
                imports.progress(f.display, done, total)

        return progress

    def _unpack(self, result: ImportResult, options: ImportOptions, file: str) -> ImportResult:
        lease = create_lease(self._client, result.namespace, file)
        try:
            applied, present = unpack_images(
                self._client, result.namespace, result.images, options, lease
            )
        except FAILURES as e:
            raise PreseedError.for_file(file, as_preseed_error(e).cause) from e
        finally:
            delete_lease(self._client, result.namespace, lease)
        return dataclasses.replace(result, layers_unpacked=applied, layers_present=present)

    def _pin_sandbox(self, result: ImportResult) -> None:
        """Pin the sandbox image even when pinning is off (only our labels are added)."""
        if self._pin or self.sandbox_image is None or result.namespace != "k8s.io":
            return
        for image in result.images:
            if image.name == self.sandbox_image:
                file = display_name(result.namespace, result.path)
                pin_image(self._client, result.namespace, image.name, file)

    def settle(self, present: Iterable[PreseedFile]) -> list[str]:
        """Forget files that are gone, save the record, release the pins of gone tarballs.

        Returns:
            Warnings (the record could not be saved).

        Raises:
            ContainerdError: containerd failed a listing or an update.
        """
        warnings: list[str] = []
        files = list(present)
        if self._record is None:
            return warnings
        with self._lock:
            namespaces = {e.namespace for e in self._record.entries.values()}
            namespaces |= {f.namespace for f in files}
            self._record.keep_only((f.namespace, f.path) for f in files)
            try:
                self._record.save()
            except OSError as e:
                warnings.append(
                    f"import record {self._record.path!r} was not saved: {e.strerror or e}"
                )
            keep: dict[str, set[str]] = {}
            for entry in self._record.entries.values():
                names = keep.setdefault(entry.namespace, set())
                if self._pin:
                    names.update(name for name, *_ in entry.images)
        if self.sandbox_image is not None:
            keep.setdefault("k8s.io", set()).add(self.sandbox_image)
        for namespace in sorted(namespaces | set(keep)):
            for name in release_stale_pins(self._client, namespace, keep.get(namespace, set())):
                self._log.info(
                    "unpinned image %r in namespace %r: its tarball is gone", name, namespace
                )
        return warnings
