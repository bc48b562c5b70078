"""Writing blobs into containerd's content store: pipelined, verified, skipped when present.

Per blob, one `Content.Write` stream under the import's lease:

1. a STAT request with the ref, the expected size and the expected digest. If
   containerd already has the blob it answers AlreadyExists before any data is
   sent (and adds the blob to our lease), so the blob is skipped; if it offers
   the blob from another namespace (shared content), the ingest starts complete
   and we only commit;
2. otherwise the data, read with `pread` from the archive in 1 MiB chunks, with
   up to 8 chunks in flight (we do not wait for each chunk's reply, which is what
   makes containerd's own client slow), hashed as it goes;
3. the last chunk travels in the COMMIT request, with the GC labels, and only
   after we have checked the digest ourselves: a blob whose bytes do not match
   its digest is never committed, the stream ends without a commit and the
   ingest is aborted.

Several blobs are written at once (3 streams), largest first. A skipped parent
still gets its GC labels, with `Content.Update`. If any blob fails, the others
stop at their next chunk, and `abort_open` discards the unfinished ingests.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import TypeVar

import grpc
from google.protobuf import field_mask_pb2  # type: ignore[import-untyped]

from actors.containerd.api.client import ContainerdClient
from actors.containerd.api.errors import ContainerdError
from actors.preseed.archive.archive import Archive
from actors.preseed.archive.descriptors import Descriptor, new_hasher
from actors.preseed.archive.layout import BlobSource
from actors.preseed.archive.tarindex import TarEntry
from actors.preseed.errors import FAILURES, ArchiveError, PreseedError, as_preseed_error
from actors.preseed.importer.plan import BlobWrite
from messages.containerd.services.content.v1 import content_pb2 as cpb

__all__ = ["CHUNK", "ContentWriter", "WriteStats", "write_request"]

CHUNK = 1 << 20
IN_FLIGHT = 8
STREAMS = 3
T = TypeVar("T")
_MIN_RATE = 1 << 20  # bytes per second a stream must at least achieve before its deadline


@dataclass
class WriteStats:
    """What the writer did so far (updated from several threads under a lock)."""

    #: Blob bytes sent to containerd.
    bytes_sent: int = 0
    #: Bytes of blobs written or skipped (for progress).
    bytes_done: int = 0
    #: Blobs committed with data we sent.
    blobs_written: int = 0
    #: Blobs containerd already had.
    blobs_skipped: int = 0


def _varint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def write_request(offset: int, data: bytes) -> bytes:
    """A serialized WRITE `WriteContentRequest` (action=1, offset=5, data=6), built
    directly: the data is copied once, not into a message object and out again."""
    head = b"\x08\x01" + (b"\x28" + _varint(offset) if offset else b"")
    return b"".join((head, b"\x32", _varint(len(data)), data)) if data else head


class _Upload:
    """The request side of one Write stream; runs in gRPC's request thread."""

    def __init__(self, writer: ContentWriter, write: BlobWrite, ref: str) -> None:
        self.writer = writer
        self.write = write
        self.ref = ref
        self.stat_done = threading.Event()
        self.stat_offset = 0
        self.ended = threading.Event()
        self.window = threading.Semaphore(IN_FLIGHT)
        self.failure: PreseedError | None = None

    def stopped(self) -> bool:
        return self.ended.is_set() or self.writer.stop.is_set()

    def read(self, offset: int, length: int) -> bytes:
        source = self.write.source
        assert source is not None
        if source.data is not None:
            return source.data[offset : offset + length]
        return self.writer.archive.pread(source.offset + offset, length)

    def commit(self, offset: int, data: bytes = b"") -> bytes:
        desc = self.write.descriptor
        return bytes(
            cpb.WriteContentRequest(
                action=cpb.COMMIT,
                offset=offset,
                data=data,
                total=desc.size,
                expected=desc.digest,
                labels=dict(self.write.labels),
            ).SerializeToString()
        )

    def requests(self) -> Iterator[bytes]:
        desc = self.write.descriptor
        yield bytes(
            cpb.WriteContentRequest(
                action=cpb.STAT, ref=self.ref, total=desc.size, expected=desc.digest
            ).SerializeToString()
        )
        self.stat_done.wait()
        if self.stopped():
            return
        if self.stat_offset == desc.size and desc.size > 0:
            yield self.commit(desc.size)  # shared content: already complete
            return
        if self.write.source is None:
            self.failure = ArchiveError(f"blob {desc.digest} is missing from the archive")
            return
        try:
            yield from self.data()
        except FAILURES as e:
            self.failure = as_preseed_error(e)
        except OSError as e:
            self.failure = ArchiveError(f"cannot read the archive: {e.strerror or e}")

    def data(self) -> Iterator[bytes]:
        desc = self.write.descriptor
        source = self.write.source
        assert source is not None
        hasher = None if source.verified else new_hasher(desc.digest)
        offset = 0
        while True:
            length = min(CHUNK, desc.size - offset)
            chunk = self.read(offset, length)
            last = offset + length >= desc.size
            if hasher is not None:
                hasher.update(chunk)
                if last and f"{desc.digest.split(':', 1)[0]}:{hasher.hexdigest()}" != desc.digest:
                    raise ArchiveError(f"blob {desc.digest} does not match its digest")
            while not self.window.acquire(timeout=0.2):
                if self.stopped():
                    return
            if self.stopped():
                return
            if last:
                yield self.commit(offset, chunk)
                return
            yield write_request(offset, chunk)
            offset += length


