"""What imports report: frozen results for one file and for a preseed directory."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ImportResult", "ImportedImage", "PreseedReport"]


@dataclass(frozen=True)
class ImportedImage:
    """One image created or updated.

    Attributes:
        name: Image name.
        target_digest: Digest of the manifest or index the image points to.
        media_type: Media type of that target.
        size: Size of the target document in bytes.
    """

    name: str
    target_digest: str
    media_type: str
    size: int

    def to_json(self) -> dict[str, object]:
        """A JSON-ready dict."""
        return {
            "name": self.name,
            "target_digest": self.target_digest,
            "media_type": self.media_type,
            "size": self.size,
        }


@dataclass(frozen=True)
class ImportResult:
    """The outcome of importing one archive.

    Attributes:
        path: The archive's path, as given.
        namespace: containerd namespace imported into.
        images: Images created or updated (or found unchanged).
        bytes_sent: Blob bytes sent to containerd.
        blobs_written: Blobs committed with data we sent.
        blobs_skipped: Blobs containerd already had (not sent).
        unchanged: True when the import record showed the file unchanged and its
            images present, so nothing was read or sent.
        index_digest: Digest of the archive's top-level index document.
        warnings: What was left out or renamed (platforms, unnamed manifests, …).
        size: Size of the archive file in bytes.
        mtime_ns: Modification time of the archive file, in nanoseconds.
        seconds: Wall-clock duration of the import, in seconds.
        layers_unpacked: Layers extracted into the snapshotter (with unpack on).
        layers_present: Layers whose snapshot already existed (with unpack on).
    """

    path: str
    namespace: str
    images: tuple[ImportedImage, ...]
    bytes_sent: int
    blobs_written: int
    blobs_skipped: int
    unchanged: bool
    index_digest: str = ""
    warnings: tuple[str, ...] = ()
    size: int = 0
    mtime_ns: int = 0
    seconds: float = 0.0
    layers_unpacked: int = 0
    layers_present: int = 0

    def to_json(self) -> dict[str, object]:
        """A JSON-ready dict."""
        return {
            "path": self.path,
            "namespace": self.namespace,
            "images": [i.to_json() for i in self.images],
            "bytes_sent": self.bytes_sent,
            "blobs_written": self.blobs_written,
            "blobs_skipped": self.blobs_skipped,
            "unchanged": self.unchanged,
            "index_digest": self.index_digest,
            "warnings": list(self.warnings),
            "seconds": round(self.seconds, 3),
            "layers_unpacked": self.layers_unpacked,
            "layers_present": self.layers_present,
        }


@dataclass(frozen=True)
class PreseedReport:
    """The outcome of a preseed directory walk.

    Attributes:
        results: One result per file imported (or found unchanged).
        failures: One (file, error text) per file that failed; the file is shown as
            `<namespace>/<file name>`.
        warnings: Things ignored, as the Go original warns about them.
    """

    results: tuple[ImportResult, ...]
    failures: tuple[tuple[str, str], ...]
    warnings: tuple[str, ...]

    @property
    def ok(self) -> bool:
        """Whether every file was imported."""
        return not self.failures
