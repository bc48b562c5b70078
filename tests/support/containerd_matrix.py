"""Which containerd this test run uses: the system's, or a Debian suite's from the cache.

``NC_CONTAINERD`` unset or ``system``: the containerd on ``PATH``. ``bookworm``,
``trixie`` or ``sid``: that suite's containerd, unpacked by
``scripts/containerd-versions`` into ``.cache/containerd/<suite>``; its directory is
put first on ``PATH`` for the whole run (fixtures, the agent, ``ctr``, the shims). A
suite that is not cached is a usage error, never a silent fallback to the system's.

``NC_RUNSC`` picks the runsc the same way (``system`` or a suite whose runsc
``scripts/containerd-versions --package runsc SUITE`` cached, put first on ``PATH``);
unset, a run uses `scripts.matrix.runsc_of` its containerd: trixie's runsc with sid's
containerd, the system's otherwise. The agent finds it as ``[runsc] binary = "runsc"``
(on its ``PATH``).

With ``NC_MATRIX_DIR`` set (by ``scripts/test``), the run leaves a record of what it
ran there (``scripts/matrix.py``). `tests/conftest.py` calls `select` at configure time
and `record_run` at the end of the session.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping, MutableMapping
from pathlib import Path

import pytest

from scripts.containerd_versions import (
    RUNSC,
    FetchError,
    bin_dir,
    cached_version,
    put_first_on_path,
    runsc_version,
)
from scripts.matrix import SYSTEM, Record, runsc_of, system_version, write_record

__all__ = [
    "describe",
    "describe_runsc",
    "record_run",
    "runsc_release",
    "select",
    "selected",
    "selected_runsc",
]

_selected: list[str] = []
_runsc: list[str] = []


def select(env: MutableMapping[str, str]) -> str:
    """Puts the containerd ``NC_CONTAINERD`` names first on ``env["PATH"]``; returns its name.

    Raises:
        pytest.UsageError: an unknown or uncached suite.
    """
    name = env.get("NC_CONTAINERD", "").strip() or SYSTEM
    if name != SYSTEM:
        try:
            put_first_on_path(name, env)
        except FetchError as e:
            raise pytest.UsageError(f"NC_CONTAINERD={name!r}: {e}") from e
    runsc = env.get("NC_RUNSC", "").strip() or runsc_of(name)
    if runsc != SYSTEM:
        try:
            put_first_on_path(runsc, env, RUNSC)
        except FetchError as e:
            raise pytest.UsageError(f"NC_RUNSC={runsc!r} (containerd {name}): {e}") from e
    _selected[:] = [name]
    _runsc[:] = [runsc]
    return name


def selected() -> str:
    """The name `select` chose: ``system`` or a suite."""
    return _selected[0] if _selected else SYSTEM


def selected_runsc() -> str:
    """The runsc `select` chose: ``system`` or a suite."""
    return _runsc[0] if _runsc else SYSTEM


def runsc_release() -> str:
    """The release of the runsc this run uses (``"20240729"``); "none" when there is none."""
    name = selected_runsc()
    if name != SYSTEM:
        return cached_version(name, RUNSC) or "none"
    binary = shutil.which("runsc")
    try:
        return runsc_version(binary) if binary else "none"
    except FetchError:
        return "none"


def describe_runsc() -> str:
    """``trixie 20240729 (<bin dir>)``: for pytest's header and the matrix's record."""
    name = selected_runsc()
    where = "PATH" if name == SYSTEM else str(bin_dir(name, RUNSC))
    return f"{name} {runsc_release()} ({where})"


def _version() -> str:
    name = selected()
    return (system_version() if name == SYSTEM else cached_version(name)) or "none"


def describe() -> str:
    """``sid 2.1.9 (<bin dir>)``: for pytest's header."""
    name = selected()
    where = "PATH" if name == SYSTEM else str(bin_dir(name))
    return f"{name} {_version()} ({where})"


def record_run(
    env: Mapping[str, str], exitstatus: int, collected: int, counts: Mapping[str, int]
) -> None:
    """Leaves the record of this run in ``NC_MATRIX_DIR``, if set."""
    directory = env.get("NC_MATRIX_DIR")
    if not directory:
        return
    record = Record(
        name=selected(),
        version=_version(),
        runsc=f"{selected_runsc()} {runsc_release()}",
        ran=True,
        exitstatus=exitstatus,
        collected=collected,
        passed=counts.get("passed", 0),
        failed=counts.get("failed", 0),
        error=counts.get("error", 0),
        skipped=counts.get("skipped", 0),
    )
    write_record(Path(directory), record)
