"""Helpers of the resource-fault tests: a large tarball, containerd's leftovers, a small disk.

`big_archive` writes (once per session) an OCI archive large enough that its import takes
a couple of seconds here, so that a fault can land in the middle of it. `ImportThread`
runs `import_archive` in a thread and says, through its progress callback, when bytes
are flowing. `images`, `leftovers` and `check` read containerd's state with the
reference client `ctr`. `small_disk` mounts a tmpfs of a given size (the tests run as
root) and `fill` fills it to the last byte.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

from containerd_daemon import ContainerdDaemon
from imagegen import many_layer_image, write_oci_archive

from actors.preseed import ContainerdClient, ImportResult, PreseedError, import_archive
from actors.preseed.archive.names import is_config_digest_name

__all__ = [
    "BIG_IMAGE",
    "NAMESPACE",
    "ImportThread",
    "big_archive",
    "check",
    "child_named",
    "fill",
    "images",
    "leftovers",
    "small_disk",
]

NAMESPACE = "faults"
BIG_IMAGE = "faults.local/big:v1"
#: About 2.5 s of import here (containerd takes ~100 MB/s on this machine).
BIG_BYTES = 256 << 20


def big_archive(directory: Path) -> Path:
    """An OCI archive of one 256 MiB image (4 layers) in `directory`."""
    path = directory / "big.tar"
    if not path.exists():
        spool = directory / "spool"
        image = many_layer_image(BIG_IMAGE, total_size=BIG_BYTES, count=4, seed=11, spool_dir=spool)
        staged = directory / "big.tar.part"
        write_oci_archive(staged, [image])
        os.replace(staged, path)
        for layer in image.layers:
            if layer.path is not None:
                layer.path.unlink()
    return path


class ImportThread(threading.Thread):
    """`import_archive` of one file in a thread; `flowing` is set once bytes are sent."""

    def __init__(self, address: str, path: Path, namespace: str = NAMESPACE) -> None:
        super().__init__(name="fault-import", daemon=True)
        self._address = address
        self._path = path
        self._namespace = namespace
        self.flowing = threading.Event()
        self.result: ImportResult | None = None
        self.error: PreseedError | None = None

    def _progress(self, done: int, total: int) -> None:
        if 0 < done < total:
            self.flowing.set()

    def run(self) -> None:
        try:
            with ContainerdClient(self._address) as client:
                self.result = import_archive(
                    client, self._path, namespace=self._namespace, progress=self._progress
                )
        except PreseedError as e:
            self.error = e
        finally:
            self.flowing.set()


def _rows(text: str) -> list[list[str]]:
    return [line.split() for line in text.splitlines()[1:] if line.strip()]


def images(containerd: ContainerdDaemon, namespace: str = NAMESPACE) -> list[str]:
    """Image names in `namespace`, without CRI's `sha256:<config>` twins."""
    out = containerd.ctr("images", "ls", "-q", namespace=namespace)
    return sorted(n for n in out.split() if not is_config_digest_name(n))


def check(containerd: ContainerdDaemon, namespace: str = NAMESPACE) -> dict[str, str]:
    """`ctr images check`: image name → status word (``complete``, ``incomplete`` …)."""
    out = containerd.ctr("images", "check", namespace=namespace)
    return {row[0]: row[3] for row in _rows(out) if len(row) >= 4}


def leftovers(containerd: ContainerdDaemon, namespace: str = NAMESPACE) -> dict[str, int]:
    """How many leases and active ingests containerd holds in `namespace`."""
    return {
        "leases": len(_rows(containerd.ctr("leases", "ls", namespace=namespace))),
        "ingests": len(_rows(containerd.ctr("content", "active", namespace=namespace))),
    }


@contextlib.contextmanager
def small_disk(mountpoint: Path, size: str) -> Iterator[Path]:
    """A tmpfs of `size` (e.g. "32m") at `mountpoint`, unmounted (lazily) at the end."""
    mountpoint.mkdir(parents=True, exist_ok=True)
    r = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(mountpoint)],
        capture_output=True,
        text=True,
        check=False,
    )
    if r.returncode != 0:
        raise PermissionError(f"cannot mount a tmpfs at {mountpoint}: {r.stderr.strip()}")
    try:
        yield mountpoint
    finally:
        subprocess.run(["umount", "-l", str(mountpoint)], check=False)


def fill(directory: Path) -> Path:
    """Fills the file system of `directory` to the last byte; returns the filler file."""
    filler = directory / "filler"
    with open(filler, "wb", buffering=0) as f:
        for block in (1 << 20, 4096, 512, 1):
            chunk = bytes(block)
            with contextlib.suppress(OSError):
                while True:
                    f.write(chunk)
    return filler


def child_named(ppid: int, comm: str) -> int | None:
    """The pid of a child of `ppid` whose command name is `comm`, if there is one."""
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                raw = f.read()
        except OSError:
            continue
        close = raw.rindex(b")")
        if (
            raw[raw.index(b"(") + 1 : close] == comm.encode()
            and int(raw[close + 2 :].split()[1]) == ppid
        ):
            return int(name)
    return None
