"""The few exception types of the preseed importer.

Every failure a caller can see is a `PreseedError`. Its text is the whole
user-facing message: lowercase, no trailing period, naming the file and the
cause, for example::

    failed to import preseed image 'k8s.io/pause.tar': blob sha256:3f… does not match its digest

Inside the library, the archive readers raise `ArchiveError` with just the cause
(they do not know how the file is shown); `import_archive` wraps every failure
into a `PreseedError` for its file with `PreseedError.for_file` (keeping
`incomplete` set when the cause was an `IncompleteArchive`). The containerd
client raises `actors.containerd.api.errors.ContainerdError`; a preseed step that
failed because of it is a `ContainerdFailed`, so a caller can tell "this tarball
is bad" from "containerd is not there". `FAILURES` and `as_preseed_error` let a
step that calls both the readers and the client catch and report either.
"""

from __future__ import annotations

from actors.containerd.api.errors import ContainerdError
from actors.fs_names import quoted

__all__ = [
    "FAILURES",
    "ArchiveError",
    "ContainerdFailed",
    "IncompleteArchive",
    "PreseedError",
    "as_preseed_error",
]


class PreseedError(Exception):
    """A preseed import failed; `str()` is the full message."""

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        cause: str | None = None,
        incomplete: bool = False,
    ) -> None:
        super().__init__(message)
        #: How the failed file is shown (`<namespace>/<file name>`, each part in the display
        #: form of `actors.fs_names`), or None when the error is not about one file.
        self.file = file
        #: The cause alone, without the file prefix.
        self.cause = cause if cause is not None else message
        #: The archive ended too early (truncated, or still being copied).
        self.incomplete = incomplete

    @classmethod
    def for_file(cls, file: str, cause: str, *, incomplete: bool = False) -> PreseedError:
        """The error for one preseed file, e.g. `failed to import preseed image 'ns/a.tar': …`."""
        return cls(
            f"failed to import preseed image {quoted(file)}: {cause}",
            file=file,
            cause=cause,
            incomplete=incomplete,
        )


class ContainerdFailed(PreseedError):
    """A preseed step failed because containerd did (a `ContainerdError` underneath)."""

    @classmethod
    def for_file(cls, file: str, cause: str, *, incomplete: bool = False) -> ContainerdFailed:
        """The containerd failure met while importing one preseed file."""
        text = f"failed to import preseed image {quoted(file)}: {cause}"
        return cls(text, file=file, cause=cause)


class ArchiveError(PreseedError):
    """The archive's content is bad; the message is the cause only (no file)."""


class IncompleteArchive(ArchiveError):
    """The archive ends too early: truncated, or still being written.

    A one-shot import reports it as any bad archive; the preseed watch waits for
    the file to change instead of reporting it as failed.
    """

    def __init__(self, message: str) -> None:
        super().__init__(message, incomplete=True)


#: What a preseed step may raise: its own errors and containerd's client's.
FAILURES = (PreseedError, ContainerdError)


def as_preseed_error(error: PreseedError | ContainerdError) -> PreseedError:
    """`error` as a `PreseedError`: a client's `ContainerdError` becomes `ContainerdFailed`."""
    if isinstance(error, PreseedError):
        return error
    failed = ContainerdFailed(str(error))
    failed.__cause__ = error
    return failed
