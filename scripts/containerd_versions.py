"""Debian's containerd and runsc of several suites, fetched and unpacked into a cache.

The test matrix and ``bench/preseed`` run the same tests against the containerd of
each Debian suite: ``bookworm`` (1.6), ``trixie`` (1.7) and ``sid`` (2.x); the matrix's
``sid`` run and ``bench/pods`` use trixie's runsc (20240729) beside Debian 12's
(20221219). This module fetches suite ``S``'s package ``P`` (`CONTAINERD` or `RUNSC`)
with ``apt-get download`` under an apt state of its own (sources list, lists, cache and
an empty dpkg status, all under ``.cache/P/S/apt``), unpacks it with ``dpkg -x`` into
``.cache/P/S/root`` and records its version in ``.cache/P/S/version``.

Rules:

- The system's apt configuration, lists and installed packages are never touched:
  every apt directory is overridden, and ``dpkg -x`` writes no dpkg database.
- No mirror is named here: the mirror URI and keyring are read from the machine's own
  apt sources (deb822 ``/etc/apt/sources.list.d/*.sources`` or one-line
  ``sources.list``), and only the suite is substituted.
- Idempotent, and offline once cached: a suite whose ``version`` file exists is not
  fetched again.

Used as a command (``scripts/containerd-versions [--package runsc] SUITE...``) and as a
module (`cached`, `fetch`, `bin_dir`, `binary_version`; each takes ``package=``,
containerd by default) by the tests and benchmarks.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, MutableMapping
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "BINARIES",
    "CACHE",
    "CONTAINERD",
    "PACKAGES",
    "RUNSC",
    "SUITES",
    "FetchError",
    "Package",
    "Source",
    "apt_get",
    "bin_dir",
    "binary_version",
    "cached",
    "cached_version",
    "fetch",
    "machine_source",
    "private_apt_state",
    "put_first_on_path",
    "runsc_version",
]

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / ".cache" / "containerd"
"""Where each suite's containerd is unpacked: ``CACHE/<suite>/root``."""

SUITES = ("bookworm", "trixie", "sid")
"""The suites the matrix knows, oldest containerd first."""

BINARIES = ("containerd", "ctr", "containerd-shim-runc-v2")
"""The binaries a suite's containerd package must hold for the matrix to use it."""

APT_SOURCES = Path("/etc/apt/sources.list.d")
APT_SOURCES_LIST = Path("/etc/apt/sources.list")


class FetchError(Exception):
    """A suite could not be fetched or unpacked; the message says why."""


@dataclass(frozen=True, slots=True)
class Package:
    """A Debian package the cache holds per suite.

    Attributes:
        name: the Debian package, also the cache's folder (``.cache/<name>``).
        binaries: what its ``usr/bin`` must hold for the cache to count; the first is
            the one asked for its version.
        version_of: the version a binary of it reports (`binary_version`, `runsc_version`).
    """

    name: str
    binaries: tuple[str, ...]
    version_of: Callable[[str | Path], str]

    @property
    def cache(self) -> Path:
        """Where each suite's package is unpacked: ``<cache>/<suite>/root``."""
        return ROOT / ".cache" / self.name


@dataclass(frozen=True, slots=True)
class Source:
    """The machine's Debian mirror, as its apt sources name it.

    Attributes:
        uri: the archive's URI (the one whose suites carry ``main``).
        keyring: the ``Signed-By`` keyring, or "" when the source names none.
    """

    uri: str
    keyring: str


def _deb822_sources(text: str) -> list[dict[str, str]]:
    stanzas: list[dict[str, str]] = []
    current: dict[str, str] = {}
    for line in text.splitlines() + [""]:
        if line.startswith("#"):
            continue
        if not line.strip():
            if current:
                stanzas.append(current)
            current = {}
            continue
        key, _, value = line.partition(":")
        current[key.strip().lower()] = value.strip()
    return stanzas


