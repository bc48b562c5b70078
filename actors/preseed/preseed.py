"""The preseed directory: `<dir>/<namespace>/<file>`, as Metropolis's `runPreseed`, in pieces.

- `scan_dir` lists the directory: every directory in it is a containerd
  namespace, every file in a namespace directory an image archive. As in the Go
  original, a non-directory at the top and a directory inside a namespace
  directory are warned about and ignored (symbolic links count as files).
- `import_order` is the documented order: the tarball that holds the sandbox
  image first (known from the import record, else guessed from a file name
  starting with the image's last path component, e.g. `pause…`), then by
  namespace and file name.
- `Preseeder` imports one file at a time (several threads may call it): the
  import record skips unchanged files, pins are added as labels, failures are
  kept per file (one bad file never stops the others), and `settle` saves the
  record and releases the pins of tarballs that are gone.
- `preseed_dir` is the one-shot walk (the `preseed` command): scan, import in
  order with up to `parallel` imports at once, settle.

The agent's long-running preseed (`actor.PreseedActor`) uses the same pieces.
"""

from __future__ import annotations

import dataclasses
import enum
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from actors.preseed.client import ContainerdClient
from actors.preseed.errors import PreseedError
from actors.preseed.importer import display_name, import_archive, unpack_images
from actors.preseed.leases import create_lease, delete_lease
from actors.preseed.names import validate_namespace
from actors.preseed.options import ImportOptions
from actors.preseed.pins import pin_image, pin_labels, release_stale_pins
from actors.preseed.record import ImportRecord
from actors.preseed.results import ImportResult, PreseedReport

__all__ = [
    "PROGRESS_INTERVAL",
    "Outcome",
    "OutcomeKind",
    "PreseedFile",
    "Preseeder",
    "Scan",
    "describe",
    "import_order",
    "preseed_dir",
    "scan_dir",
]

PROGRESS_INTERVAL = 5.0
_LOG = logging.getLogger("actors.preseed")


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
            "importing %r: %d/%d MB (%d%%), %.0f MB/s",
            self.file,
            done // 1_000_000,
            total // 1_000_000,
            percent,
            rate,
        )


def _size(count: int) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if count >= scale:
            return f"{count / scale:.1f} {unit}"
    return f"{count} B"


def describe(result: ImportResult) -> str:
    """One line naming a result's images and namespace."""
    names = ", ".join(i.name for i in result.images) or "no images"
    file = display_name(result.namespace, result.path)
    if result.unchanged:
        how = "unchanged, not imported again"
    else:
        how = (
            f"{_size(result.bytes_sent)} sent, {result.blobs_skipped} blobs already "
            f"present, {result.seconds:.1f}s"
        )
    if result.layers_unpacked or result.layers_present:
        how += f", {result.layers_unpacked} layers unpacked, {result.layers_present} present"
    return f"imported preseed bundle {file!r} into namespace {result.namespace!r}: {names} ({how})"


@dataclass(frozen=True, order=True, slots=True)
class PreseedFile:
    """One archive of the preseed directory.

    Attributes:
        namespace: The containerd namespace (the directory it lies in).
        name: Its file name.
        path: Its path (`<dir>/<namespace>/<name>`).
    """

    namespace: str
    name: str
    path: str

    @property
    def display(self) -> str:
        """How it is named in messages: `<namespace>/<name>`."""
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True, slots=True)
class Scan:
    """What `scan_dir` found.

    Attributes:
        files: The archives, by namespace and name.
        warnings: Entries ignored, as the Go original warns about them.
        failures: (file, error text) of what cannot be imported at all (a
            namespace directory that cannot be listed, a namespace name containerd refuses).
    """

    files: tuple[PreseedFile, ...]
    warnings: tuple[str, ...]
    failures: tuple[tuple[str, str], ...]


def _listdir(path: str) -> list[os.DirEntry[str]]:
    with os.scandir(path) as it:
        return sorted(it, key=lambda e: e.name)


