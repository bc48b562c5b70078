"""Resource faults: a tarball big enough to fault in the middle of, and a small full disk.

`big_archive` writes (once per session) an OCI archive large enough that its import takes
a couple of seconds here, so that a fault can land in the middle of it. `ImportThread`
runs `import_archive` in a thread and says, through its progress callback, when bytes
are flowing. `small_disk` mounts a tmpfs of a given size (the tests run as root) and
`fill` fills it to the last byte. (What containerd holds afterwards: `tests.support.ctr`.)
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

from actors.preseed import ContainerdClient, ImportResult, PreseedError, import_archive
from tests.support.images import many_layer_image, write_oci_archive

__all__ = [
    "BIG_IMAGE",
    "NAMESPACE",
    "ImportThread",
    "big_archive",
    "fill",
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
            if layer.blob.path is not None:
                layer.blob.path.unlink()
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
