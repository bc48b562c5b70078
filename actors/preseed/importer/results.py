"""What imports report: frozen results for one file and for a preseed directory."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ImportResult", "ImportedImage", "PreseedReport"]


@dataclass(frozen=True)
class ImportedImage:
    """One image created or updated."""

    #: Image name.
    name: str
    #: Digest of the manifest or index the image points to.
    target_digest: str
    #: Media type of that target.
    media_type: str
    #: Size of the target document in bytes.
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
    """The outcome of importing one archive."""

    #: The archive's path, as given.
    path: str
    #: Containerd namespace imported into.
    namespace: str
    #: Images created or updated (or found unchanged).
    images: tuple[ImportedImage, ...]
    #: Blob bytes sent to containerd.
    bytes_sent: int
    #: Blobs committed with data we sent.
    blobs_written: int
    #: Blobs containerd already had (not sent).
    blobs_skipped: int
    #: True when the import record showed the file unchanged and its images present, so nothing was
    #: read or sent.
    unchanged: bool
    #: Digest of the archive's top-level index document.
    index_digest: str = ""
    #: What was left out or renamed (platforms, unnamed manifests, …).
    warnings: tuple[str, ...] = ()
    #: Size of the archive file in bytes.
    size: int = 0
    #: Modification time of the archive file, in nanoseconds.
    mtime_ns: int = 0
    #: Wall-clock duration of the import, in seconds.
    seconds: float = 0.0
    #: Layers extracted into the snapshotter (with unpack on).
    layers_unpacked: int = 0
    #: Layers whose snapshot already existed (with unpack on).
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
    """The outcome of a preseed directory walk."""

    #: One result per file imported (or found unchanged).
    results: tuple[ImportResult, ...]
    #: One (file, error text) per file that failed; the file is shown as `<namespace>/<file name>`.
    failures: tuple[tuple[str, str], ...]
    #: Things ignored, as the Go original warns about them.
    warnings: tuple[str, ...]

    @property
    def ok(self) -> bool:
        """Whether every file was imported."""
        return not self.failures
