"""Which of an offline bundle's .deb files a node needs: the packages of the tools it
lacks, and the dependencies of those that its dpkg status does not satisfy.

Shipped in the bundle beside ``install``, run with the node's ``python3`` (standard
library only, no network):

- ``debs.py packages``: the Debian packages of the node's tools (`TOOLS`), one a line;
  ``scripts/bundle`` fetches these and their dependencies.
- ``debs.py select [--debs DIR] [--status FILE] [--missing TOOL,...]``: the .deb files
  of DIR to give ``apt-get install``, one path a line, nothing when no tool is missing.
  A tool is missing when its command is on no ``PATH`` directory (nor ``/usr/sbin``,
  ``/sbin``), or for the CNI plugins when neither ``/usr/lib/cni/bridge`` nor
  ``/opt/cni/bin/bridge`` exists; ``--missing`` names them instead (``all``: every
  tool). Each file's package name, ``Provides``, ``Depends`` and ``Pre-Depends`` are
  read with ``dpkg-deb -f``; a dependency is taken from DIR unless a package of the
  dpkg status FILE (default ``/var/lib/dpkg/status``) that is installed, or one already
  selected, has or provides one of its alternatives. Versions are left to apt: it
  refuses a file whose dependency's installed version is too old, with its own message.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

__all__ = ["TOOLS", "installed", "missing_tools", "read_deb", "select"]

#: The node's tools, by the name `--missing` uses, and the Debian package of each.
TOOLS: dict[str, str] = {
    "containerd": "containerd",
    "runc": "runc",
    "runsc": "runsc",
    "catatonit": "catatonit",
    "cni-plugins": "containernetworking-plugins",
    "iptables": "iptables",
}
CNI_BRIDGES = (Path("/usr/lib/cni/bridge"), Path("/opt/cni/bin/bridge"))
DPKG_STATUS = Path("/var/lib/dpkg/status")
SYSTEM_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"


def _names(field: str) -> list[list[str]]:
    """A Depends-like field as groups of alternative package names (versions and
    architecture qualifiers dropped)."""
    groups = []
    for group in field.split(","):
        names = [re.sub(r"[\s(\[].*$", "", alt.strip()).split(":")[0] for alt in group.split("|")]
        if any(names):
            groups.append([n for n in names if n])
    return groups


def read_deb(path: Path) -> dict[str, str]:
    """The control fields of a .deb that selection reads, via ``dpkg-deb -f``."""
    fields = ("Package", "Provides", "Depends", "Pre-Depends")
    # dpkg-deb runs tar and a decompressor: the system's directories, whatever PATH says.
    env = dict(os.environ, PATH=":".join([os.environ.get("PATH", ""), SYSTEM_PATH]))
    out = subprocess.run(
        ["dpkg-deb", "-f", str(path), *fields], capture_output=True, text=True, check=True, env=env
    ).stdout
    parsed = dict.fromkeys(fields, "")
    key = ""
    for line in out.splitlines():
        if line[:1].isspace() and key:
            parsed[key] += " " + line.strip()
            continue
        key, _, value = line.partition(":")
        parsed[key] = value.strip()
    return parsed


def installed(status: Path) -> set[str]:
    """The names installed packages of dpkg status `status` have or provide."""
    names: set[str] = set()
    try:
        text = status.read_text(errors="replace")
    except FileNotFoundError:
        return names
    for stanza in text.split("\n\n"):
        fields = dict(re.findall(r"^([\w-]+): (.*)$", stanza, re.M))
        if fields.get("Status", "").endswith(" installed") and "Package" in fields:
            names.add(fields["Package"])
            names.update(n for group in _names(fields.get("Provides", "")) for n in group)
    return names


def missing_tools(path: str | None = None) -> list[str]:
    """The tools of `TOOLS` this machine lacks (see the module)."""
    search = ":".join([path if path is not None else os.environ.get("PATH", ""), "/usr/sbin:/sbin"])
    lacking = []
    for tool in TOOLS:
        if tool == "cni-plugins":
            present = any(os.access(p, os.X_OK) for p in CNI_BRIDGES)
        else:
            present = shutil.which(tool, path=search) is not None
        if not present:
            lacking.append(tool)
    return lacking


def select(debs: Path, tools: list[str], status: Path) -> list[Path]:
    """The files of `debs` to install for `tools` on a machine of dpkg status `status`,
    in the order first needed.

    Raises:
        ValueError: an unknown tool, or a tool whose package has no file in `debs`.
    """
    unknown = [t for t in tools if t not in TOOLS]
    if unknown:
        raise ValueError(f"unknown tool {unknown[0]!r}: expected one of {', '.join(TOOLS)}")
    files = {p: read_deb(p) for p in sorted(debs.glob("*.deb"))}
    having: dict[str, Path] = {}
    for path, fields in files.items():
        for name in [fields["Package"]] + [n for g in _names(fields["Provides"]) for n in g]:
            having.setdefault(name, path)
    present = installed(status)
    chosen: list[Path] = []
    provided: set[str] = set()
    queue: list[tuple[list[str], bool]] = []
    for tool in tools:
        if TOOLS[tool] not in having:
            raise ValueError(f"no .deb of {TOOLS[tool]!r} (tool {tool!r}) in {str(debs)!r}")
        queue.append(([TOOLS[tool]], True))
    while queue:
        group, wanted = queue.pop(0)
        # A missing tool's own package is taken even if dpkg lists it (its files are gone).
        if any(n in provided for n in group) or (not wanted and any(n in present for n in group)):
            continue
        found = next((having[n] for n in group if n in having), None)
        if found is None:
            print(
                f"debs.py: nothing here or installed satisfies {' | '.join(group)}", file=sys.stderr
            )
            continue
        chosen.append(found)
        fields = files[found]
        provided.add(fields["Package"])
        provided.update(n for g in _names(fields["Provides"]) for n in g)
        queue += [(g, False) for g in _names(fields["Pre-Depends"]) + _names(fields["Depends"])]
    return chosen


def main(argv: list[str] | None = None) -> int:
    """``debs.py packages`` / ``debs.py select ...``; see the module."""
    p = argparse.ArgumentParser(prog="debs.py", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("packages", help="the node's tools' Debian packages")
    s = sub.add_parser("select", help="the .deb files the node needs")
    s.add_argument("--debs", type=Path, default=Path(__file__).resolve().parent / "debs")
    s.add_argument("--status", type=Path, default=DPKG_STATUS, help="a dpkg status file")
    s.add_argument("--missing", help="TOOL,... taken as missing ('all': every tool)")
    args = p.parse_args(argv)
    if args.command == "packages":
        print("\n".join(TOOLS.values()))
        return 0
    if args.missing is None:
        tools = missing_tools()
    elif args.missing == "all":
        tools = list(TOOLS)
    else:
        tools = [t for t in args.missing.split(",") if t]
    try:
        chosen = select(args.debs, tools, args.status)
    except (ValueError, subprocess.CalledProcessError) as e:
        print(f"debs.py: {e}", file=sys.stderr)
        return 1
    for path in chosen:
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
