"""The whole corpus: every case in a stable order, written as a preseed directory.

`generate(outdir)` lays the corpus out as a preseed directory,
`<outdir>/<namespace>/<file>`, so that the same files serve `import_archive` one by one
and `preseed_dir` all at once; `write_good_files` adds two good tarballs beside it.
`main` is the CLI: `python -m tests.support.corpus OUTDIR` writes the corpus and
prints its table.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from tests.support import images as ig
from tests.support.corpus.accepted import accepted_cases, layout_cases
from tests.support.corpus.bad_bytes import container_cases, digest_cases
from tests.support.corpus.bad_paths import path_cases
from tests.support.corpus.bad_structure import docker_cases, structure_cases
from tests.support.corpus.case import NAMESPACE, Case
from tests.support.corpus.good_archive import base, tar_bytes

__all__ = ["GOOD_FILES", "cases", "generate", "main", "write_good_files"]


def cases() -> tuple[Case, ...]:
    """Every corpus case, in a stable order; names are unique."""
    good = tar_bytes(base().entries)
    all_cases = (
        *container_cases(good),
        *digest_cases(),
        *path_cases(),
        *structure_cases(),
        *docker_cases(),
        *accepted_cases(),
        *layout_cases(),
    )
    assert len({c.name for c in all_cases}) == len(all_cases)
    return all_cases


GOOD_FILES = {
    f"{NAMESPACE}/good-oci.tar": ("docker.io/library/corpus-good-a:1",),
    f"{NAMESPACE}/good-docker.tar.zst": ("docker.io/library/corpus-good-b:1",),
}
"""The good tarballs `write_good_files` writes beside the corpus, and their images."""


def write_good_files(outdir: Path) -> dict[str, tuple[str, ...]]:
    """Write `GOOD_FILES` under `outdir` (an OCI tar and a zstd docker archive)."""
    (outdir / NAMESPACE).mkdir(parents=True, exist_ok=True)
    ig.write_oci_archive(
        outdir / NAMESPACE / "good-oci.tar",
        [ig.small_image("docker.io/library/corpus-good-a:1", seed=110)],
    )
    plain = outdir / NAMESPACE / "good-docker.tar"
    ig.write_docker_archive(
        plain,
        [ig.DockerImageSpec(("corpus-good-b:1",), ig.small_image(None, seed=111, layers=2).layers)],
    )
    ig.compress(plain, "zstd")
    plain.unlink()
    return dict(GOOD_FILES)


def generate(outdir: Path, selected: Sequence[Case] | None = None) -> tuple[Case, ...]:
    """Write the corpus (or the `selected` cases) under `outdir`; return the cases."""
    chosen = tuple(selected) if selected is not None else cases()
    for case in chosen:
        (outdir / case.relpath).parent.mkdir(parents=True, exist_ok=True)
        case.make(outdir / case.relpath)
    return chosen


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m tests.support.corpus OUTDIR`: write the corpus and print one line per case."""
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1 or args[0].startswith("-"):
        print("usage: python -m tests.support.corpus OUTDIR", file=sys.stderr)
        return 2
    outdir = Path(args[0])
    written = generate(outdir)
    write_good_files(outdir)
    for case in written:
        print(f"{case.relpath:45} {case.doc}\n{'':45} -> {case.cause or 'imports / warning'}")
    print(f"{len(written)} cases in {outdir}")
    return 0
