"""The sandbox ("pause") image the node builds itself, from a static pause binary.

Every pod has a sandbox container that holds its namespaces and does nothing
else; CRI runs it from the sandbox image, which must be in containerd before the
first pod, since no registry is reached. Rather than find one somewhere, the node
makes it: one layer holding the binary as `/pause` (mode 0755, owned by 0:0),
whose entrypoint is its pause mode, `/pause -P` (catatonit's: reaps zombies,
exits 0 on SIGINT or SIGTERM), run as user `65535:65535` as Kubernetes' own pause
image is. podman built its infra image the same way from catatonit; Metropolis
compiles its own pause into a one-layer image at build time.

Its name does not follow containerd's version (whose own default does: 1.6
`pause:3.6`, 2.x `pause:3.10`), only the binary's: `PAUSE_REPOSITORY:<version>`,
the version being the first `N.N[.N…]` that `<binary> --version` prints
(catatonit 0.1.7 prints `tini version 0.1.7_catatonit`); a binary that prints
none is tagged by its content, `sha256-<12 hex digits>`.

Deterministic: the same binary gives the same tarball, byte for byte, on every
node and at every start (`actors.images.layout`: fixed times, owners, modes and
member order; the config holds no time and no host name; its platform is read
from the binary's ELF header, so a binary of another architecture makes that
architecture's image). The layer is not compressed, so not even zlib's version
can change a byte.
"""

from __future__ import annotations

import hashlib
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from actors.images.blobs import CHUNK
from actors.images.image import ImageSpec, RuntimeConfig
from actors.images.layer import FileEntry, make_layer
from actors.images.layout import write_oci_archive
from actors.images.platforms import Platform, host_platform

__all__ = [
    "PAUSE_ARGS",
    "PAUSE_PATH",
    "PAUSE_REPOSITORY",
    "PAUSE_USER",
    "PauseImage",
    "binary_platform",
    "pause_image_name",
    "pause_image_spec",
    "pause_tag",
    "write_pause_archive",
]

#: The repository of the built-in sandbox image: ours, under `localhost` (never pulled).
PAUSE_REPOSITORY = "localhost/node-containerd/pause"
#: Where the binary lies in the image.
PAUSE_PATH = "/pause"
#: The binary's arguments: catatonit's pause mode.
PAUSE_ARGS = ("-P",)
#: The user the pause process runs as (Kubernetes' pause image runs as 65535 too).
PAUSE_USER = "65535:65535"
#: Seconds `<binary> --version` may take.
VERSION_TIMEOUT = 5.0

_VERSION = re.compile(rb"\d+(?:\.\d+)+")
#: ELF `e_machine` → Go's architecture name.
_ELF_MACHINES = {3: "386", 40: "arm", 62: "amd64", 183: "arm64", 22: "s390x", 243: "riscv64"}
_EM_PPC64 = 21


@dataclass(frozen=True, slots=True)
class PauseImage:
    """A built sandbox image."""

    #: Its name, `PAUSE_REPOSITORY:<tag>`.
    name: str
    #: The digest of its manifest: the image's target in containerd.
    digest: str


def _content_tag(binary: Path) -> str:
    h = hashlib.sha256()
    with open(binary, "rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
    return "sha256-" + h.hexdigest()[:12]


def pause_tag(binary: Path) -> str:
    """The image's tag: the binary's version (`--version`), else its content's digest.

    Raises:
        OSError: the binary cannot be read.
    """
    try:
        r = subprocess.run(
            [str(binary), "--version"],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=VERSION_TIMEOUT,
            check=False,
        )
        found = _VERSION.search(r.stdout + r.stderr) if r.returncode == 0 else None
    except (OSError, subprocess.TimeoutExpired):
        found = None
    return found.group().decode() if found else _content_tag(binary)


def pause_image_name(binary: Path) -> str:
    """The built-in sandbox image's name for `binary`, e.g. `localhost/node-containerd/pause:0.1.7`.

    Raises:
        OSError: the binary cannot be read.
    """
    return f"{PAUSE_REPOSITORY}:{pause_tag(binary)}"


def binary_platform(binary: Path) -> Platform:
    """The platform an ELF binary runs on (from its header); the host's if it is not ELF.

    Raises:
        OSError: the binary cannot be read.
    """
    with open(binary, "rb") as f:
        head = f.read(20)
    if len(head) < 20 or head[:4] != b"\x7fELF":
        return host_platform()
    little = head[5] == 1
    machine = int.from_bytes(head[18:20], "little" if little else "big")
    if machine == _EM_PPC64:
        return Platform("linux", "ppc64le" if little else "ppc64")
    arch = _ELF_MACHINES.get(machine)
    if arch is None:
        return host_platform()
    return Platform("linux", arch, "v7" if arch == "arm" else "")


def pause_image_spec(binary: Path, name: str) -> ImageSpec:
    """The one-layer image of `binary` as `PAUSE_PATH`, named `name`.

    Raises:
        OSError: the binary cannot be read.
    """
    layer = make_layer([FileEntry(path=PAUSE_PATH, source=binary, mode=0o755)])
    config = RuntimeConfig(entrypoint=(PAUSE_PATH, *PAUSE_ARGS), user=PAUSE_USER, working_dir="/")
    return ImageSpec(name=name, layers=(layer,), platform=binary_platform(binary), config=config)


def write_pause_archive(binary: Path, out: Path | BinaryIO) -> PauseImage:
    """Builds the sandbox image of `binary` and writes it as an OCI tarball to `out`.

    Args:
        binary: the static pause binary (catatonit).
        out: a path (written atomically, mode 0644) or a binary stream.

    Raises:
        OSError: the binary cannot be read, or the tarball cannot be written.
    """
    name = pause_image_name(binary)
    layout = write_oci_archive(out, [pause_image_spec(binary, name)])
    return PauseImage(name=name, digest=layout.images[name])
