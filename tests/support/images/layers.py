"""Random layers: incompressible, deterministic content, for size and throughput tests.

The content is what makes these test-only: a seed gives the same bytes, no
compressor shrinks them. The layer itself is the product's (`actors.images`:
`layer_from_tar`, headers from `tars`), so its tar is written the one way the
project writes tars.
"""

from __future__ import annotations

import random
import tarfile
from collections.abc import Iterator
from pathlib import Path

from actors.images.blobs import CHUNK
from actors.images.layer import Compression, Layer, layer_from_tar
from actors.images.tars import tar_header

__all__ = ["iter_random_bytes", "random_bytes", "random_layer"]


def iter_random_bytes(n: int, seed: int) -> Iterator[bytes]:
    """`n` bytes of incompressible data, deterministic for `seed`, in chunks of up to 1 MiB.

    Runs at about 1 GB/s: each chunk is a window of a seeded 4 MiB pool passed through its
    own random byte permutation, so no compressor (gzip, zstd with long-distance matching)
    finds repeats, yet only the pool costs a real random generator call.
    """
    rng = random.Random(seed)
    pool = rng.randbytes(4 * CHUNK)
    left = n
    while left > 0:
        size = min(left, CHUNK)
        start = rng.randrange(len(pool) - size + 1)
        table = bytes(rng.sample(range(256), 256))
        yield pool[start : start + size].translate(table)
        left -= size


def random_bytes(n: int, seed: int) -> bytes:
    """`n` incompressible bytes, deterministic for `seed` (see `iter_random_bytes`)."""
    return b"".join(iter_random_bytes(n, seed))


def _random_tar(size: int, seed: int) -> Iterator[bytes]:
    yield tar_header("data", kind="dir", mode=0o755)
    yield tar_header(f"data/random-{seed}.bin", size=size)
    yield from iter_random_bytes(size, seed)
    yield bytes(-size % tarfile.BLOCKSIZE + 2 * tarfile.BLOCKSIZE)


def random_layer(
    size: int,
    *,
    seed: int,
    compression: Compression = "none",
    spool_dir: Path | None = None,
    level: int = 1,
) -> Layer:
    """A layer holding one file (`data/random-<seed>.bin`) of `size` incompressible bytes.

    Args:
        size: bytes of file content (the tar adds about 2 KiB of headers and padding).
        seed: makes the content; the same seed gives the same blob.
        compression: "none" or "gzip" (gzip barely shrinks random data but costs CPU).
        spool_dir: write the blob to a file there (`<digest hex>`), not to memory.
        level: the gzip level (1: random data does not shrink, so spend no CPU on trying).
    """
    return layer_from_tar(
        _random_tar(size, seed), compression=compression, level=level, spool_dir=spool_dir
    )
