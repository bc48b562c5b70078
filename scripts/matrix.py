"""The test matrix: the whole suite once, and the containerd tests once per other containerd.

``scripts/test`` runs this. The whole suite runs against the system's containerd (the
one on ``PATH``); then, for every Debian suite of `containerd_versions.SUITES` whose
containerd is cached or can be fetched and differs from the system's, the tests marked
``containerd`` run again with ``NC_CONTAINERD=<suite>``
(``tests/support/containerd_matrix.py`` puts that release first on ``PATH``). Pure and
process tests run once. The ``sid`` run also puts trixie's runsc first on ``PATH``
(`RUNSC_WITH`), so the pod tests run under both Debian runsc releases without a run
of their own: Debian 12's (20221219, ptrace) with the system's containerd, trixie's
(20240729, systrap) with containerd 2.1.

Every suite ends with one `Record` in the run's record directory (``NC_MATRIX_DIR``):
written by pytest itself for a run (``tests/conftest.py``), or here with the reason it
was skipped. Nothing is skipped without a record and a line in the summary;
``tests/test_matrix.py`` fails when a cached suite has neither run nor a valid reason.

Environment:
    NC_MATRIX: the suites to try, comma- or space-separated (default: all of them);
        ``none`` runs the whole suite only. The others are listed as not asked for.
    NC_RUNSC (set here for each run): the runsc release of the run, ``system`` or a
        suite whose runsc is cached (``tests/support/containerd_matrix.py``).

Exit status: 0 when every run passed or collected nothing (pytest's 5), else 1.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from scripts.containerd_versions import (
    ROOT,
    RUNSC,
    SUITES,
    FetchError,
    bin_dir,
    binary_version,
    cached_version,
    fetch,
)

__all__ = [
    "RUNSC_WITH",
    "SYSTEM",
    "Record",
    "read_records",
    "runsc_of",
    "system_version",
    "wanted_suites",
    "write_record",
]

SYSTEM = "system"
"""The name of the run on the containerd found on ``PATH``."""

NO_TESTS = 5
"""pytest's exit status when it collected no test: not a failure of the matrix."""

SAME_AS_SYSTEM = "same containerd {version} as the system's: tested by the whole suite"
NOT_ASKED = "not asked for (NC_MATRIX={value!r})"

RUNSC_WITH = {"sid": "trixie"}
"""The runsc each run uses, by its containerd, when not the system's: the newer runsc
(trixie's and sid's are the same 20240729) with the newest containerd, in a run the
matrix makes anyway (CI's budget has no room for another)."""

_NETWORK = re.compile(r"resolv|connect|network|unreachable|timed out|Failed to fetch", re.I)


@dataclass(frozen=True, slots=True, kw_only=True)
class Record:
    """What happened to one containerd of the matrix.

    Attributes:
        name: ``system`` or a Debian suite.
        version: its containerd's version, "" when unknown (not fetched).
        runsc: the runsc release the run used, ``<system|suite> <release>``
            (``"trixie 20240729"``), "" when it did not run.
        ran: True when pytest ran against it.
        reason: why it did not run ("" when it ran).
        exitstatus: pytest's exit status (0 when it did not run).
        collected: tests pytest collected.
        passed: tests passed.
        failed: tests failed.
        error: tests in error.
        skipped: tests skipped.
    """

    name: str
    version: str = ""
    runsc: str = ""
    ran: bool = False
    reason: str = ""
    exitstatus: int = 0
    collected: int = 0
    passed: int = 0
    failed: int = 0
    error: int = 0
    skipped: int = 0

    @property
    def ok(self) -> bool:
        """Whether this entry lets the matrix pass."""
        return self.exitstatus in (0, NO_TESTS)


def write_record(directory: Path, record: Record) -> None:
    """Writes `record` as ``<directory>/<name>.json``."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / f"{record.name}.json").write_text(json.dumps(asdict(record)) + "\n")


def read_records(directory: Path) -> dict[str, Record]:
    """Every record of a run's directory, by name."""
    out = {}
    for path in sorted(directory.glob("*.json")):
        r = Record(**json.loads(path.read_text()))
        out[r.name] = r
    return out


def system_version() -> str | None:
    """The version of the containerd on ``PATH``, None when there is none."""
    binary = shutil.which("containerd")
    if binary is None:
        return None
    try:
        return binary_version(binary)
    except FetchError:
        return None


def runsc_of(run: str) -> str:
    """The runsc release run `run` (``system`` or a suite) uses: `RUNSC_WITH`, else ``system``."""
    return RUNSC_WITH.get(run, SYSTEM)


