"""The project's own OCI image writer, for tests, benchmarks and the soak.

It writes image tarballs per the OCI image-layout spec (`oci-layout`, `index.json`,
`blobs/sha256/<hex>`) and in the `docker save` format (`manifest.json`, `<hex>.json`,
`<id>/layer.tar`), byte-for-byte deterministic given the same specs and seeds: every tar
header has mtime 0, uid/gid 0 and no user names; gzip streams carry no name and mtime 0;
JSON documents are written with sorted keys and no spaces.

Rules:
    * Blobs are either in memory (`Blob.data`) or spooled to a file (`Blob.path`) so that a
      300 MB layer never needs to be held twice; writers stream both kinds.
    * Nothing here talks to containerd: this module only makes files.
    * The low-level pieces (`TarEntry`, `write_tar`, `oci_archive_entries`) are public so
      that the bad-input corpus can take a good archive apart and break one thing in it.

Typical use::

    img = small_image("docker.io/library/hello:1", seed=3, layers=2)
    digests = write_oci_archive(tmp / "hello.tar", [img])  # {name: manifest digest}
    gz = compress(tmp / "hello.tar", "gzip")                  # hello.tar.gz beside it
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import platform as _platform
import random
import shutil
import tarfile
import zlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Literal

import zstandard

__all__ = [
    "ANNOTATION_IMAGE_NAME",
    "ANNOTATION_REF_NAME",
    "DOCKER_CONFIG",
    "DOCKER_MANIFEST",
    "OCI_CONFIG",
    "OCI_INDEX",
    "OCI_LAYER",
    "OCI_LAYER_GZIP",
    "OCI_MANIFEST",
    "Blob",
    "BuiltImage",
    "DockerImageSpec",
    "ImageSpec",
    "MultiPlatformSpec",
    "Platform",
    "TarEntry",
    "build_image",
    "compress",
    "docker_archive_entries",
    "iter_random_bytes",
    "json_bytes",
    "make_layer",
    "many_layer_image",
    "multi_platform_image",
    "oci_archive_entries",
    "random_bytes",
    "random_layer",
    "small_image",
    "write_docker_archive",
    "write_oci_archive",
    "write_tar",
]

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
ANNOTATION_REF_NAME = "org.opencontainers.image.ref.name"
ANNOTATION_IMAGE_NAME = "io.containerd.image.name"

_EPOCH = "1970-01-01T00:00:00Z"
_CHUNK = 1 << 20
_GOARCH = {
    "x86_64": "amd64",
    "amd64": "amd64",
    "aarch64": "arm64",
    "arm64": "arm64",
    "armv7l": "arm",
    "ppc64le": "ppc64le",
    "s390x": "s390x",
    "riscv64": "riscv64",
}

Compression = Literal["none", "gzip"]
Annotate = Literal["both", "containerd", "oci", "none"]


def json_bytes(doc: object) -> bytes:
    """The canonical bytes of a JSON document: sorted keys, no spaces, UTF-8."""
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


def _sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass(frozen=True, slots=True)
class Platform:
    """An OCI platform; `str()` gives `os/arch[/variant]`."""

    os: str = "linux"
    architecture: str = "amd64"
    variant: str | None = None

    @classmethod
    def parse(cls, text: str) -> Platform:
        """`"linux/arm64/v8"` → Platform("linux", "arm64", "v8")."""
        parts = text.split("/")
        if len(parts) not in (2, 3) or not all(parts):
            raise ValueError(f"platform {text!r} is not os/arch[/variant]")
        return cls(parts[0], parts[1], parts[2] if len(parts) == 3 else None)

    @classmethod
    def host(cls) -> Platform:
        """The platform containerd's default matcher picks on this machine."""
        machine = _platform.machine().lower()
        arch = _GOARCH.get(machine, machine)
        return cls("linux", arch, "v8" if arch == "arm64" else None)

    def to_json(self) -> dict[str, str]:
        doc = {"os": self.os, "architecture": self.architecture, "variant": self.variant}
        return {k: v for k, v in doc.items() if v}

    def __str__(self) -> str:
        return "/".join(p for p in (self.os, self.architecture, self.variant) if p)


