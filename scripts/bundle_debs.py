"""The Debian packages an offline bundle carries: the node's tools and what a minimal
Debian lacks of their dependencies, fetched into a cache of the project.

``scripts/bundle`` runs ``python -m scripts.bundle_debs --suite S --into DIR PACKAGE...``
(the packages come from ``contrib/debs.py packages``, the table ``install`` selects from
on the node). For suite ``S`` it:

1. makes the private apt state of `scripts.containerd_versions` under
   ``.cache/debs/S/apt`` (the machine's mirror and keyring, lists, cache and dpkg status
   of its own: the machine's apt state and installed packages are never touched);
2. writes ``.cache/debs/S/minimal-status``: a dpkg status file of a minimal Debian,
   the packages ``debootstrap --variant=minbase`` installs (every package of priority
   ``required`` or ``Essential: yes``, and what they depend on), computed by
   ``apt-get install -s`` of those packages on an empty status;
3. resolves the closure with ``apt-get install -s --no-install-recommends PACKAGE...``
   against that minimal status: apt's own resolver picks exactly the packages a minimal
   Debian lacks (alternatives, virtual packages and versions as apt decides them);
4. fetches those with ``apt-get download NAME=VERSION`` into ``.cache/debs/S/debs`` and
   copies them into DIR.

Why a minimal Debian and not the build machine: the bundle must install on a node that
has only the base system; the build machine's own packages say nothing about the
node's. Recommends are left out (``nftables``, ``criu``): the node needs none of them.

Idempotent, and offline once cached: a suite whose ``packages`` stamp names the same
request and whose ``.deb`` files are all there is not fetched again.
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
import tempfile
from pathlib import Path

from scripts.containerd_versions import FetchError, apt_get, machine_source, private_apt_state

__all__ = ["CACHE", "closure", "fetch_debs", "machine_release", "minimal_status", "suite_dir"]

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / ".cache" / "debs"
"""Where each suite's packages are kept: ``CACHE/<suite>/debs``."""

_INST = re.compile(r"^Inst (\S+) (?:\[\S+\] )?\((\S+)", re.M)


def machine_release(os_release: Path = Path("/etc/os-release")) -> str | None:
    """The Debian release the build machine runs (``bookworm``), None off Debian: the
    suite ``scripts/bundle`` bundles by default."""
    try:
        text = os_release.read_text()
    except OSError:
        return None
    fields = {
        k: v.strip().strip('"') for k, _, v in (ln.partition("=") for ln in text.splitlines())
    }
    return (fields.get("VERSION_CODENAME") or None) if fields.get("ID") == "debian" else None


def suite_dir(suite: str) -> Path:
    """The cache of `suite`: ``apt/``, ``minimal-status``, ``debs/``, ``packages``."""
    return CACHE / suite


def _stanzas(dump: str) -> dict[str, str]:
    """The first stanza of each package in ``apt-cache dumpavail``'s output, by name."""
    found: dict[str, str] = {}
    for stanza in dump.split("\n\n"):
        m = re.search(r"^Package: (\S+)$", stanza, re.M)
        if m is not None:
            found.setdefault(m.group(1), stanza.strip())
    return found


def _simulated(apt: Path, packages: list[str], status: Path | None = None) -> list[tuple[str, str]]:
    """(name, version) of what ``apt-get install -s`` of `packages` would install."""
    out = apt_get(apt, "install", "-s", "-y", "--no-install-recommends", *packages, status=status)
    return _INST.findall(out)


def minimal_status(apt: Path, target: Path) -> list[str]:
    """Writes at `target` the dpkg status of a minimal Debian (see the module); returns
    its package names."""
    available = _stanzas(apt_get(apt, "dumpavail", tool="apt-cache"))
    base = [
        name
        for name, stanza in available.items()
        if re.search(r"^(Priority: required|Essential: yes)$", stanza, re.M)
    ]
    installed = _simulated(apt, sorted(base))
    lines = [
        re.sub(
            r"^(Package: .*)$",
            r"\1\nStatus: install ok installed",
            available[n],
            count=1,
            flags=re.M,
        )
        + "\n\n"
        for n, _ in installed
    ]
    target.write_text("".join(lines))
    return [n for n, _ in installed]


def closure(apt: Path, packages: list[str], status: Path) -> list[tuple[str, str]]:
    """(name, version) of `packages` and what a Debian of dpkg status `status` lacks of
    their dependencies, as apt resolves it.

    Raises:
        FetchError: apt cannot resolve them (a package unknown to the suite, a conflict).
    """
    return _simulated(apt, packages, status=status)


def fetch_debs(suite: str, packages: list[str]) -> list[Path]:
    """`packages` of `suite` and their dependencies a minimal Debian lacks, as cached
    ``.deb`` files (fetched unless cached); sorted by name.

    Raises:
        FetchError: no mirror, no network, or a package apt cannot resolve.
    """
    base = suite_dir(suite)
    debs = base / "debs"
    stamp = base / "packages"
    request = " ".join(sorted(packages)) + "\n"
    if stamp.is_file() and debs.is_dir():
        lines = stamp.read_text().split("\n", 1)
        wanted = [f for f in lines[1].split() if f] if len(lines) == 2 else []
        if lines[0] + "\n" == request and wanted and all((debs / f).is_file() for f in wanted):
            return sorted(debs / f for f in wanted)
    apt = base / "apt"
    private_apt_state(apt, machine_source(), suite)
    minimal_status(apt, base / "minimal-status")
    resolved = closure(apt, sorted(packages), base / "minimal-status")
    if not resolved:
        raise FetchError(f"apt resolved nothing to fetch for {' '.join(packages)} in {suite!r}")
    shutil.rmtree(debs, ignore_errors=True)
    tmp = Path(tempfile.mkdtemp(dir=base))
    try:
        apt_get(apt, "download", *(f"{n}={v}" for n, v in resolved), cwd=tmp)
        files = sorted(tmp.glob("*.deb"))
        if len(files) != len(resolved):
            raise FetchError(
                f"apt-get download left {len(files)} .deb files for {len(resolved)} packages"
            )
        tmp.chmod(0o755)
        tmp.rename(debs)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    # The stamp marks the suite as complete: written last.
    stamp.write_text(request + " ".join(f.name for f in files) + "\n")
    shutil.rmtree(apt, ignore_errors=True)
    return sorted(debs / f.name for f in files)


def main(argv: list[str] | None = None) -> int:
    """``bundle_debs --suite S --into DIR PACKAGE...``; see ``--help``."""
    p = argparse.ArgumentParser(
        prog="bundle_debs",
        description="Fetch PACKAGEs of Debian SUITE and what a minimal Debian lacks of "
        "their dependencies (cached in .cache/debs/SUITE; a private apt state) and copy "
        "the .deb files into DIR.",
    )
    p.add_argument("--suite", required=True, help="the target's Debian release (bookworm)")
    p.add_argument("--into", required=True, type=Path, help="the bundle's debs directory")
    p.add_argument("packages", nargs="+", metavar="PACKAGE")
    args = p.parse_args(argv)
    try:
        files = fetch_debs(args.suite, args.packages)
    except FetchError as e:
        print(f"bundle_debs: {args.suite}: {e}", file=sys.stderr)
        return 1
    args.into.mkdir(parents=True, exist_ok=True)
    for f in files:
        shutil.copy2(f, args.into / f.name)
    print(f"bundle_debs: {len(files)} .deb files of {args.suite}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
