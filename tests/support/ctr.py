"""What a test containerd holds, read with the reference client `ctr`.

Every function takes the `ContainerdDaemon` and a namespace. In `k8s.io`, containerd's
CRI plugin adds, in the background, a `sha256:<config>` image beside each image: the
image listings leave those out, so that they do not depend on when CRI got round to it.
"""

from __future__ import annotations

import re

from actors.preseed.archive.names import is_config_digest_name
from tests.support.containerd_daemon import ContainerdDaemon

__all__ = [
    "blobs",
    "check",
    "check_status",
    "gc",
    "image_names",
    "images",
    "ingests",
    "labelled_blobs",
    "leases",
    "leftovers",
]


def _rows(text: str) -> list[list[str]]:
    return [line.split() for line in text.splitlines()[1:] if line.strip()]


def images(daemon: ContainerdDaemon, namespace: str) -> dict[str, str]:
    """`ctr images ls` as {name: target digest}."""
    out = daemon.ctr("images", "ls", namespace=namespace)
    rows = [line.split() for line in out.splitlines()[1:] if line.strip()]
    return {row[0]: row[2] for row in rows if not is_config_digest_name(row[0])}


def image_names(daemon: ContainerdDaemon, namespace: str) -> list[str]:
    """`ctr images ls -q`: the image names, sorted."""
    out = daemon.ctr("images", "ls", "-q", namespace=namespace)
    return sorted(n for n in out.split() if not is_config_digest_name(n))


def blobs(daemon: ContainerdDaemon, namespace: str) -> set[str]:
    """`ctr content ls -q` as a set of digests."""
    return set(daemon.ctr("content", "ls", "-q", namespace=namespace).split())


def labelled_blobs(daemon: ContainerdDaemon, namespace: str) -> dict[str, str]:
    """`ctr content ls` as {digest: labels} (labels sorted, "-" for none)."""
    out = daemon.ctr("content", "ls", namespace=namespace)
    rows = [line.split("\t") for line in out.splitlines()[1:] if line.strip()]
    return {row[0]: ",".join(sorted(row[-1].split(","))) for row in rows}


def check(daemon: ContainerdDaemon, namespace: str) -> dict[str, str]:
    """`ctr images check` as {name: status}, e.g. {"docker.io/library/hello:1": "complete (3/3)"}."""
    out = daemon.ctr("images", "check", namespace=namespace)
    found = {}
    for line in out.splitlines()[1:]:
        match = re.match(r"(\S+)\s+\S+\s+\S+\s+(\w+ \(\d+/\d+\))", line)
        if match:
            found[match.group(1)] = match.group(2)
    return found


def check_status(daemon: ContainerdDaemon, namespace: str) -> dict[str, str]:
    """`ctr images check`: image name → status word (``complete``, ``incomplete`` …)."""
    out = daemon.ctr("images", "check", namespace=namespace)
    return {row[0]: row[3] for row in _rows(out) if len(row) >= 4}


def gc(daemon: ContainerdDaemon, namespace: str) -> None:
    """Makes containerd collect garbage now: deletes a fresh lease synchronously."""
    lease = daemon.ctr("leases", "create", namespace=namespace).split()[0]
    daemon.ctr("leases", "delete", "--sync", lease, namespace=namespace)


def leases(daemon: ContainerdDaemon, namespace: str) -> list[str]:
    """Lease ids in a namespace."""
    return daemon.ctr("leases", "ls", "-q", namespace=namespace).split()


def ingests(daemon: ContainerdDaemon, namespace: str) -> list[str]:
    """Active ingests (`ctr content active`) in a namespace."""
    out = daemon.ctr("content", "active", namespace=namespace)
    return [line.split()[0] for line in out.splitlines()[1:] if line.strip()]


def leftovers(daemon: ContainerdDaemon, namespace: str) -> dict[str, int]:
    """How many leases and active ingests containerd holds in `namespace`."""
    return {
        "leases": len(_rows(daemon.ctr("leases", "ls", namespace=namespace))),
        "ingests": len(_rows(daemon.ctr("content", "active", namespace=namespace))),
    }