@dataclass(frozen=True, slots=True)
class Blob:
    """One content-addressed blob, in memory or spooled to a file.

    Attributes:
        media_type: the media type its descriptor carries.
        digest: `sha256:<hex>` of its bytes.
        size: its length in bytes.
        data: the bytes, when held in memory.
        path: the file holding the bytes, when spooled.
        diff_id: for a layer, the digest of its uncompressed tar (the config's diff_id).
    """

    media_type: str
    digest: str
    size: int
    data: bytes | None = None
    path: Path | None = None
    diff_id: str | None = None

    @classmethod
    def of(cls, media_type: str, data: bytes, diff_id: str | None = None) -> Blob:
        """An in-memory blob of `data`."""
        return cls(media_type, _sha256(data), len(data), data=data, diff_id=diff_id)

    def descriptor(self, **extra: object) -> dict[str, object]:
        """Its OCI descriptor, plus any `extra` fields (annotations, platform)."""
        return {"mediaType": self.media_type, "digest": self.digest, "size": self.size, **extra}

    def read(self) -> bytes:
        """All its bytes (reads the spool file if there is one)."""
        with self.open() as f:
            return f.read()

    def open(self) -> BinaryIO:
        """A binary stream of its bytes."""
        if self.data is not None:
            return io.BytesIO(self.data)
        assert self.path is not None
        return open(self.path, "rb")

    @property
    def hex(self) -> str:
        """The hex part of the digest, i.e. its file name under `blobs/sha256/`."""
        return self.digest.split(":", 1)[1]


def iter_random_bytes(n: int, seed: int) -> Iterator[bytes]:
    """`n` bytes of incompressible data, deterministic for `seed`, in chunks of up to 1 MiB.

    Runs at about 1 GB/s: each chunk is a window of a seeded 4 MiB pool passed through its
    own random byte permutation, so no compressor (gzip, zstd with long-distance matching)
    finds repeats, yet only the pool costs a real random generator call.
    """
    rng = random.Random(seed)
    pool = rng.randbytes(4 * _CHUNK)
    left = n
    while left > 0:
        size = min(left, _CHUNK)
        start = rng.randrange(len(pool) - size + 1)
        table = bytes(rng.sample(range(256), 256))
        yield pool[start : start + size].translate(table)
        left -= size


def random_bytes(n: int, seed: int) -> bytes:
    """`n` incompressible bytes, deterministic for `seed` (see `iter_random_bytes`)."""
    return b"".join(iter_random_bytes(n, seed))


class _HashingSink:
    """Writes a layer tar, optionally gzip-compressed, while hashing both forms."""

    def __init__(self, out: BinaryIO, compression: Compression, level: int) -> None:
        self.out = out
        self.diff = hashlib.sha256()
        self.blob = hashlib.sha256()
        self.size = 0
        # wbits 31: a gzip wrapper with mtime 0 and no file name, so output is deterministic.
        self.gz = zlib.compressobj(level, zlib.DEFLATED, 31) if compression == "gzip" else None

    def write(self, data: bytes) -> None:
        self.diff.update(data)
        self._emit(self.gz.compress(data) if self.gz else data)

    def close(self) -> None:
        if self.gz:
            self._emit(self.gz.flush())

    def _emit(self, data: bytes) -> None:
        self.blob.update(data)
        self.size += len(data)
        self.out.write(data)


def _layer_media_type(compression: Compression) -> str:
    return {"none": OCI_LAYER, "gzip": OCI_LAYER_GZIP}[compression]


def _tar_header(name: str, size: int, kind: bytes = tarfile.REGTYPE, mode: int = 0o644) -> bytes:
    info = tarfile.TarInfo(name)
    info.size, info.type, info.mode, info.mtime = size, kind, mode, 0
    return info.tobuf(tarfile.PAX_FORMAT)