def _scan_namespace(entry: os.DirEntry[str], scan: Scan) -> Scan:
    namespace = entry.name
    try:
        listed = _listdir(entry.path)
    except OSError as e:
        text = f"failed to list namespace preseed directory for ns {namespace!r}: {e.strerror or e}"
        return dataclasses.replace(scan, failures=(*scan.failures, (f"{namespace}/", text)))
    files, warnings, failures = list(scan.files), list(scan.warnings), list(scan.failures)
    try:
        validate_namespace(namespace)
        bad: str | None = None
    except ValueError as e:
        bad = str(e)
    for item in listed:
        if item.is_dir(follow_symlinks=False):
            warnings.append(f"directory {item.name!r} found in preseed namespaced folder, ignoring")
        elif bad is not None:
            file = f"{namespace}/{item.name}"
            failures.append((file, str(PreseedError.for_file(file, bad))))
        else:
            files.append(PreseedFile(namespace, item.name, item.path))
    return Scan(tuple(files), tuple(warnings), tuple(failures))


def scan_dir(directory: str | os.PathLike[str]) -> Scan:
    """List the archives of a preseed directory.

    Raises:
        PreseedError: the directory itself cannot be listed.
    """
    root = os.fspath(directory)
    try:
        entries = _listdir(root)
    except OSError as e:
        raise PreseedError(f"failed to open preseed dir {root!r}: {e.strerror or e}") from None
    scan = Scan((), (), ())
    for entry in entries:
        if entry.is_dir(follow_symlinks=False):
            scan = _scan_namespace(entry, scan)
        else:
            warning = f"non-directory {entry.name!r} found in preseed folder, ignoring"
            scan = dataclasses.replace(scan, warnings=(*scan.warnings, warning))
    return scan


def import_order(
    sandbox_image: str | None, holds: Callable[[PreseedFile, str], bool]
) -> Callable[[PreseedFile], tuple[int, str, str]]:
    """The sort key of the documented import order (sandbox image first, then by name).

    Args:
        sandbox_image: The CRI sandbox image's name, or None when unknown.
        holds: Whether the import record says a file holds an image.
    """
    stem = (
        sandbox_image.rsplit("/", 1)[-1].split(":", 1)[0].split("@", 1)[0] if sandbox_image else ""
    )

    def key(f: PreseedFile) -> tuple[int, str, str]:
        first = sandbox_image is not None and (
            holds(f, sandbox_image) or (f.namespace == "k8s.io" and f.name.startswith(stem))
        )
        return (0 if first else 1, f.namespace, f.name)

    return key


class OutcomeKind(enum.Enum):
    """How the import of one file ended."""

    IMPORTED = "imported"
    FAILED = "failed"
    INCOMPLETE = "incomplete"


@dataclass(frozen=True, slots=True)
class Outcome:
    """The outcome of one file's import.

    Attributes:
        file: The file.
        kind: Imported (or unchanged), failed, or incomplete (it ends too early:
            still being copied, or truncated).
        result: The import's result, when imported.
        error: The full error text, when failed or incomplete.
    """

    file: PreseedFile
    kind: OutcomeKind
    result: ImportResult | None = None
    error: str = ""


