"""The preseed directory: `<dir>/<namespace>/<file>`, as Metropolis's `runPreseed`, in pieces.

- `scan_dir` lists the directory: every directory in it is a containerd
  namespace, every file in a namespace directory an image archive. As in the Go
  original, a non-directory at the top and a directory inside a namespace
  directory are warned about and ignored (symbolic links count as files).
- `import_order` is the documented order: the tarball that holds the sandbox
  image first (known from the import record, else guessed from a file name
  starting with the image's last path component, e.g. `pause…`), then by
  namespace and file name.
- `describe` is the one log line per tarball.
- Importing one file is `preseeder.Preseeder`'s.
- `preseed_dir` is the one-shot walk (the `preseed` command): scan, import in
  order with up to `parallel` imports at once, settle.

The agent's long-running preseed (`actor.PreseedActor`) uses the same pieces.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from actors.containerd.api.client import ContainerdClient
from actors.fs_names import display, quoted
from actors.preseed.archive.names import validate_namespace
from actors.preseed.errors import PreseedError
from actors.preseed.importer.archive_import import display_name
from actors.preseed.importer.options import ImportOptions
from actors.preseed.importer.results import ImportResult, PreseedReport
from actors.preseed.service.preseeder import PROGRESS_INTERVAL, FileOutcome, Preseeder, PreseedFile

__all__ = [
    "Scan",
    "describe",
    "ignored_at_top",
    "ignored_in_namespace",
    "import_order",
    "preseed_dir",
    "scan_dir",
]

_LOG = logging.getLogger("actors.preseed")


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
    return (
        f"imported preseed bundle {quoted(file)} into namespace "
        f"{quoted(display(result.namespace))}: {names} ({how})"
    )


@dataclass(frozen=True, slots=True)
class Scan:
    """What `scan_dir` found."""

    #: The archives, by namespace and name.
    files: tuple[PreseedFile, ...]
    #: Entries ignored, as the Go original warns about them.
    warnings: tuple[str, ...]
    #: (file, error text) of what cannot be imported at all (a namespace directory that cannot be
    #: listed, a namespace name containerd refuses).
    failures: tuple[tuple[str, str], ...]


def _listdir(path: str) -> list[os.DirEntry[str]]:
    with os.scandir(path) as it:
        return sorted(it, key=lambda e: e.name)


def _scan_namespace(entry: os.DirEntry[str], scan: Scan) -> Scan:
    namespace = entry.name
    shown = display(namespace)
    try:
        listed = _listdir(entry.path)
    except OSError as e:
        text = (
            f"failed to list namespace preseed directory for ns {quoted(shown)}: {e.strerror or e}"
        )
        return dataclasses.replace(scan, failures=(*scan.failures, (f"{shown}/", text)))
    files, warnings, failures = list(scan.files), list(scan.warnings), list(scan.failures)
    try:
        validate_namespace(namespace)
        bad: str | None = None
    except ValueError as e:
        bad = str(e)
    for item in listed:
        if item.is_dir(follow_symlinks=False):
            warnings.append(ignored_in_namespace(item.name))
        elif bad is not None:
            file = f"{shown}/{display(item.name)}"
            failures.append((file, str(PreseedError.for_file(file, bad))))
        else:
            files.append(PreseedFile(namespace, item.name, item.path))
    return Scan(tuple(files), tuple(warnings), tuple(failures))


def ignored_at_top(name: str) -> str:
    """The warning about an entry of the preseed directory that is not a directory."""
    return f"non-directory {quoted(display(name))} found in preseed folder, ignoring"


def ignored_in_namespace(name: str) -> str:
    """The warning about a directory inside a namespace directory."""
    return f"directory {quoted(display(name))} found in preseed namespaced folder, ignoring"


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
            scan = dataclasses.replace(scan, warnings=(*scan.warnings, ignored_at_top(entry.name)))
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
    progress: Callable[[str, int, int], None] | None = None,
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
        progress: Called with (file, bytes done, bytes total) as each file is imported
            (e.g. a terminal's progress line), from the importing threads.

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
        progress=progress,
    )
    warnings = [preseeder.problem] if preseeder.problem else []
    warnings += scan.warnings
    files = sorted(scan.files, key=import_order(sandbox_image, preseeder.holds))

    def one(f: PreseedFile) -> FileOutcome | None:
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
                warnings.append(f"{quoted(outcome.file.display)}: {text}")
                log.warning("%s: %s", quoted(outcome.file.display), text)
            log.info("%s", describe(outcome.result))
        else:
            failures.append((outcome.file.display, outcome.error))
            log.error("%s", outcome.error)
    for text in preseeder.settle(scan.files):
        warnings.append(text)
        log.warning("%s", text)
    return PreseedReport(tuple(results), tuple(failures), tuple(warnings))
