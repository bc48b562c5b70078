"""Images made by the real tools: umoci, skopeo, `ctr images export`, Debian's busybox.

What the tests import must also work when made by the tools the world uses:
`umoci_layout` (an OCI layout from a few files, via `umoci init/new/unpack/repack/config`),
`skopeo_archive` (`skopeo copy` to `oci-archive:` or `docker-archive:`, with extra
tags), `ctr_export` (from a test containerd) and `busybox_image` (a runnable image of
Debian's static busybox, packed by skopeo: what the pod tests run). Everything is
written into a directory the caller owns.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

__all__ = ["BUSYBOX", "busybox_image", "ctr_export", "run_tool", "skopeo_archive", "umoci_layout"]

#: Debian's static busybox (busybox-static).
BUSYBOX = Path("/bin/busybox")
#: The applets `busybox_image` links to busybox in `/bin`.
_APPLETS = ("sh", "echo", "sleep", "dmesg", "cat", "true")


def run_tool(*cmd: str | os.PathLike[str], cwd: str | os.PathLike[str] | None = None) -> str:
    """Runs a tool and returns its stdout; fails loudly with its stderr."""
    r = subprocess.run(
        [os.fspath(c) for c in cmd],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, cmd))} failed: {r.stderr}")
    return r.stdout


def umoci_layout(
    work: Path, files: Mapping[str, bytes], *, tag: str = "latest", layers: int = 1
) -> Path:
    """An OCI layout made by umoci: `layers` layers, the files spread over them."""
    layout = work / "layout"
    bundle = work / "bundle"
    run_tool("umoci", "init", "--layout", layout)
    run_tool("umoci", "new", "--image", f"{layout}:{tag}")
    items = sorted(files.items())
    for i in range(layers):
        run_tool("umoci", "unpack", "--image", f"{layout}:{tag}", bundle)
        for name, data in items[i::layers]:
            target = bundle / "rootfs" / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        run_tool("umoci", "repack", "--image", f"{layout}:{tag}", bundle)
        shutil.rmtree(bundle)
    run_tool(
        "umoci",
        "config",
        "--image",
        f"{layout}:{tag}",
        "--config.cmd",
        "/bin/true",
        "--os",
        "linux",
        "--architecture",
        "amd64",
    )
    return layout


def skopeo_archive(
    layout: Path,
    out: Path,
    kind: str,
    ref: str,
    *,
    tag: str = "latest",
    extra_tags: Sequence[str] = (),
) -> Path:
    """`skopeo copy oci:LAYOUT:tag <kind>:OUT:ref` (kind: oci-archive or docker-archive)."""
    extra = [a for t in extra_tags for a in ("--additional-tag", t)]
    run_tool("skopeo", "copy", "-q", *extra, f"oci:{layout}:{tag}", f"{kind}:{out}:{ref}")
    return out


def ctr_export(
    daemon: object, namespace: str, out: Path, *names: str, all_platforms: bool = False
) -> Path:
    """`ctr images export` from a test containerd (a `ContainerdDaemon`)."""
    flags = ["--all-platforms"] if all_platforms else []
    # Go's client-side Export, as ctr 1.x does (2.x's Transfer API export is not used).
    flags += daemon.local  # type: ignore[attr-defined]
    daemon.ctr("images", "export", *flags, str(out), *names, namespace=namespace)  # type: ignore[attr-defined]
    return out


def busybox_image(
    work: Path,
    ref: str,
    *,
    entrypoint: Sequence[str] = (),
    cmd: Sequence[str] = ("/bin/sh",),
    files: Mapping[str, bytes] | None = None,
) -> Path:
    """``<work>/<name>.tar``: an oci-archive of a busybox image named `ref`.

    An OCI layout made with umoci (``/bin/busybox`` and a few applet links), its config
    set with ``umoci config``, packed into an ``oci-archive`` by skopeo. `files` (path in
    the image → content) are added to its one layer, e.g. to give each image of a
    benchmark a layer of its own.
    """
    name = ref.rsplit("/", 1)[-1].replace(":", "-")
    layout, bundle = work / f"{name}-layout", work / f"{name}-bundle"
    run_tool("umoci", "init", "--layout", layout)
    run_tool("umoci", "new", "--image", f"{layout}:latest")
    run_tool("umoci", "unpack", "--image", f"{layout}:latest", bundle)
    bin_dir = bundle / "rootfs" / "bin"
    bin_dir.mkdir(parents=True, exist_ok=True)
    shutil.copy2(BUSYBOX, bin_dir / "busybox")
    for applet in _APPLETS:
        (bin_dir / applet).symlink_to("busybox")
    for name_in_image, data in (files or {}).items():
        target = bundle / "rootfs" / name_in_image.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    run_tool("umoci", "repack", "--image", f"{layout}:latest", bundle)
    config = ["--os", "linux", "--architecture", "amd64"]
    if entrypoint:
        config += [f"--config.entrypoint={part}" for part in entrypoint]
    config += [f"--config.cmd={part}" for part in cmd]
    run_tool("umoci", "config", "--image", f"{layout}:latest", *config)
    out = work / f"{name}.tar"
    run_tool("skopeo", "copy", "-q", f"oci:{layout}:latest", f"oci-archive:{out}:{ref}")
    shutil.rmtree(bundle, ignore_errors=True)
    shutil.rmtree(layout, ignore_errors=True)
    return out
