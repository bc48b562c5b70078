"""The bad-input corpus against the real containerd: each bad tarball fails alone and cleanly.

For every corpus file, `import_archive` raises `PreseedError` whose text names the file and
the cause (`tests.support.corpus.error_pattern`), no image is created or changed (the namespace
already holds a good image under the name the bad archives use), and containerd holds no
ingest or lease afterwards. Then one `preseed_dir` run over the whole corpus beside two
good tarballs imports the good ones and reports every bad one.

Every import runs under a pytest-timeout: a FIFO or a socket where a tarball should be
must fail, not hang.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from actors.preseed import ContainerdClient, PreseedError, import_archive
from actors.preseed.archive.names import is_config_digest_name
from tests.support import corpus as mc
from tests.support.containerd_daemon import ContainerdDaemon
from tests.support.project import python_env, python_module

BAD = [c for c in mc.cases() if c.placement == "file" and c.cause is not None]
ACCEPTED = [c for c in mc.cases() if c.placement == "file" and c.cause is None]


def _images(containerd: ContainerdDaemon, namespace: str = mc.NAMESPACE) -> list[str]:
    """The rows of `ctr images ls`: name, type, target digest, size and platforms.

    In k8s.io, containerd's CRI plugin, in the background, labels each image
    (`io.cri-containerd.image=managed`) and adds a `sha256:<config>` image beside it with
    the same target: the labels column and such rows are left out, so that the listing
    does not depend on when CRI got round to it.
    """
    rows = [
        row.split() for row in containerd.ctr("images", "ls", namespace=namespace).splitlines()[1:]
    ]
    named = {row[2] for row in rows if not is_config_digest_name(row[0])}
    return sorted(
        " ".join(row[:6]) for row in rows if not (is_config_digest_name(row[0]) and row[2] in named)
    )


def _names(containerd: ContainerdDaemon, namespace: str) -> list[str]:
    return [row.split()[0] for row in _images(containerd, namespace)]


def _leftovers(containerd: ContainerdDaemon, namespace: str) -> dict[str, list[str]]:
    """Leases and active ingests containerd holds in `namespace`."""
    return {
        "leases": containerd.ctr("leases", "ls", namespace=namespace).splitlines()[1:],
        "ingests": containerd.ctr("content", "active", namespace=namespace).splitlines()[1:],
    }


def _new_leftovers(
    containerd: ContainerdDaemon, namespace: str, before: dict[str, list[str]]
) -> dict[str, list[str]]:
    """Leases and ingests in `namespace` that were not there `before`."""
    now = _leftovers(containerd, namespace)
    return {kind: [row for row in rows if row not in before[kind]] for kind, rows in now.items()}


NO_LEFTOVERS: dict[str, list[str]] = {"leases": [], "ingests": []}


def _seed_victim(containerd: ContainerdDaemon, workdir: Path) -> None:
    """Import, with the reference client, the good image whose name the bad files reuse."""
    good = workdir / "victim-good.tar"
    mc.good_victim_archive(good)
    containerd.ctr(
        "images", "import", *containerd.local, "--no-unpack", str(good), namespace=mc.NAMESPACE
    )


@pytest.fixture(scope="module")
def corpus() -> Iterator[Path]:
    # a short base keeps the unix socket's path bindable; the corpus copes either way.
    with tempfile.TemporaryDirectory(prefix="nc-corpus-") as d:
        mc.generate(Path(d))
        yield Path(d)


@pytest.fixture(scope="module")
def seeded(containerd: ContainerdDaemon, tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """The containerd of this module, holding the good victim image; its image rows."""
    _seed_victim(containerd, tmp_path_factory.mktemp("victim"))
    rows = _images(containerd)
    assert [row.split()[0] for row in rows] == [mc.VICTIM]
    return rows


def test_the_corpus_has_at_least_thirty_bad_files_with_unique_names() -> None:
    names = [c.name for c in mc.cases()]
    assert len(BAD) >= 30
    assert len(names) == len(set(names))


def _digests(root: Path) -> dict[str, str]:
    """Relative path → sha256 of every regular file under `root`."""
    return {
        str(f.relative_to(root)): hashlib.sha256(f.read_bytes()).hexdigest()
        for f in sorted(root.rglob("*"))
        if f.is_file() and not f.is_symlink()
    }


@pytest.mark.timeout(60)
def test_the_cli_writes_the_same_corpus_byte_for_byte_and_the_good_files(
    corpus: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    run = subprocess.run(
        python_module("tests.support.corpus", str(out)),
        capture_output=True,
        text=True,
        timeout=50,
        cwd=tmp_path,
        env=python_env({"PATH": os.environ["PATH"]}),
        check=False,
    )

    assert (run.returncode, run.stderr) == (0, "")
    assert run.stdout.splitlines()[-1] == f"{len(mc.cases())} cases in {out}"
    assert [c.relpath for c in mc.cases() if not os.path.lexists(out / c.relpath)] == []
    cli = _digests(out)
    assert {rel: cli.pop(rel, None) is not None for rel in mc.GOOD_FILES} == dict.fromkeys(
        mc.GOOD_FILES, True
    )
    assert cli == _digests(corpus)


def test_the_cli_refuses_a_missing_output_directory() -> None:
    run = subprocess.run(
        python_module("tests.support.corpus"),
        capture_output=True,
        text=True,
        timeout=30,
        env=python_env(),
        check=False,
    )
    usage = "usage: python -m tests.support.corpus OUTDIR\n"
    assert (run.returncode, run.stdout, run.stderr) == (2, "", usage)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("case", BAD, ids=lambda c: c.name)
def test_a_bad_tarball_fails_naming_file_and_cause_and_leaves_containerd_as_it_was(
    case: mc.Case, corpus: Path, containerd: ContainerdDaemon, seeded: list[str]
) -> None:
    images, leftovers = _images(containerd), _leftovers(containerd, case.namespace)
    with ContainerdClient(containerd.address) as client, pytest.raises(PreseedError) as info:
        import_archive(client, corpus / case.relpath, namespace=case.namespace)

    assert mc.error_pattern(case).fullmatch(str(info.value)), str(info.value)
    assert _images(containerd) == images
    assert _new_leftovers(containerd, case.namespace, leftovers) == NO_LEFTOVERS


@pytest.mark.timeout(60)
def test_after_every_bad_file_the_namespace_holds_just_the_good_image_as_it_was(
    containerd: ContainerdDaemon, seeded: list[str]
) -> None:
    # runs after the bad files above (pytest keeps definition order within a module)
    assert _images(containerd) == seeded
    assert _leftovers(containerd, mc.NAMESPACE) == NO_LEFTOVERS


@pytest.mark.timeout(60)
@pytest.mark.parametrize("case", ACCEPTED, ids=lambda c: c.name)
def test_an_odd_but_valid_tarball_imports_complete(
    case: mc.Case, corpus: Path, containerd: ContainerdDaemon
) -> None:
    leftovers = _leftovers(containerd, case.namespace)
    with ContainerdClient(containerd.address) as client:
        result = import_archive(client, corpus / case.relpath, namespace=case.namespace)

    assert sorted(image.name for image in result.images) == sorted(case.images)
    check = containerd.ctr("images", "check", namespace=case.namespace)
    statuses = {row.split()[0]: row.split()[3] for row in check.splitlines()[1:]}
    assert {name: statuses.get(name) for name in case.images} == dict.fromkeys(
        case.images, "complete"
    )
    assert _new_leftovers(containerd, case.namespace, leftovers) == NO_LEFTOVERS


def _failure_for(failures: dict[str, str], relpath: str) -> str | None:
    """The error text of the failure whose file is (or lies under) `relpath`."""
    hits = [
        text for file, text in failures.items() if file.endswith(relpath) or f"{relpath}/" in file
    ]
    return hits[0] if len(hits) == 1 else None


@pytest.mark.timeout(180)
def test_preseed_dir_imports_the_good_tarballs_and_reports_each_bad_one_with_its_cause(
    fresh_containerd: ContainerdDaemon, tmp_path: Path
) -> None:
    # imported here so that, should it be missing, only this test fails
    from actors.preseed import preseed_dir

    with tempfile.TemporaryDirectory(prefix="nc-preseed-") as d:
        root = Path(d)
        cases = mc.generate(root)
        good = mc.write_good_files(root)
        _seed_victim(fresh_containerd, tmp_path)
        victim_row = _images(fresh_containerd)
        with ContainerdClient(fresh_containerd.address) as client:
            report = preseed_dir(client, root)

    failures = {str(file): str(text) for file, text in report.failures}
    expected_failures = [c for c in cases if c.cause is not None]
    found = {c.relpath: _failure_for(failures, c.relpath) for c in expected_failures}
    assert [rel for rel, text in found.items() if text is None] == []
    wrong = {
        c.relpath: found[c.relpath]
        for c in expected_failures
        if not re.search(c.cause or "", found[c.relpath] or "", re.IGNORECASE | re.DOTALL)
    }
    assert wrong == {}
    assert len(failures) == len(expected_failures)

    warned = {
        c.name: [w for w in report.warnings if c.name in w]
        for c in cases
        if c.placement in ("nested_dir", "top_file")
    }
    assert {name: len(hits) for name, hits in warned.items()} == {
        "nested-dir": 1,
        "top-level.tar": 1,
    }

    imported = {name for names in good.values() for name in names}
    assert _names(fresh_containerd, mc.NAMESPACE) == sorted(imported | {mc.VICTIM})
    assert victim_row[0] in _images(fresh_containerd)
    accepted = {
        name for c in cases if c.placement == "file" and c.cause is None for name in c.images
    }
    assert _names(fresh_containerd, mc.OK_NAMESPACE) == sorted(accepted)
    namespaces = set(fresh_containerd.ctr("namespaces", "ls", "-q").split())
    assert namespaces - {"default"} == {mc.NAMESPACE, mc.OK_NAMESPACE}
    for namespace in (mc.NAMESPACE, mc.OK_NAMESPACE):
        assert _leftovers(fresh_containerd, namespace) == NO_LEFTOVERS