class ContentWriter:
    """Writes the blobs of one import into one namespace, under one lease."""

    def __init__(
        self, client: ContainerdClient, namespace: str, lease: str, archive: Archive
    ) -> None:
        self.client = client
        self.namespace = namespace
        self.lease = lease
        self.archive = archive
        #: Counters, updated as blobs complete.
        self.stats = WriteStats()
        #: Set to make every stream stop at its next chunk.
        self.stop = threading.Event()
        self._lock = threading.Lock()
        self._open: set[str] = set()
        self._written: set[str] = set()

    def _count(self, *, sent: int = 0, done: int = 0, written: int = 0, skipped: int = 0) -> None:
        with self._lock:
            self.stats.bytes_sent += sent
            self.stats.bytes_done += done
            self.stats.blobs_written += written
            self.stats.blobs_skipped += skipped

    def _label(self, write: BlobWrite) -> None:
        if not write.labels:
            return
        info = cpb.Info(digest=write.descriptor.digest, labels=dict(write.labels))
        mask = field_mask_pb2.FieldMask(paths=[f"labels.{k}" for k in write.labels])
        self.client.call(
            self.client.content.Update,
            cpb.UpdateRequest(info=info, update_mask=mask),
            what=f"labels of blob {write.descriptor.digest}",
            namespace=self.namespace,
            lease=self.lease,
        )

    def write_one(self, write: BlobWrite) -> None:
        """Write (or skip) one blob and set its labels.

        Raises:
            ArchiveError: its bytes do not match its digest, or it is missing.
            ContainerdError: containerd failed the write.
        """
        desc = write.descriptor
        ref = f"{self.lease}-{desc.digest}"
        with self._lock:
            if desc.digest in self._written and not write.labels:
                return
            self._open.add(ref)
        upload = _Upload(self, write, ref)
        timeout = self.client.timeout + desc.size / _MIN_RATE
        call = self.client.write_stream(
            upload.requests(),
            metadata=self.client.metadata(self.namespace, self.lease),
            timeout=timeout,
        )
        committed = exists = False
        acked = 0
        try:
            for reply in call:
                if not upload.stat_done.is_set():
                    upload.stat_offset = reply.offset
                    acked = reply.offset
                    upload.stat_done.set()
                    continue
                upload.window.release()
                if reply.offset > acked:
                    self._count(sent=reply.offset - acked, done=reply.offset - acked)
                    acked = reply.offset
                if reply.action == cpb.COMMIT:
                    committed = True
        except grpc.RpcError as e:
            if e.code() != grpc.StatusCode.ALREADY_EXISTS:
                raise self.client.error(f"the write of blob {desc.digest}", e) from e
            exists = True
        finally:
            upload.ended.set()
            upload.stat_done.set()
            upload.window.release()
        if upload.failure is not None:
            raise upload.failure
        if exists or (committed and upload.stat_offset == desc.size and desc.size > 0):
            with self._lock:
                self._open.discard(ref)
                self._written.add(desc.digest)
            self._count(done=desc.size - acked if exists else desc.size, skipped=1)
            if exists:
                self._label(write)
            return
        if not committed:
            raise ContainerdError(f"containerd ended the write of blob {desc.digest} early")
        with self._lock:
            self._open.discard(ref)
            self._written.add(desc.digest)
        self._count(written=1)

    def run(
        self,
        jobs: Sequence[Callable[[], T]],
        tick: Callable[[], None] | None = None,
        interval: float = 0.5,
    ) -> list[T]:
        """Run jobs (writes) on `STREAMS` threads; call `tick` every `interval` seconds.

        Raises:
            PreseedError: the first failure; the other jobs are stopped.
        """
        with ThreadPoolExecutor(max_workers=STREAMS, thread_name_prefix="preseed-write") as pool:
            futures = [pool.submit(job) for job in jobs]
            pending: set[Future[T]] = set(futures)
            try:
                while pending:
                    done, pending = wait(pending, timeout=interval, return_when=FIRST_EXCEPTION)
                    if tick is not None:
                        tick()
                    for future in done:
                        future.result()
            except BaseException:
                self.stop.set()
                for future in pending:
                    future.cancel()
                raise
        return [f.result() for f in futures]

    def write_all(
        self,
        writes: Sequence[BlobWrite],
        tick: Callable[[], None] | None = None,
        interval: float = 0.5,
    ) -> WriteStats:
        """Write every blob (those already written by this writer are not redone).

        Raises:
            PreseedError: the first failure; the other streams are stopped.
        """
        self.run([functools.partial(self.write_one, w) for w in writes], tick, interval)
        return self.stats

    def hash_and_write(
        self,
        files: Sequence[TarEntry],
        tick: Callable[[], None] | None = None,
        interval: float = 0.5,
    ) -> dict[int, str]:
        """Hash archive members and write each as a blob as soon as it is hashed.

        Hashing one file overlaps with writing others. Returns the digests by tar offset.

        Raises:
            PreseedError: the first failure; the other streams are stopped.
        """

        def job(entry: TarEntry) -> str:
            digest = self.archive.sha256(entry)
            source = BlobSource(entry.offset, entry.size, verified=True)
            self.write_one(BlobWrite(Descriptor("", digest, entry.size), source))
            return digest

        digests = self.run([functools.partial(job, e) for e in files], tick, interval)
        return {e.offset: d for e, d in zip(files, digests, strict=True)}

    def abort_open(self) -> None:
        """Abort the ingests of blobs that were started but not committed (best effort)."""
        with self._lock:
            refs, self._open = sorted(self._open), set()
        for ref in refs:
            try:
                self.client.call(
                    self.client.content.Abort,
                    cpb.AbortRequest(ref=ref),
                    what=f"abort of ingest {ref!r}",
                    namespace=self.namespace,
                    lease=self.lease,
                    timeout=5.0,
                )
            except ContainerdError:
                pass
