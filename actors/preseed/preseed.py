"""The preseed directory walk: `<dir>/<namespace>/<file>`, as Metropolis's `runPreseed`.

`preseed_dir` lists the preseed directory; every directory in it is a containerd
namespace (named as containerd allows, else each of its files fails), and every
file in a namespace directory is an image archive imported into that namespace.
As in the Go original, a non-directory at the top and a directory inside a
namespace directory are warned about and ignored (symbolic links count as
files, as Go's `ReadDir` sees them).

Unlike the original, one bad file does not stop the walk: its failure is
recorded with an error naming it and its cause, nothing of it is left in
containerd (see `import_archive`), and the other files are still imported. With
an import record, unchanged files whose images are all present are skipped.
Large imports log progress every few seconds.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import threading
import time
from collections.abc import Callable

from actors.preseed.client import ContainerdClient
from actors.preseed.errors import PreseedError
from actors.preseed.importer import display_name, import_archive
from actors.preseed.names import validate_namespace
from actors.preseed.options import ImportOptions
from actors.preseed.record import ImportRecord
from actors.preseed.results import ImportResult, PreseedReport

__all__ = ["PROGRESS_INTERVAL", "describe", "preseed_dir"]

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
    return f"imported preseed bundle {file!r} into namespace {result.namespace!r}: {names} ({how})"


def _listdir(path: str) -> list[os.DirEntry[str]]:
    with os.scandir(path) as it:
        return sorted(it, key=lambda e: e.name)


def preseed_dir(
    client: ContainerdClient,
    directory: str | os.PathLike[str],
    *,
    options: ImportOptions = ImportOptions(),  # noqa: B008 (frozen, never mutated)
    record_path: str | os.PathLike[str] | None = None,
    log: logging.Logger | None = None,
    cancel: threading.Event | None = None,
    progress_interval: float = PROGRESS_INTERVAL,
) -> PreseedReport:
    """Import every archive under `<directory>/<namespace>/`.

    Args:
        client: The containerd to import into.
        directory: The preseed directory.
        options: Import options for every file.
        record_path: The import record (JSON) to skip unchanged files with; None
            imports every file. Compressed archives are decompressed beside it.
        log: Where warnings, one line per file, failures and progress go.
        cancel: When set, the walk stops before the next file.
        progress_interval: Seconds between progress lines of a large import.

    Returns:
        Per-file results, failures (file, error text) and warnings.

    Raises:
        PreseedError: the preseed directory itself cannot be listed.
    """
    log = log or _LOG
    root = os.fspath(directory)
    try:
        namespaces = _listdir(root)
    except OSError as e:
        raise PreseedError(f"failed to open preseed dir {root!r}: {e.strerror or e}") from None
    record = ImportRecord(record_path) if record_path is not None else None
    if record is not None and options.temp_dir is None:
        state_dir = os.path.dirname(os.path.abspath(record.path))
        os.makedirs(state_dir, exist_ok=True)
        options = dataclasses.replace(options, temp_dir=state_dir)
    warnings: list[str] = [record.problem] if record is not None and record.problem else []
    results: list[ImportResult] = []
    failures: list[tuple[str, str]] = []
    seen: list[tuple[str, str]] = []

    def warn(text: str) -> None:
        warnings.append(text)
        log.warning("%s", text)

    def fail(file: str, text: str) -> None:
        failures.append((file, text))
        log.error("%s", text)

    for ns_entry in namespaces:
        if not ns_entry.is_dir(follow_symlinks=False):
            warn(f"non-directory {ns_entry.name!r} found in preseed folder, ignoring")
            continue
        namespace = ns_entry.name
        try:
            files = _listdir(ns_entry.path)
        except OSError as e:
            fail(
                f"{namespace}/",
                f"failed to list namespace preseed directory for ns "
                f"{namespace!r}: {e.strerror or e}",
            )
            continue
        try:
            validate_namespace(namespace)
            bad_namespace = None
        except ValueError as e:
            bad_namespace = str(e)
        for file_entry in files:
            if cancel is not None and cancel.is_set():
                break
            if file_entry.is_dir(follow_symlinks=False):
                warn(f"directory {file_entry.name!r} found in preseed namespaced folder, ignoring")
                continue
            file = f"{namespace}/{file_entry.name}"
            if bad_namespace is not None:
                fail(file, str(PreseedError.for_file(file, bad_namespace)))
                continue
            seen.append((namespace, file_entry.path))
            result = _one(
                client,
                file_entry.path,
                namespace,
                options,
                record,
                log,
                file,
                progress_interval,
                fail,
            )
            if result is not None:
                results.append(result)
                for text in result.warnings:
                    warn(f"{file!r}: {text}")
                log.info("%s", describe(result))
    if record is not None:
        record.keep_only(seen)
        try:
            record.save()
        except OSError as e:
            warn(f"import record {record.path!r} was not saved: {e.strerror or e}")
    return PreseedReport(tuple(results), tuple(failures), tuple(warnings))


def _one(
    client: ContainerdClient,
    path: str,
    namespace: str,
    options: ImportOptions,
    record: ImportRecord | None,
    log: logging.Logger,
    file: str,
    interval: float,
    fail: Callable[[str, str], None],
) -> ImportResult | None:
    try:
        result = record.unchanged(client, path, namespace, options) if record else None
        if result is None:
            result = import_archive(
                client,
                path,
                namespace=namespace,
                options=options,
                progress=_Progress(log, file, interval),
            )
    except PreseedError as e:
        if record is not None:
            record.forget(path, namespace)
        fail(file, str(e) if e.file else str(PreseedError.for_file(file, e.cause)))
        return None
    if record is not None:
        record.put(result, options)
    return result
