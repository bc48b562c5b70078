"""Image archives for the preseed tests and the benchmark.

Two kinds of builders:

- with the real tools: `umoci_layout` (an OCI layout from a few files, via
  `umoci init/new/unpack/repack/config`), `skopeo_archive` (`skopeo copy` to
  `oci-archive:` or `docker-archive:`, with extra tags), `ctr_export`;
- our own small writer (`BlobStore`, `write_oci_archive`, `write_docker_archive`),
  for what the tools cannot make: multi-platform indexes, unnamed manifests,
  broken archives, and 300 MB random layers for the benchmark.

Everything is written into a directory the caller owns; nothing here talks to
containerd except `ctr_export`.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import shutil
import subprocess
import tarfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import zstandard

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
IMAGE_NAME = "io.containerd.image.name"
REF_NAME = "org.opencontainers.image.ref.name"
_CHUNK = 8 << 20


def run(*cmd: str | os.PathLike[str], cwd: str | os.PathLike[str] | None = None) -> str:
    """Run a tool, fail loudly with its stderr."""
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
    run("umoci", "init", "--layout", layout)
    run("umoci", "new", "--image", f"{layout}:{tag}")
    items = sorted(files.items())
    for i in range(layers):
        run("umoci", "unpack", "--image", f"{layout}:{tag}", bundle)
        for name, data in items[i::layers]:
            target = bundle / "rootfs" / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        run("umoci", "repack", "--image", f"{layout}:{tag}", bundle)
        shutil.rmtree(bundle)
    run(
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
    run("skopeo", "copy", "-q", *extra, f"oci:{layout}:{tag}", f"{kind}:{out}:{ref}")
    return out


def ctr_export(
    daemon: object, namespace: str, out: Path, *names: str, all_platforms: bool = False
) -> Path:
    """`ctr images export` from a test containerd."""
    flags = ["--all-platforms"] if all_platforms else []
    # Go's client-side Export, as ctr 1.x does (2.x's Transfer API export is not used).
    flags += daemon.local  # type: ignore[attr-defined]
    daemon.ctr("images", "export", *flags, str(out), *names, namespace=namespace)  # type: ignore[attr-defined]
    return out


def compress(path: Path, kind: str) -> Path:
    """A gzip or zstd copy of a file, beside it (`.gz` / `.zst`)."""
    out = path.with_name(path.name + (".gz" if kind == "gzip" else ".zst"))
    with open(path, "rb") as src, open(out, "wb") as dst:
        if kind == "gzip":
            with gzip.GzipFile(fileobj=dst, mode="wb", mtime=0, compresslevel=1) as z:
                shutil.copyfileobj(src, z, _CHUNK)
        else:
            zstandard.ZstdCompressor(level=1, write_checksum=True).copy_stream(src, dst)
    return out


def random_file(path: Path, size: int) -> Path:
    """A file of `size` random (incompressible) bytes."""
    with open(path, "wb") as f:
        left = size
        while left:
            n = min(left, _CHUNK)
            f.write(os.urandom(n))
            left -= n
    return path


def layer_tar(path: Path, files: Mapping[str, bytes | Path]) -> Path:
    """An uncompressed layer tar holding the given files (bytes or a file to copy)."""
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
        for name, content in sorted(files.items()):
            info = tarfile.TarInfo(name)
            info.mtime = 0
            if isinstance(content, Path):
                info.size = content.stat().st_size
                with open(content, "rb") as f:
                    tar.addfile(info, f)
            else:
                info.size = len(content)
                tar.addfile(info, io.BytesIO(content))
    return path


@dataclass
class BlobStore:
    """Blobs by digest: small ones in memory, big ones as files in `root`."""

    root: Path
    blobs: dict[str, bytes | Path] = field(default_factory=dict)

    def add(self, content: bytes | Path, media_type: str, **extra: object) -> dict[str, object]:
        """Store a blob; return its descriptor (with `extra` fields, e.g. platform)."""
        if isinstance(content, Path):
            h = hashlib.sha256()
            with open(content, "rb") as f:
                while chunk := f.read(_CHUNK):
                    h.update(chunk)
            size = content.stat().st_size
        else:
            h = hashlib.sha256(content)
            size = len(content)
        digest = "sha256:" + h.hexdigest()
        self.blobs[digest] = content
        return {"mediaType": media_type, "digest": digest, "size": size, **extra}

    def add_json(self, doc: object, media_type: str, **extra: object) -> dict[str, object]:
        return self.add(json.dumps(doc, separators=(",", ":")).encode(), media_type, **extra)

    def image(
        self,
        layers: Sequence[bytes | Path],
        *,
        os_name: str = "linux",
        arch: str = "amd64",
        variant: str = "",
        with_platform: bool = False,
        layer_type: str = OCI_LAYER,
    ) -> dict[str, object]:
        """An OCI manifest over these layers; returns the manifest's descriptor."""
        descs = [self.add(layer, layer_type) for layer in layers]
        config: dict[str, object] = {
            "architecture": arch,
            "os": os_name,
            "rootfs": {"type": "layers", "diff_ids": [d["digest"] for d in descs]},
            "config": {"Cmd": ["/bin/true"]},
        }
        if variant:
            config["variant"] = variant
        cfg = self.add_json(config, OCI_CONFIG)
        extra: dict[str, object] = {}
        if with_platform:
            platform = {"architecture": arch, "os": os_name}
            if variant:
                platform["variant"] = variant
            extra["platform"] = platform
        return self.add_json(
            {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": cfg, "layers": descs},
            OCI_MANIFEST,
            **extra,
        )

    def index(self, manifests: Sequence[dict[str, object]]) -> dict[str, object]:
        """An OCI index over these descriptors; returns its descriptor."""
        return self.add_json(
            {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": list(manifests)}, OCI_INDEX
        )


def named(
    desc: Mapping[str, object], name: str | None, ref: str | None = None
) -> dict[str, object]:
    """A copy of a descriptor with image name annotations (containerd's and/or OCI's)."""
    out = dict(desc)
    annotations = {}
    if name is not None:
        annotations[IMAGE_NAME] = name
    if ref is not None:
        annotations[REF_NAME] = ref
    if annotations:
        out["annotations"] = annotations
    return out


def _add(tar: tarfile.TarFile, name: str, content: bytes | Path) -> None:
    info = tarfile.TarInfo(name)
    info.mtime = 0
    info.mode = 0o644
    if isinstance(content, Path):
        info.size = content.stat().st_size
        with open(content, "rb") as f:
            tar.addfile(info, f)
    else:
        info.size = len(content)
        tar.addfile(info, io.BytesIO(content))


def write_oci_archive(
    out: Path,
    store: BlobStore,
    manifests: Iterable[Mapping[str, object]],
    *,
    omit: Iterable[str] = (),
    extra: Mapping[str, bytes] | None = None,
) -> Path:
    """An OCI layout tarball: `index.json` over `manifests`, every blob of `store`
    except the digests in `omit`, plus `extra` raw members."""
    skip = set(omit)
    index = {"schemaVersion": 2, "manifests": list(manifests)}
    with tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as tar:
        _add(tar, "oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
        _add(tar, "index.json", json.dumps(index, separators=(",", ":")).encode())
        for digest, content in store.blobs.items():
            if digest not in skip:
                _add(tar, "blobs/" + digest.replace(":", "/"), content)
        for name, content in (extra or {}).items():
            _add(tar, name, content)
    return out


def write_docker_archive(
    out: Path, images: Sequence[tuple[Sequence[str], Sequence[bytes | Path], str]]
) -> Path:
    """A `docker save` style tarball: per image (RepoTags, layer tars, arch)."""
    entries = []
    members: dict[str, bytes | Path] = {}
    for tags, layers, arch in images:
        paths = []
        diff_ids = []
        for layer in layers:
            data = layer.read_bytes() if isinstance(layer, Path) else layer
            digest = hashlib.sha256(data).hexdigest()
            diff_ids.append("sha256:" + digest)
            members[f"{digest}/layer.tar"] = layer
            members[f"{digest}/VERSION"] = b"1.0"
            paths.append(f"{digest}/layer.tar")
        config = json.dumps(
            {
                "architecture": arch,
                "os": "linux",
                "rootfs": {"type": "layers", "diff_ids": diff_ids},
            }
        ).encode()
        config_name = hashlib.sha256(config).hexdigest() + ".json"
        members[config_name] = config
        entries.append({"Config": config_name, "RepoTags": list(tags), "Layers": paths})
    with tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as tar:
        for name, content in members.items():
            _add(tar, name, content)
        _add(tar, "manifest.json", json.dumps(entries).encode())
    return out