def _layer_blob(
    sink: _HashingSink, media_type: str, *, data: bytes | None = None, path: Path | None = None
) -> Blob:
    """The blob a closed sink wrote."""
    return Blob(
        media_type,
        "sha256:" + sink.blob.hexdigest(),
        sink.size,
        data=data,
        path=path,
        diff_id="sha256:" + sink.diff.hexdigest(),
    )


def make_layer(
    files: Mapping[str, bytes], *, compression: Compression = "none", level: int = 6
) -> Blob:
    """A layer blob: a tar of `files` (path → content), parent directories included.

    Args:
        files: relative file paths and their contents, written in sorted order.
        compression: "none" (media type `...layer.v1.tar`) or "gzip" (`...tar+gzip`).
        level: the gzip level.
    """
    media_type = _layer_media_type(compression)
    out = io.BytesIO()
    sink = _HashingSink(out, compression, level)
    dirs: set[str] = set()
    for name in sorted(files):
        parts = name.strip("/").split("/")
        for i in range(1, len(parts)):
            d = "/".join(parts[:i]) + "/"
            if d not in dirs:
                dirs.add(d)
                sink.write(_tar_header(d, 0, tarfile.DIRTYPE, 0o755))
        content = files[name]
        sink.write(_tar_header(name.strip("/"), len(content)))
        sink.write(content + bytes(-len(content) % 512))
    sink.write(bytes(1024))
    sink.close()
    return _layer_blob(sink, media_type, data=out.getvalue())


def random_layer(
    size: int,
    *,
    seed: int,
    compression: Compression = "none",
    spool_dir: Path | None = None,
    level: int = 1,
) -> Blob:
    """A layer holding one file (`data/random-<seed>.bin`) of `size` incompressible bytes.

    Args:
        size: bytes of file content (the tar adds about 2 KiB of headers and padding).
        seed: makes the content; the same seed gives the same blob.
        compression: "none" or "gzip" (gzip barely shrinks random data but costs CPU).
        spool_dir: write the blob to a file there (`<digest hex>`), not to memory.
        level: the gzip level.
    """
    media_type = _layer_media_type(compression)
    tmp = spool_dir / f".spool-{seed}-{size}-{compression}" if spool_dir else None
    if tmp:
        tmp.parent.mkdir(parents=True, exist_ok=True)
    with open(tmp, "wb") if tmp else io.BytesIO() as out:
        sink = _HashingSink(out, compression, level)
        sink.write(_tar_header("data/", 0, tarfile.DIRTYPE, 0o755))
        sink.write(_tar_header(f"data/random-{seed}.bin", size))
        for chunk in iter_random_bytes(size, seed):
            sink.write(chunk)
        sink.write(bytes(-size % 512) + bytes(1024))
        sink.close()
        data = out.getvalue() if isinstance(out, io.BytesIO) else None
    if tmp is None:
        return _layer_blob(sink, media_type, data=data)
    return _layer_blob(sink, media_type, path=tmp.replace(tmp.with_name(sink.blob.hexdigest())))


@dataclass(frozen=True, slots=True)
class ImageSpec:
    """One single-platform image.

    Attributes:
        name: its full reference (e.g. `docker.io/library/pause:3.9`), or None for an
            image the index lists without a name annotation.
        layers: its layer blobs, base first.
        platform: written into the config (and into the descriptor when in an index).
        ref_name: the `org.opencontainers.image.ref.name` value; defaults to `name`.
        annotations: extra annotations on its descriptor in `index.json`.
        docker_media_types: write a Docker schema-2 manifest and config media types.
    """

    name: str | None
    layers: tuple[Blob, ...]
    platform: Platform = field(default_factory=Platform.host)
    ref_name: str | None = None
    annotations: Mapping[str, str] = field(default_factory=dict)
    docker_media_types: bool = False