class Preseeder:
    """Imports preseed files one by one with a shared import record and pin policy.

    Thread-safe: `import_file` may run in several threads at once (on different
    files); the record is guarded by a lock.

    Attributes:
        sandbox_image: The CRI sandbox image (always pinned), or None.
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
    ) -> None:
        self._client = client
        self._log = log
        self._pin = pin
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

    def import_file(self, f: PreseedFile) -> Outcome:
        """Import one file (or find it unchanged); never raises for a bad file.

        A containerd failure is that file's failure too (as in the one-shot walk).
        """
        options = self.options_for(f)
        try:
            with self._lock:
                unchanged = (
                    self._record.unchanged(self._client, f.path, f.namespace, options)
                    if self._record is not None
                    else None
                )
            if unchanged is not None and options.unpack:
                unchanged = self._unpack(unchanged, options, f.display)
            result = unchanged or import_archive(
                self._client,
                f.path,
                namespace=f.namespace,
                options=options,
                progress=_Progress(self._log, f.display, self._interval),
            )
            self._pin_sandbox(result)
        except PreseedError as e:
            if self._record is not None:
                with self._lock:
                    self._record.forget(f.path, f.namespace)
            text = str(e) if e.file else str(PreseedError.for_file(f.display, e.cause))
            kind = OutcomeKind.INCOMPLETE if e.incomplete else OutcomeKind.FAILED
            return Outcome(f, kind, error=text)
        if self._record is not None:
            with self._lock:
                self._record.put(result, options)
        return Outcome(f, OutcomeKind.IMPORTED, result=result)

    def _unpack(self, result: ImportResult, options: ImportOptions, file: str) -> ImportResult:
        lease = create_lease(self._client, result.namespace, file)
        try:
            applied, present = unpack_images(
                self._client, result.namespace, result.images, options, lease
            )
        except PreseedError as e:
            raise PreseedError.for_file(file, e.cause) from e
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


def preseed_dir(
    client: ContainerdClient,
    directory: str | os.PathLike[str],
    *,
    options: ImportOptions = ImportOptions(),  # noqa: B008 (frozen, never mutated)
    record_path: str | os.PathLike[str] | None = None,
    log: logging.Logger | None = None,
    cancel: threading.Event | None = None,
    progress_interval: float = PROGRESS_INTERVAL,
    parallel: int = 1,
    pin: bool = False,
    sandbox_image: str | None = None,
) -> PreseedReport:
    """Import every archive under `<directory>/<namespace>/`, in `import_order`.

    Args:
        client: The containerd to import into.
        directory: The preseed directory.
        options: Import options for every file.
        record_path: The import record (JSON) to skip unchanged files with; None
            imports every file. Compressed archives are decompressed beside it.
        log: Where warnings, one line per file, failures and progress go.
        cancel: When set, no further file is started.
        progress_interval: Seconds between progress lines of a large import.
        parallel: How many files are imported at once.
        pin: Pin every image imported (see `pins`), and release stale pins.
        sandbox_image: The CRI sandbox image: imported first, always pinned.

    Returns:
        Per-file results, failures (file, error text) and warnings.

    Raises:
        PreseedError: the preseed directory itself cannot be listed.
    """
    log = log or _LOG
    scan = scan_dir(directory)
    for text in scan.warnings:
        log.warning("%s", text)
    for _, text in scan.failures:
        log.error("%s", text)
    preseeder = Preseeder(
        client,
        options=options,
        record_path=record_path,
        log=log,
        pin=pin,
        sandbox_image=sandbox_image,
        progress_interval=progress_interval,
    )
    warnings = [preseeder.problem] if preseeder.problem else []
    warnings += scan.warnings
    files = sorted(scan.files, key=import_order(sandbox_image, preseeder.holds))

    def one(f: PreseedFile) -> Outcome | None:
        if cancel is not None and cancel.is_set():
            return None
        return preseeder.import_file(f)

    with ThreadPoolExecutor(max_workers=max(1, parallel), thread_name_prefix="nc-preseed") as pool:
        outcomes = [o for o in pool.map(one, files) if o is not None]
    results = []
    failures = list(scan.failures)
    for outcome in outcomes:
        if outcome.result is not None:
            results.append(outcome.result)
            for text in outcome.result.warnings:
                warnings.append(f"{outcome.file.display!r}: {text}")
                log.warning("%r: %s", outcome.file.display, text)
            log.info("%s", describe(outcome.result))
        else:
            failures.append((outcome.file.display, outcome.error))
            log.error("%s", outcome.error)
    for text in preseeder.settle(scan.files):
        warnings.append(text)
        log.warning("%s", text)
    return PreseedReport(tuple(results), tuple(failures), tuple(warnings))
