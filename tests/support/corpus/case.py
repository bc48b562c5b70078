"""A corpus case, the names the corpus uses, and the causes its errors must name.

A `Case` is one file (or directory) of the corpus: how it is made, where it lies, and
the cause its import must fail with, a regex searched in the `PreseedError` text
(`error_pattern` makes the whole-message pattern). The regexes below are the causes,
written loosely on purpose: the words an honest error would use, not one wording.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from tests.support import images as ig

__all__ = [
    "BIG",
    "BYSTANDER",
    "NAMESPACE",
    "OK_NAMESPACE",
    "VICTIM",
    "Case",
    "Placement",
    "all_of",
    "error_pattern",
    "mismatch",
    "missing",
]

NAMESPACE = "k8s.io"
VICTIM = "docker.io/library/corpus-victim:1"
BYSTANDER = "docker.io/library/corpus-bystander:1"
BIG = 100 * 1024 * 1024
"""The size of the over-large JSON documents (100 MiB)."""

Placement = Literal["file", "namespace_dir", "nested_dir", "top_file"]

OK_NAMESPACE = "corpus-ok"
"""Where the cases that must import lie, apart from the namespace of the broken ones."""


@dataclass(frozen=True, slots=True)
class Case:
    """One corpus entry.

    Attributes:
        name: the file (or directory) name.
        doc: how it is made, in one line.
        cause: a regex (searched, case-insensitive, dot matches newline) that the error
            text must match after the file name; None for a case that must import.
        make: writes the file at the path it is given.
        namespace: the namespace directory it lies in (placement "file" and "nested_dir").
        placement: see the module docstring.
        images: for a case that must import, the image names it creates.
    """

    name: str
    doc: str
    cause: str | None
    make: Callable[[Path], object]
    namespace: str = NAMESPACE
    placement: Placement = "file"
    images: tuple[str, ...] = ()

    @property
    def relpath(self) -> str:
        """Its path relative to the preseed directory."""
        top = self.placement in ("namespace_dir", "top_file")
        return self.name if top else f"{self.namespace}/{self.name}"


def error_pattern(case: Case) -> re.Pattern[str]:
    """The whole-message pattern an `import_archive` error of `case` must match.

    `failed to import preseed image '<path ending in namespace/file>': <text with cause>`.
    """
    assert case.cause is not None
    file = re.escape(f"{case.namespace}/{case.name}")
    return re.compile(
        rf"failed to import preseed image '(?:[^']*/)?{file}': "
        rf"(?=.*?(?:{case.cause})).+",
        re.IGNORECASE | re.DOTALL,
    )


def all_of(*parts: str) -> str:
    """A regex that matches text containing every one of `parts`, in any order."""
    return "".join(f"(?=.*?(?:{p}))" for p in parts)


TRUNCATED = r"truncat|unexpected end|unexpected eof|ended (early|before|prematurely)|incomplete"
NOT_TAR = (
    r"not an? (valid |recognized )?(tar|archive)|invalid tar|bad tar|tar header"
    r"|unrecognized|unknown (archive )?format"
)
NOT_IMAGE = (
    r"unrecognized|not an? (oci|docker|image)|(no|missing|neither) "
    r"(index\.json|manifest\.json|oci-layout)"
)
BAD_HEADER = r"checksum|invalid tar|tar header|corrupt|bad header"
UNSAFE = r"unsafe|absolute|travers|escapes|outside|out of|illegal|not allowed|forbidden"
MISSING = r"missing|not found|absent|not in the archive|no such|\bno\b"
BAD_JSON = r"json|parse|decode|malformed"
TOO_LARGE = r"too (large|big)|exceeds|limit|larger than"
NOT_REGULAR = r"not a regular file|fifo|named pipe|socket"
NOT_REGULAR_ENTRY = r"not a regular|fifo|director|special|unsupported|type"


def mismatch(blob: ig.Blob) -> str:
    return rf"blob {blob.digest} does not match its digest"


def missing(blob: ig.Blob) -> str:
    """The cause for `blob` missing. A leaf (layer, config) that containerd already holds is
    not read from the archive, and a failed import may leave blobs in containerd until its
    GC runs: so each case that leaves out or breaks a leaf uses a `base` variant whose
    blobs no other case has."""
    return all_of(blob.digest, MISSING)