def wanted_suites(value: str | None) -> list[str]:
    """The suites ``NC_MATRIX`` asks for: all when unset or empty, none for ``none``."""
    if not value or not value.strip():
        return list(SUITES)
    names = [n for n in re.split(r"[,\s]+", value.strip()) if n]
    if names == ["none"]:
        return []
    unknown = [n for n in names if n not in SUITES]
    if unknown:
        raise SystemExit(
            f"NC_MATRIX={value!r}: unknown suite {unknown[0]!r}; "
            f"expected {', '.join(SUITES)} or none"
        )
    return names


RELEASE_TESTS = "containerd and not once"
"""What runs on each other release: the containerd tests, less those marked `once` (the
soak, the install and bundle tests, the default profile's minute-long give-up): they test
the agent, not containerd's release, and run once, in the whole suite."""


def _runsc_for(name: str) -> str:
    """`runsc_of(name)`, fetched; ``system`` (said) when it cannot be fetched."""
    suite = runsc_of(name)
    if suite == SYSTEM:
        return suite
    try:
        fetch(suite, package=RUNSC)
    except FetchError as e:
        print(f"\n=== {name}: the system's runsc instead of {suite}'s: {e}", flush=True)
        return SYSTEM
    return suite


def _pytest(name: str, records: Path, args: list[str]) -> int:
    env = dict(os.environ, NC_CONTAINERD=name, NC_MATRIX_DIR=str(records))
    env["NC_RUNSC"] = _runsc_for(name)
    # Arguments (a folder, -k) may leave a version with nothing to run: say so.
    env["NC_MATRIX_ARGS"] = " ".join(args[2:] if args[:2] == ["-m", RELEASE_TESTS] else args)
    command = [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "--durations=10",
        *args,
    ]
    print(f"\n=== {name}: {' '.join(command[1:])}", flush=True)
    return subprocess.run(command, cwd=ROOT, env=env, check=False).returncode


def _skip(records: Path, name: str, version: str, reason: str) -> None:
    print(f"\n=== {name}: skipped: {reason}", flush=True)
    write_record(records, Record(name=name, version=version, reason=reason))


def _fetch_reason(suite: str, error: FetchError) -> str:
    text = str(error)
    if _NETWORK.search(text):
        return f"cannot fetch it (no network?): {text}"
    return f"cannot fetch it: {text}"


def _run_suites(records: Path, args: list[str]) -> dict[str, int]:
    raw = os.environ.get("NC_MATRIX")
    wanted = wanted_suites(raw)
    system = system_version()
    codes = {}
    for suite in SUITES:
        if suite not in wanted:
            _skip(records, suite, cached_version(suite) or "", NOT_ASKED.format(value=raw))
            continue
        try:
            fetch(suite)
        except FetchError as e:
            _skip(records, suite, "", _fetch_reason(suite, e))
            continue
        version = cached_version(suite) or ""
        if version == system:
            _skip(records, suite, version, SAME_AS_SYSTEM.format(version=version))
            continue
        print(f"\n=== {suite}: containerd {version} from {bin_dir(suite)}", flush=True)
        codes[suite] = _pytest(suite, records, ["-m", RELEASE_TESTS, *args])
    return codes


def _summary(records: Path, codes: dict[str, int], seconds: float) -> bool:
    found = read_records(records)
    print(f"\n=== containerd matrix ({seconds:.0f}s)")
    ok = True
    for name in [SYSTEM, *SUITES]:
        r = found.get(name)
        code = codes.get(name)
        if r is None:
            ok = ok and code in (None, 0, NO_TESTS)
            print(f"  {name:9} no record (pytest exit {code})")
            continue
        if not r.ran:
            print(f"  {name:9} {r.version or '-':8} skipped: {r.reason}")
            continue
        what = "whole suite" if name == SYSTEM else "containerd tests"
        status = code if code is not None else r.exitstatus
        verdict = "passed" if status == 0 else f"FAILED (exit {status})"
        if status == NO_TESTS:
            verdict = "nothing to run (pytest exit 5)"
        ok = ok and status in (0, NO_TESTS)
        counts = f"{r.passed} passed, {r.failed} failed, {r.error} errors, {r.skipped} skipped"
        print(f"  {name:9} {r.version:8} {what:16} {verdict}: {counts}; runsc {r.runsc}")
    return ok


def main(argv: list[str]) -> int:
    """Runs the matrix; `argv` goes to every pytest run. Returns the exit status."""
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="nc-matrix-") as tmp:
        records = Path(tmp)
        codes = _run_suites(records, argv)
        # The whole suite last: tests/test_matrix.py checks the records of the others.
        codes[SYSTEM] = _pytest(SYSTEM, records, argv)
        ok = _summary(records, codes, time.monotonic() - started)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
