"""The import record: which preseed files were imported, so unchanged ones are skipped.

A JSON file in the agent's state directory lists, per imported file, its path
and namespace, size and modification time, the digest of its index, the images
it created (name and target digest) and the import options that matter. A file
is skipped (`unchanged` result, nothing read or sent) only when all of these
hold:

- its size and modification time are the recorded ones, and so are the options;
- containerd still has every recorded image, pointing at the recorded target,
  and the target blob itself (the store may have been wiped by a reboot).

Anything else re-imports it. `ImportRecord.check` also names the recorded images
of an otherwise unchanged file that containerd no longer has at all: they were
deleted outside the agent (`RecordCheck.deleted`), which the preseed reports
before it imports them again. The record is written atomically (temporary file,
fsync, rename); a record that cannot be read is treated as empty.
"""

from __future__ import annotations

import enum
import json
import os
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import grpc

from actors.containerd.api.client import ContainerdClient, code_of
from actors.containerd.api.errors import ContainerdError
from actors.preseed.importer.options import ImportOptions
from actors.preseed.importer.results import ImportedImage, ImportResult
from messages.containerd.services.content.v1 import content_pb2 as cpb
from messages.containerd.services.images.v1 import images_pb2 as ipb

__all__ = ["ImportRecord", "RecordCheck", "RecordEntry"]

_VERSION = 1


@dataclass(frozen=True)
class RecordEntry:
    """What was imported from one file."""

    #: Absolute path of the file.
    path: str
    #: Containerd namespace it was imported into.
    namespace: str
    #: File size in bytes at import time.
    size: int
    #: File modification time at import time, in nanoseconds.
    mtime_ns: int
    #: Digest of the archive's top-level index.
    index_digest: str
    #: The images created, as (name, target digest, media type, size).
    images: tuple[tuple[str, str, str, int], ...]
    #: `ImportOptions.fingerprint()` of the import.
    options: dict[str, object]

    def to_json(self) -> dict[str, object]:
        """A JSON-ready dict."""
        return {
            "path": self.path,
            "namespace": self.namespace,
            "size": self.size,
            "mtime_ns": self.mtime_ns,
            "index_digest": self.index_digest,
            "images": [list(i) for i in self.images],
            "options": self.options,
        }

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> RecordEntry:
        """Build from `to_json` output; raises KeyError/TypeError/ValueError if malformed."""
        images = doc["images"]
        if not isinstance(images, list):
            raise TypeError("images")
        options = doc["options"]
        if not isinstance(options, dict):
            raise TypeError("options")
        return cls(
            path=str(doc["path"]),
            namespace=str(doc["namespace"]),
            size=int(doc["size"]),
            mtime_ns=int(doc["mtime_ns"]),
            index_digest=str(doc["index_digest"]),
            images=tuple((str(n), str(d), str(m), int(s)) for n, d, m, s in images),
            options=options,
        )


@dataclass(frozen=True, slots=True)
class RecordCheck:
    """What the record says of one file, against containerd's store."""

    #: The result of a skipped import when the file and all its images are unchanged.
    unchanged: ImportResult | None = None
    #: Recorded images of the (otherwise unchanged) file that containerd no longer has:
    #: deleted outside the agent. Empty when the file changed or was never imported.
    deleted: tuple[str, ...] = ()


def _key(namespace: str, path: str) -> tuple[str, str]:
    return namespace, os.path.abspath(path)


class _Stored(enum.Enum):
    """How containerd holds a recorded image."""

    #: As recorded: the name points at the recorded target, whose blob is there.
    PRESENT = "present"
    #: No image of that name.
    DELETED = "deleted"
    #: Another target, or the target's blob is gone.
    CHANGED = "changed"


