"""The image specs tests ask for most: small, many-layered, multi-platform, all seeded.

Each returns the product's own spec (`actors.images.ImageSpec` or `IndexSpec`), so
a test writes it with the product's writer (`write_oci_archive`) and gets the bytes
the agent's own sandbox image is made of. What is test-only is the content: files
made from a seed, random layers, a second platform the host cannot run.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from pathlib import Path

from actors.images.blobs import json_bytes
from actors.images.image import ImageSpec, IndexSpec, RuntimeConfig
from actors.images.layer import Compression, FileEntry, make_layer
from actors.images.platforms import Platform, host_platform
from tests.support.images.layers import random_layer

__all__ = [
    "RUNTIME_CONFIG",
    "as_platform",
    "many_layer_image",
    "multi_platform_image",
    "small_image",
]

#: The runtime config of the kit's images: a shell's PATH and a command that exits 0.
RUNTIME_CONFIG = RuntimeConfig(
    env=("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",),
    cmd=("/bin/true",),
)


def as_platform(text: str) -> Platform:
    """`"linux/arm64/v8"` → `Platform("linux", "arm64", "v8")`, as written (not normalized).

    Raises:
        ValueError: the text is not `os/arch[/variant]`.
    """
    parts = text.split("/")
    if len(parts) not in (2, 3) or not all(parts):
        raise ValueError(f"platform {text!r} is not os/arch[/variant]")
    return Platform(parts[0], parts[1], parts[2] if len(parts) == 3 else "")


def small_image(
    name: str | None,
    *,
    seed: int = 0,
    layers: int = 1,
    compression: Compression = "none",
    platform: Platform | None = None,
    file_size: int = 64,
) -> ImageSpec:
    """A small image of `layers` layers, each a tar of three little files made from `seed`."""
    made = []
    for i in range(layers):
        rng = random.Random(f"{seed}-{i}")
        files = [
            FileEntry(
                path=f"layer{i}/hello.txt", data=f"hello from layer {i} of seed {seed}\n".encode()
            ),
            FileEntry(
                path=f"layer{i}/etc/config.json", data=json_bytes({"layer": i, "seed": seed})
            ),
            FileEntry(path=f"layer{i}/bin/blob.bin", data=rng.randbytes(file_size)),
        ]
        made.append(make_layer(files, compression=compression))
    return ImageSpec(
        name=name, layers=tuple(made), platform=platform or host_platform(), config=RUNTIME_CONFIG
    )


def many_layer_image(
    name: str | None,
    *,
    total_size: int,
    count: int,
    seed: int = 0,
    compression: Compression = "none",
    spool_dir: Path | None = None,
    platform: Platform | None = None,
) -> ImageSpec:
    """An image of `count` random layers whose file contents add up to `total_size` bytes."""
    sizes = [total_size // count + (1 if i < total_size % count else 0) for i in range(count)]
    layers = tuple(
        random_layer(s, seed=seed * 100_003 + i, compression=compression, spool_dir=spool_dir)
        for i, s in enumerate(sizes)
    )
    return ImageSpec(
        name=name, layers=layers, platform=platform or host_platform(), config=RUNTIME_CONFIG
    )


def multi_platform_image(
    name: str | None,
    platforms: Sequence[str] = ("linux/amd64", "linux/arm64/v8"),
    *,
    seed: int = 0,
    include: Sequence[str] | None = None,
) -> IndexSpec:
    """An `IndexSpec` of small images, one per platform in `platforms` (`os/arch[/variant]`).

    Args:
        include: the platforms whose blobs are written (None = all), e.g.
            `[str(host_platform())]` to mimic `ctr images export`.
    """
    images = tuple(
        small_image(None, seed=seed * 1000 + i, platform=as_platform(p))
        for i, p in enumerate(platforms)
    )
    inc = None if include is None else tuple(as_platform(p) for p in include)
    return IndexSpec(name=name, images=images, include=inc)
