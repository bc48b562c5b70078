"""The matrix of ``scripts/test`` ran every containerd the cache holds, or said why not."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from scripts.containerd_versions import SUITES, cached, cached_version
from scripts.matrix import (
    NOT_ASKED,
    SAME_AS_SYSTEM,
    Record,
    read_records,
    system_version,
    wanted_suites,
)


def problems_of(
    records: dict[str, Record], system: str | None, nc_matrix: str | None, args: str = ""
) -> list[str]:
    """Every cached suite the records show neither run nor skipped for a valid reason.

    A run that collected no test is one only when scripts/test was given no arguments
    (a folder or ``-k`` may leave a version nothing to run).
    """
    out = []
    for suite in cached():
        version = cached_version(suite)
        r = records.get(suite)
        if r is None:
            out.append(f"{suite} ({version}) is cached but the matrix has no record of it")
        elif r.ran and (r.version != version or (r.collected == 0 and not args)):
            out.append(
                f"{suite} ran {r.version} with {r.collected} tests; the cache holds {version}"
            )
        elif not r.ran and r.reason == SAME_AS_SYSTEM.format(version=version):
            if version != system:
                out.append(f"{suite} ({version}) was skipped as the system's, which is {system}")
        elif not r.ran and r.reason == NOT_ASKED.format(value=nc_matrix):
            if suite in wanted_suites(nc_matrix):
                out.append(f"{suite} was skipped as not asked for, but NC_MATRIX asks for it")
        elif not r.ran:
            out.append(f"{suite} ({version}) is cached but was skipped: {r.reason}")
    return out


def test_the_matrix_ran_every_cached_containerd_or_said_why_not() -> None:
    directory = os.environ.get("NC_MATRIX_DIR")
    if not directory:
        pytest.skip("not run by scripts/test: there is no matrix to check")
    records = read_records(Path(directory))
    env = os.environ
    assert (
        problems_of(records, system_version(), env.get("NC_MATRIX"), env.get("NC_MATRIX_ARGS", ""))
        == []
    )


def test_a_cached_suite_without_a_record_or_with_a_false_reason_is_reported() -> None:
    suites = cached()
    if not suites:
        pytest.skip("no containerd is cached: run scripts/containerd-versions")
    suite = suites[0]
    version = cached_version(suite)
    assert f"{suite} ({version}) is cached but the matrix has no record of it" in problems_of(
        {}, "0.0.0", None
    )
    same = Record(name=suite, version=str(version), reason=SAME_AS_SYSTEM.format(version=version))
    assert problems_of({suite: same}, "0.0.0", None)[0] == (
        f"{suite} ({version}) was skipped as the system's, which is 0.0.0"
    )
    fetch = Record(name=suite, reason="cannot fetch it (no network?): x")
    assert problems_of({suite: fetch}, "0.0.0", None)[0] == (
        f"{suite} ({version}) is cached but was skipped: cannot fetch it (no network?): x"
    )
    ran = Record(name=suite, version=str(version), ran=True, collected=0)
    assert problems_of({suite: ran}, "0.0.0", None)[0] == (
        f"{suite} ran {version} with 0 tests; the cache holds {version}"
    )
    assert f"{suite} ran {version} with 0 tests; the cache holds {version}" not in (
        problems_of({suite: ran}, "0.0.0", None, "tests/core")
    )
    assert len(SUITES) == 3