def _one_line_sources(text: str) -> list[dict[str, str]]:
    stanzas = []
    for line in text.splitlines():
        m = re.match(r"\s*deb\s+(?:\[([^]]*)\]\s+)?(\S+)\s+(\S+)\s+(.*)", line)
        if m is None:
            continue
        options = dict(o.split("=", 1) for o in (m.group(1) or "").split() if "=" in o)
        stanza = {"types": "deb", "uris": m.group(2), "suites": m.group(3)}
        stanza["components"] = m.group(4)
        if "signed-by" in options:
            stanza["signed-by"] = options["signed-by"]
        stanzas.append(stanza)
    return stanzas


def machine_source(
    sources_dir: Path = APT_SOURCES, sources_list: Path = APT_SOURCES_LIST
) -> Source:
    """The Debian archive the machine's own apt sources use for its release.

    The first ``deb`` source with ``main`` and a plain suite (not ``-security`` or
    ``-updates``) wins.

    Raises:
        FetchError: no such source.
    """
    stanzas: list[dict[str, str]] = []
    for path in sorted(sources_dir.glob("*.sources")) if sources_dir.is_dir() else []:
        stanzas += _deb822_sources(path.read_text(errors="replace"))
    for path in [sources_list, *sorted(sources_dir.glob("*.list"))]:
        if path.is_file():
            stanzas += _one_line_sources(path.read_text(errors="replace"))
    for s in stanzas:
        plain = [x for x in s.get("suites", "").split() if "-" not in x and "/" not in x]
        if "deb" in s.get("types", "").split() and "main" in s.get("components", "").split():
            if plain and s.get("uris"):
                return Source(uri=s["uris"].split()[0], keyring=s.get("signed-by", ""))
    raise FetchError(
        f"no Debian source with component 'main' in {str(sources_dir)!r} or "
        f"{str(sources_list)!r}: cannot derive the mirror to fetch containerd from"
    )


def bin_dir(suite: str, package: Package | None = None) -> Path:
    """The directory holding the binaries of `package` (containerd's) of a cached suite."""
    return (package or CONTAINERD).cache / suite / "root" / "usr" / "bin"


def cached_version(suite: str, package: Package | None = None) -> str | None:
    """The version of a cached suite's package (``"1.7.24"``), None when not cached."""
    package = package or CONTAINERD
    stamp = package.cache / suite / "version"
    if not stamp.is_file():
        return None
    if not all((bin_dir(suite, package) / b).is_file() for b in package.binaries):
        return None
    return stamp.read_text().strip() or None


def cached(package: Package | None = None) -> list[str]:
    """The suites whose `package` (containerd's) is in the cache, in `SUITES` order."""
    return [s for s in SUITES if cached_version(s, package) is not None]


def _fetch_hint(suite: str, package: Package) -> str:
    option = "" if package == CONTAINERD else f"--package {package.name} "
    return f"scripts/containerd-versions {option}{suite}"


def put_first_on_path(
    suite: str, env: MutableMapping[str, str], package: Package | None = None
) -> Path:
    """Puts cached `suite`'s bin directory of `package` first on ``env["PATH"]``; returns it.

    Everything started with `env` then finds that release's containerd, ctr and shims
    (or its runsc).

    Raises:
        FetchError: `suite` is unknown or not cached.
    """
    package = package or CONTAINERD
    if suite not in SUITES:
        raise FetchError(f"unknown suite {suite!r}: expected one of {', '.join(SUITES)}")
    if cached_version(suite, package) is None:
        what = "" if package == CONTAINERD else f"{package.name} of "
        raise FetchError(f"{what}{suite!r} is not cached: run {_fetch_hint(suite, package)}")
    own = bin_dir(suite, package)
    rest = [d for d in env.get("PATH", os.defpath).split(":") if d != str(own)]
    env["PATH"] = ":".join([str(own), *rest])
    return own