class ImportRecord:
    """The record file, loaded in memory; `save` writes it back."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        """Load the record at `path` (a missing or unreadable file is an empty record)."""
        self.path = os.fspath(path)
        self.entries: dict[tuple[str, str], RecordEntry] = {}
        self.problem: str | None = None
        try:
            with open(self.path, encoding="utf-8") as f:
                doc = json.load(f)
            if doc.get("version") != _VERSION:
                raise ValueError(f"version {doc.get('version')!r}")
            for item in doc["entries"]:
                entry = RecordEntry.from_json(item)
                self.entries[_key(entry.namespace, entry.path)] = entry
        except FileNotFoundError:
            pass
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
            self.entries.clear()
            self.problem = f"import record {self.path!r} is unreadable, starting afresh: {e}"

    def check(
        self, client: ContainerdClient, path: str, namespace: str, options: ImportOptions
    ) -> RecordCheck:
        """Whether the file is unchanged, and which of its images were deleted if not.

        Raises:
            ContainerdError: containerd failed a lookup (other than not found).
        """
        entry = self.entries.get(_key(namespace, path))
        if entry is None or entry.options != options.fingerprint():
            return RecordCheck()
        try:
            st = os.stat(path)
        except OSError:
            return RecordCheck()
        if (st.st_size, st.st_mtime_ns) != (entry.size, entry.mtime_ns):
            return RecordCheck()
        states = {
            name: self._state(client, namespace, name, digest) for name, digest, *_ in entry.images
        }
        if any(state is not _Stored.PRESENT for state in states.values()):
            return RecordCheck(
                deleted=tuple(name for name, state in states.items() if state is _Stored.DELETED)
            )
        return RecordCheck(
            unchanged=ImportResult(
                path=path,
                namespace=namespace,
                images=tuple(ImportedImage(n, d, m, s) for n, d, m, s in entry.images),
                bytes_sent=0,
                blobs_written=0,
                blobs_skipped=0,
                unchanged=True,
                index_digest=entry.index_digest,
                size=entry.size,
                mtime_ns=entry.mtime_ns,
            )
        )

    @staticmethod
    def _state(client: ContainerdClient, namespace: str, name: str, digest: str) -> _Stored:
        try:
            image = client.call(
                client.images.Get,
                ipb.GetImageRequest(name=name),
                what=f"get of image {name!r}",
                namespace=namespace,
            ).image
        except ContainerdError as e:
            if code_of(e) == grpc.StatusCode.NOT_FOUND:
                return _Stored.DELETED
            raise
        if image.target.digest != digest:
            return _Stored.CHANGED
        try:
            client.call(
                client.content.Info,
                cpb.InfoRequest(digest=digest),
                what=f"info of blob {digest}",
                namespace=namespace,
            )
        except ContainerdError as e:
            if code_of(e) == grpc.StatusCode.NOT_FOUND:
                return _Stored.CHANGED
            raise
        return _Stored.PRESENT

    def put(self, result: ImportResult, options: ImportOptions) -> None:
        """Remember a successful import."""
        self.entries[_key(result.namespace, result.path)] = RecordEntry(
            path=os.path.abspath(result.path),
            namespace=result.namespace,
            size=result.size,
            mtime_ns=result.mtime_ns,
            index_digest=result.index_digest,
            images=tuple((i.name, i.target_digest, i.media_type, i.size) for i in result.images),
            options=options.fingerprint(),
        )

    def forget(self, path: str, namespace: str) -> None:
        """Drop a file's entry (it failed, so it must be imported again next time)."""
        self.entries.pop(_key(namespace, path), None)

    def keep_only(self, keys: Iterable[tuple[str, str]]) -> None:
        """Drop the entries of files not seen in this walk, given as (namespace, path)."""
        wanted = {_key(ns, p) for ns, p in keys}
        self.entries = {k: v for k, v in self.entries.items() if k in wanted}

    def save(self) -> None:
        """Write the record atomically.

        Raises:
            OSError: the state directory is not writable (or full).
        """
        directory = os.path.dirname(os.path.abspath(self.path))
        os.makedirs(directory, exist_ok=True)
        doc = {"version": _VERSION, "entries": [e.to_json() for e in self.entries.values()]}
        fd, tmp = tempfile.mkstemp(prefix=".preseed-record-", dir=directory)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(doc, f, indent=1, sort_keys=True)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise
        dir_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
