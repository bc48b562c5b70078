"""Pod images made with the real tools: umoci and Debian's static busybox.

`busybox_image` builds an OCI layout with umoci (``/bin/busybox`` and a few
applet links), sets its config with ``umoci config``, and packs it into an
``oci-archive`` with skopeo, named `ref`: a tarball the agent preseeds.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

__all__ = ["BUSYBOX", "PAUSE_ENTRYPOINT", "busybox_image"]

#: Debian's static busybox (busybox-static).
BUSYBOX = Path("/bin/busybox")
#: A pause that exits 0 on SIGTERM (busybox's sleep as PID 1 would ignore it).
PAUSE_ENTRYPOINT = ("/bin/sh", "-c", "trap 'exit 0' TERM INT; sleep 2147483647 & wait")
_APPLETS = ("sh", "echo", "sleep", "dmesg", "cat", "true")


def _run(*cmd: object) -> None:
    r = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=120)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, cmd))} failed: {r.stderr}")


def busybox_image(
    work: Path,
    ref: str,
    *,
    entrypoint: Sequence[str] = (),
    cmd: Sequence[str] = ("/bin/sh",),
    files: Mapping[str, bytes] | None = None,
) -> Path:
    """``<work>/<name>.tar``: an oci-archive of a busybox image named `ref`.

    `files` (path in the image → content) are added to its one layer, e.g. to give
    each image of a benchmark a layer of its own.
    """
    name = ref.rsplit("/", 1)[-1].replace(":", "-")
    layout, bundle = work / f"{name}-layout", work / f"{name}-bundle"
    _run("umoci", "init", "--layout", layout)
    _run("umoci", "new", "--image", f"{layout}:latest")
    _run("umoci", "unpack", "--image", f"{layout}:latest", bundle)
    bin_dir = bundle / "rootfs" / "bin"
    bin_dir.mkdir(parents=True, exist_ok=True)
    shutil.copy2(BUSYBOX, bin_dir / "busybox")
    for applet in _APPLETS:
        (bin_dir / applet).symlink_to("busybox")
    for name_in_image, data in (files or {}).items():
        target = bundle / "rootfs" / name_in_image.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    _run("umoci", "repack", "--image", f"{layout}:latest", bundle)
    config = ["--os", "linux", "--architecture", "amd64"]
    if entrypoint:
        config += [f"--config.entrypoint={part}" for part in entrypoint]
    config += [f"--config.cmd={part}" for part in cmd]
    _run("umoci", "config", "--image", f"{layout}:latest", *config)
    out = work / f"{name}.tar"
    _run("skopeo", "copy", "-q", f"oci:{layout}:latest", f"oci-archive:{out}:{ref}")
    shutil.rmtree(bundle, ignore_errors=True)
    shutil.rmtree(layout, ignore_errors=True)
    return out