@dataclass(frozen=True, slots=True)
class MultiPlatformSpec:
    """A multi-platform image: a named index of per-platform manifests.

    Attributes:
        name: its full reference, annotated on the index's descriptor.
        images: one `ImageSpec` per platform (their own names are ignored).
        include: platforms whose manifest, config and layers go into the archive; the
            others are referenced but absent, as in `ctr images export`. None = all.
    """

    name: str | None
    images: tuple[ImageSpec, ...]
    include: tuple[Platform, ...] | None = None


@dataclass(frozen=True, slots=True)
class BuiltImage:
    """The blobs of one single-platform image, ready to write."""

    spec: ImageSpec
    config: Blob
    manifest: Blob

    @property
    def blobs(self) -> tuple[Blob, ...]:
        """Manifest, config, then layers."""
        return (self.manifest, self.config, *self.spec.layers)


def build_image(spec: ImageSpec) -> BuiltImage:
    """Make the config and manifest blobs of `spec`."""
    if any(layer.diff_id is None for layer in spec.layers):
        raise ValueError("every layer blob needs a diff_id")
    config_doc = {
        **spec.platform.to_json(),
        "created": _EPOCH,
        "config": {
            "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
            "Cmd": ["/bin/true"],
        },
        "rootfs": {"type": "layers", "diff_ids": [layer.diff_id for layer in spec.layers]},
        "history": [
            {"created": _EPOCH, "created_by": f"imagegen layer {i}"}
            for i in range(len(spec.layers))
        ],
    }
    docker = spec.docker_media_types
    config = Blob.of(DOCKER_CONFIG if docker else OCI_CONFIG, json_bytes(config_doc))
    media_type = DOCKER_MANIFEST if docker else OCI_MANIFEST
    manifest_doc = {
        "schemaVersion": 2,
        "mediaType": media_type,
        "config": config.descriptor(),
        "layers": [layer.descriptor() for layer in spec.layers],
    }
    return BuiltImage(spec, config, Blob.of(media_type, json_bytes(manifest_doc)))


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
    blobs = []
    for i in range(layers):
        rng = random.Random(f"{seed}-{i}")
        files = {
            f"layer{i}/hello.txt": f"hello from layer {i} of seed {seed}\n".encode(),
            f"layer{i}/etc/config.json": json_bytes({"layer": i, "seed": seed}),
            f"layer{i}/bin/blob.bin": rng.randbytes(file_size),
        }
        blobs.append(make_layer(files, compression=compression))
    return ImageSpec(name, tuple(blobs), platform or Platform.host())


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
    return ImageSpec(name, layers, platform or Platform.host())


def multi_platform_image(
    name: str | None,
    platforms: Sequence[str] = ("linux/amd64", "linux/arm64/v8"),
    *,
    seed: int = 0,
    include: Sequence[str] | None = None,
) -> MultiPlatformSpec:
    """A `MultiPlatformSpec` of small images, one per platform in `platforms`.

    Args:
        include: the platforms whose blobs are written (None = all), e.g.
            `[str(Platform.host())]` to mimic `ctr images export`.
    """
    images = tuple(
        small_image(None, seed=seed * 1000 + i, platform=Platform.parse(p))
        for i, p in enumerate(platforms)
    )
    inc = None if include is None else tuple(Platform.parse(p) for p in include)
    return MultiPlatformSpec(name, images, inc)


@dataclass(frozen=True, slots=True)
class TarEntry:
    """One member of an archive.

    Attributes:
        name: its path inside the archive, written as is (no normalisation).
        data: its content (bytes or a `Blob`) for a regular file.
        type: a `tarfile` type flag (REGTYPE, DIRTYPE, SYMTYPE, LNKTYPE, CHRTYPE, ...).
        linkname: the target of a symlink or hard link.
        mode: permission bits.
    """

    name: str
    data: bytes | Blob | None = None
    type: bytes = tarfile.REGTYPE
    linkname: str = ""
    mode: int = 0o644

    @classmethod
    def directory(cls, name: str) -> TarEntry:
        return cls(name.rstrip("/") + "/", type=tarfile.DIRTYPE, mode=0o755)

    def tarinfo(self) -> tarfile.TarInfo:
        info = tarfile.TarInfo(self.name)
        info.type, info.linkname, info.mode, info.mtime = self.type, self.linkname, self.mode, 0
        info.size = self.data.size if isinstance(self.data, Blob) else len(self.data or b"")
        return info