def _reported(binary: str | Path, pattern: str, what: str) -> str:
    """The first group of `pattern` in what ``BINARY --version`` prints.

    Raises:
        FetchError: the binary does not run, fails, or prints no `what`.
    """
    try:
        r = subprocess.run(
            [str(binary), "--version"], capture_output=True, text=True, timeout=30, check=False
        )
    except OSError as e:
        raise FetchError(f"cannot run {str(binary)!r}: {e.strerror or e}") from e
    m = re.search(pattern, r.stdout)
    if r.returncode != 0 or m is None:
        raise FetchError(
            f"{str(binary)!r} --version printed no {what} "
            f"(exit {r.returncode}): {(r.stdout + r.stderr).strip()!r}"
        )
    return m.group(1)


def binary_version(binary: str | Path) -> str:
    """The version a containerd binary reports: ``containerd --version`` → ``"2.1.9"``.

    Raises:
        FetchError: the binary does not run or prints no version.
    """
    return _reported(binary, r"\sv?(\d+\.\d+\.\d+)", "version")


def runsc_version(binary: str | Path) -> str:
    """The gVisor release a runsc binary reports: ``runsc --version`` → ``"20240729"``.

    Debian versions runsc ``0.0~<release date>.<n>``; the date is gVisor's release name.

    Raises:
        FetchError: the binary does not run or prints no release.
    """
    return _reported(binary, r"version\s+\S*?(\d{8})", "release")


CONTAINERD = Package("containerd", BINARIES, binary_version)
"""Debian's containerd: the daemon, its CLI and the runc shim."""

RUNSC = Package("runsc", ("runsc",), runsc_version)
"""Debian's gVisor: ``runsc`` (the runtime the launcher runs)."""

PACKAGES = {p.name: p for p in (CONTAINERD, RUNSC)}
"""The packages the cache knows, by name."""


def apt_get(
    apt: Path,
    *args: str,
    cwd: Path | None = None,
    status: Path | None = None,
    tool: str = "apt-get",
) -> str:
    """Runs ``apt-get ARGS`` (or `tool`: ``apt-cache``) on the private apt state under
    `apt`; returns its stdout.

    Every directory apt reads or writes is overridden: the sources list is
    ``apt/sources.list``, the lists, cache and preferences are under `apt`, and the dpkg
    status is `status` (default ``apt/status``, made empty by the caller), so the
    machine's apt configuration and installed packages are never read nor touched.

    Raises:
        FetchError: apt-get could not run or exited non-zero; with its last lines.
    """
    command = [
        tool,
        "-q",
        "-o",
        f"Dir::Etc::sourcelist={apt / 'sources.list'}",
        "-o",
        f"Dir::Etc::sourceparts={apt / 'empty'}",
        "-o",
        f"Dir::State::Lists={apt / 'lists'}",
        "-o",
        f"Dir::Cache={apt / 'cache'}",
        "-o",
        f"Dir::State::status={status or apt / 'status'}",
        "-o",
        f"Dir::Etc::preferencesparts={apt / 'empty'}",
        "-o",
        f"Dir::Etc::preferences={apt / 'preferences'}",
        "-o",
        "APT::Sandbox::User=root",
        "-o",
        "Acquire::Retries=2",
        *args,
    ]
    try:
        r = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=cwd)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise FetchError(f"{tool} {' '.join(args)} failed: {e}") from e
    if r.returncode != 0:
        detail = " ".join((r.stderr.strip() or r.stdout.strip()).splitlines()[-3:])
        raise FetchError(f"{tool} {' '.join(args)} failed (exit {r.returncode}): {detail}")
    return r.stdout


