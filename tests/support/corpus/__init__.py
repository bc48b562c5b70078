"""The bad-input corpus for the preseed importer, and a CLI that writes it.

Every case is a `Case` record: the file's name, one line on how it is made, the cause its
import must fail with (a regex searched in the `PreseedError` text, which must also name
the file), and the function that writes it. `generate(outdir)` lays the corpus out as a
preseed directory, `<outdir>/<namespace>/<file>`, so that the same files serve
`import_archive` one by one and `preseed_dir` all at once.

Most archives are one good OCI archive of two images with exactly one thing broken:
`BYSTANDER`, which is never broken (so an importer that creates images one by one is
caught), and `VICTIM`, whose blobs are the ones broken. `VICTIM` has the name of an image
the tests import beforehand from a different, good archive, so an importer that changes an
existing image before it has verified everything is caught too.

Placements other than a file in a namespace directory:
    namespace_dir: a directory at the top whose name containerd rejects as a namespace,
        holding a good tarball: a failure naming the directory; nothing imported.
    nested_dir: a directory inside a namespace directory: a warning, as in the Go original.
    top_file: a (good) tarball at the top of the preseed directory: a warning, not imported.

Run `python -m tests.support.corpus OUTDIR` (from the checkout) to write the corpus and
print its table.

Modules: `case` (a `Case`, the names, the causes), `good_archive` (the good archive and
the tools that break it), `bad_bytes`, `bad_paths`, `bad_structure` and `accepted` (the
cases, by what is wrong), `writer` (every case in order, `generate`, the CLI).
"""

from __future__ import annotations

from tests.support.corpus.case import (
    BYSTANDER,
    NAMESPACE,
    OK_NAMESPACE,
    VICTIM,
    Case,
    error_pattern,
)
from tests.support.corpus.good_archive import good_victim_archive
from tests.support.corpus.writer import GOOD_FILES, cases, generate, main, write_good_files

__all__ = [
    "BYSTANDER",
    "GOOD_FILES",
    "NAMESPACE",
    "OK_NAMESPACE",
    "VICTIM",
    "Case",
    "cases",
    "error_pattern",
    "generate",
    "good_victim_archive",
    "main",
    "write_good_files",
]