def write_tar(out: Path | BinaryIO, entries: Iterable[TarEntry]) -> None:
    """Write `entries`, in order, as a (PAX-format) tar archive to a path or stream."""
    path, stream = (out, None) if isinstance(out, Path) else (None, out)
    with tarfile.TarFile(
        name=path, mode="w", fileobj=stream, format=tarfile.PAX_FORMAT, copybufsize=_CHUNK
    ) as tar:
        for entry in entries:
            info = entry.tarinfo()
            if entry.data is None or not info.isreg():
                tar.addfile(info)
            elif isinstance(entry.data, Blob):
                with entry.data.open() as src:
                    tar.addfile(info, src)
            else:
                tar.addfile(info, io.BytesIO(entry.data))


def _oci_descriptor(
    blob: Blob, name: str | None, ref_name: str | None, annotate: Annotate, extra: Mapping[str, str]
) -> dict[str, object]:
    notes = dict(extra)
    if name is not None and annotate in ("both", "containerd"):
        notes[ANNOTATION_IMAGE_NAME] = name
    if (ref_name or name) is not None and annotate in ("both", "oci"):
        notes[ANNOTATION_REF_NAME] = ref_name or name  # type: ignore[assignment]
    return blob.descriptor(annotations=notes) if notes else blob.descriptor()