def private_apt_state(apt: Path, source: Source, suite: str) -> None:
    """Makes the apt state `apt_get` runs on under `apt` for `suite` of `source`, and
    fetches its lists (``apt-get update``).

    Raises:
        FetchError: the mirror could not be reached or its lists not verified.
    """
    for d in (apt / "lists" / "partial", apt / "cache" / "archives" / "partial", apt / "empty"):
        d.mkdir(parents=True, exist_ok=True)
    (apt / "status").touch()
    signed = f" [signed-by={source.keyring}]" if source.keyring else ""
    (apt / "sources.list").write_text(f"deb{signed} {source.uri} {suite} main\n")
    # Without --error-on=any, a mirror that cannot be reached is only a warning.
    apt_get(apt, "update", "--error-on=any")


def fetch(suite: str, source: Source | None = None, package: Package | None = None) -> Path:
    """Fetch and unpack `suite`'s `package` (containerd) unless cached; return its bin directory.

    Raises:
        FetchError: unknown suite, no network, or a package without its binaries.
    """
    package = package or CONTAINERD
    if suite not in SUITES:
        raise FetchError(f"unknown suite {suite!r}: expected one of {', '.join(SUITES)}")
    if cached_version(suite, package) is not None:
        return bin_dir(suite, package)
    src = source or machine_source()
    base = package.cache / suite
    apt = base / "apt"
    private_apt_state(apt, src, suite)
    name = package.name
    with tempfile.TemporaryDirectory(dir=base) as tmp:
        apt_get(apt, "download", name, cwd=Path(tmp))
        debs = sorted(Path(tmp).glob(f"{name}_*.deb"))
        if not debs:
            raise FetchError(f"apt-get download {name} of {suite!r} left no .deb")
        shutil.rmtree(base / "root", ignore_errors=True)
        r = subprocess.run(
            ["dpkg", "-x", str(debs[0]), str(base / "root")], capture_output=True, text=True
        )
        if r.returncode != 0:
            raise FetchError(f"dpkg -x {debs[0].name} failed: {r.stderr.strip()}")
    found = bin_dir(suite, package)
    missing = [b for b in package.binaries if not (found / b).is_file()]
    if missing:
        raise FetchError(f"{suite!r}'s {name} package has no {', '.join(missing)}")
    version = package.version_of(found / package.binaries[0])
    # The version file marks the suite as complete: written last.
    (base / "version").write_text(version + "\n")
    # Only the unpacked tree is needed from now on; the lists are re-fetched if ever needed.
    shutil.rmtree(apt, ignore_errors=True)
    return found


def main(argv: list[str] | None = None) -> int:
    """``containerd-versions [--package P] [--cached] [--bin-dir] SUITE...``; see ``--help``."""
    p = argparse.ArgumentParser(
        prog="containerd-versions",
        description="Fetch Debian's containerd (or --package runsc) of each SUITE into "
        ".cache/PACKAGE/SUITE (a private apt state; the system's apt and packages are not "
        "touched) and print where its binaries are. Offline once cached.",
    )
    p.add_argument("suites", nargs="*", metavar="SUITE", help=f"one of {', '.join(SUITES)}")
    p.add_argument(
        "--package", choices=sorted(PACKAGES), default=CONTAINERD.name, help="containerd"
    )
    p.add_argument("--cached", action="store_true", help="only list what is cached; no fetch")
    p.add_argument("--bin-dir", action="store_true", help="print only the bin directories")
    args = p.parse_args(argv)
    package = PACKAGES[args.package]
    suites = args.suites or (cached(package) if args.cached else list(SUITES))
    failed = 0
    for suite in suites:
        try:
            if args.cached and cached_version(suite, package) is None:
                raise FetchError(f"{suite!r} is not cached")
            where = bin_dir(suite, package) if args.cached else fetch(suite, package=package)
            version = package.version_of(where / package.binaries[0])
        except FetchError as e:
            print(f"containerd-versions: {package.name}: {suite}: {e}", file=sys.stderr)
            failed += 1
            continue
        if args.bin_dir:
            print(where)
        else:
            print(f"{suite}\t{version}\t{where}\t({', '.join(package.binaries)})")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