def oci_archive_entries(
    images: Sequence[ImageSpec | MultiPlatformSpec],
    *,
    annotate: Annotate = "both",
    layout_version: str = "1.0.0",
) -> tuple[list[TarEntry], dict[str, str]]:
    """The entries of an OCI image-layout archive of `images`, and its name → digest map.

    Order: `oci-layout`, `index.json`, `blobs/`, `blobs/sha256/`, then each blob once.
    The map gives, per image, the digest its `index.json` descriptor points at (the
    manifest, or the index of a multi-platform image), keyed by name; an unnamed image is
    keyed by that digest itself.
    """
    descriptors: list[dict[str, object]] = []
    blobs: dict[str, Blob] = {}
    names: dict[str, str] = {}
    for spec in images:
        if isinstance(spec, ImageSpec):
            built = build_image(spec)
            for blob in built.blobs:
                blobs.setdefault(blob.digest, blob)
            top, name = built.manifest, spec.name
            descriptors.append(
                _oci_descriptor(top, name, spec.ref_name, annotate, spec.annotations)
            )
        else:
            children = []
            for img in spec.images:
                built = build_image(img)
                children.append(built.manifest.descriptor(platform=img.platform.to_json()))
                if spec.include is None or img.platform in spec.include:
                    for blob in built.blobs:
                        blobs.setdefault(blob.digest, blob)
            top = Blob.of(
                OCI_INDEX,
                json_bytes({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": children}),
            )
            blobs.setdefault(top.digest, top)
            name = spec.name
            descriptors.append(_oci_descriptor(top, name, None, annotate, {}))
        names[name if name is not None else top.digest] = top.digest
    index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": descriptors}
    entries = [
        TarEntry("oci-layout", json_bytes({"imageLayoutVersion": layout_version})),
        TarEntry("index.json", json_bytes(index)),
        TarEntry.directory("blobs"),
        TarEntry.directory("blobs/sha256"),
        *(TarEntry(f"blobs/sha256/{b.hex}", b) for b in blobs.values()),
    ]
    return entries, names


def write_oci_archive(
    path: Path,
    images: Sequence[ImageSpec | MultiPlatformSpec],
    *,
    annotate: Annotate = "both",
    layout_version: str = "1.0.0",
) -> dict[str, str]:
    """Write an OCI image-layout tarball of `images`; return name → manifest/index digest.

    Args:
        images: single-platform `ImageSpec`s and/or `MultiPlatformSpec`s.
        annotate: the name annotations on each `index.json` descriptor: "both"
            (`io.containerd.image.name` and `org.opencontainers.image.ref.name`),
            "containerd", "oci" or "none".
        layout_version: the `imageLayoutVersion` in `oci-layout`.
    """
    entries, names = oci_archive_entries(images, annotate=annotate, layout_version=layout_version)
    write_tar(path, entries)
    return names


@dataclass(frozen=True, slots=True)
class DockerImageSpec:
    """One image of a `docker save` archive.

    Attributes:
        tags: its RepoTags, as docker writes them (`alpine:latest`, `quay.io/x/y:1`).
        layers: uncompressed layer blobs (`make_layer`/`random_layer` with "none").
        platform: written into the config.
    """

    tags: tuple[str, ...]
    layers: tuple[Blob, ...]
    platform: Platform = field(default_factory=Platform.host)


def docker_archive_entries(
    images: Sequence[DockerImageSpec],
) -> tuple[list[TarEntry], dict[str, str]]:
    """The entries of a `docker save` archive and its tag → config digest map."""
    entries: list[TarEntry] = []
    manifest: list[dict[str, object]] = []
    repositories: dict[str, dict[str, str]] = {}
    tags: dict[str, str] = {}
    written: set[str] = set()
    for spec in images:
        if any(layer.media_type != OCI_LAYER for layer in spec.layers):
            raise ValueError("docker archive layers must be uncompressed tars")
        config = build_image(
            ImageSpec(None, spec.layers, spec.platform, docker_media_types=True)
        ).config
        layer_paths, parent = [], ""
        for layer in spec.layers:
            layer_id = hashlib.sha256(f"{parent}\n{layer.diff_id}".encode()).hexdigest()
            layer_paths.append(f"{layer_id}/layer.tar")
            if layer_id not in written:
                written.add(layer_id)
                entries += [
                    TarEntry.directory(layer_id),
                    TarEntry(f"{layer_id}/VERSION", b"1.0"),
                    TarEntry(f"{layer_id}/layer.tar", layer),
                ]
            parent = layer_id
        if config.hex not in written:
            written.add(config.hex)
            entries.append(TarEntry(f"{config.hex}.json", config))
        manifest.append(
            {"Config": f"{config.hex}.json", "RepoTags": list(spec.tags), "Layers": layer_paths}
        )
        for tag in spec.tags:
            repo, _, version = tag.rpartition(":")
            repositories.setdefault(repo, {})[version] = parent
            tags[tag] = config.digest
    entries.append(TarEntry("manifest.json", json_bytes(manifest)))
    entries.append(TarEntry("repositories", json_bytes(repositories)))
    return entries, tags


def write_docker_archive(path: Path, images: Sequence[DockerImageSpec]) -> dict[str, str]:
    """Write a `docker save` style tarball of `images`; return tag → config digest."""
    entries, tags = docker_archive_entries(images)
    write_tar(path, entries)
    return tags


def compress(
    path: Path, kind: Literal["gzip", "zstd"], *, dest: Path | None = None, level: int | None = None
) -> Path:
    """Compress a whole archive, streaming, and return the new file; the original is kept.

    Args:
        kind: "gzip" (mtime 0, no file name) or "zstd" (one frame, content size unknown).
        dest: where to write; defaults to `path` + ".gz" / ".zst".
        level: defaults to 1 for gzip and 3 for zstd (fast: test data is mostly random).
    """
    if kind not in ("gzip", "zstd"):
        raise ValueError(f"compression {kind!r} is not 'gzip' or 'zstd'")
    dest = dest or path.with_name(path.name + (".gz" if kind == "gzip" else ".zst"))
    with open(path, "rb") as src, open(dest, "wb") as raw:
        if kind == "gzip":
            with gzip.GzipFile(
                filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=level or 1
            ) as gz:
                shutil.copyfileobj(src, gz, _CHUNK)
        else:
            with zstandard.ZstdCompressor(level=level or 3).stream_writer(raw) as zst:
                shutil.copyfileobj(src, zst, _CHUNK)
    return dest
