"""The bad-input corpus for the preseed importer, and a CLI that writes it.

Every case is a `Case` record: the file's name, one line on how it is made, the cause its
import must fail with (a regex searched in the `PreseedError` text, which must also name
the file), and the function that writes it. `generate(outdir)` lays the corpus out as a
preseed directory, `<outdir>/<namespace>/<file>`, so that the same files serve
`import_archive` one by one and `preseed_dir` all at once.

Most archives are one good OCI archive of two images with exactly one thing broken:
`BYSTANDER`, which is never broken (so an importer that creates images one by one is
caught), and `VICTIM`, whose blobs are the ones broken. `VICTIM` has the name of an image
the tests import beforehand from a different, good archive, so an importer that changes an
existing image before it has verified everything is caught too.

Placements other than a file in a namespace directory:
    namespace_dir: a directory at the top whose name containerd rejects as a namespace,
        holding a good tarball: a failure naming the directory; nothing imported.
    nested_dir: a directory inside a namespace directory: a warning, as in the Go original.
    top_file: a (good) tarball at the top of the preseed directory: a warning, not imported.

Run `python tests/corpus/make_corpus.py OUTDIR` to write the corpus and print its table.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import io
import json
import os
import random
import re
import socket
import sys
import tarfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import zstandard

try:
    import imagegen as ig
except ImportError:  # run as a script: imagegen lives one directory up
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    import imagegen as ig

__all__ = [
    "BYSTANDER",
    "GOOD_FILES",
    "NAMESPACE",
    "VICTIM",
    "Case",
    "cases",
    "error_pattern",
    "generate",
    "good_victim_archive",
    "main",
    "write_good_files",
]

NAMESPACE = "k8s.io"
VICTIM = "docker.io/library/corpus-victim:1"
BYSTANDER = "docker.io/library/corpus-bystander:1"
BIG = 100 * 1024 * 1024
"""The size of the over-large JSON documents (100 MiB)."""

Placement = Literal["file", "namespace_dir", "nested_dir", "top_file"]


@dataclass(frozen=True, slots=True)
class Case:
    """One corpus entry.

    Attributes:
        name: the file (or directory) name.
        doc: how it is made, in one line.
        cause: a regex (searched, case-insensitive, dot matches newline) that the error
            text must match after the file name; None for a case that must import.
        make: writes the file at the path it is given.
        namespace: the namespace directory it lies in (placement "file" and "nested_dir").
        placement: see the module docstring.
        images: for a case that must import, the image names it creates.
    """

    name: str
    doc: str
    cause: str | None
    make: Callable[[Path], object]
    namespace: str = NAMESPACE
    placement: Placement = "file"
    images: tuple[str, ...] = ()

    @property
    def relpath(self) -> str:
        """Its path relative to the preseed directory."""
        top = self.placement in ("namespace_dir", "top_file")
        return self.name if top else f"{self.namespace}/{self.name}"


def error_pattern(case: Case) -> re.Pattern[str]:
    """The whole-message pattern an `import_archive` error of `case` must match.

    `failed to import preseed image '<path ending in namespace/file>': <text with cause>`.
    """
    assert case.cause is not None
    file = re.escape(f"{case.namespace}/{case.name}")
    return re.compile(
        rf"failed to import preseed image '(?:[^']*/)?{file}': "
        rf"(?=.*?(?:{case.cause})).+",
        re.IGNORECASE | re.DOTALL,
    )


def _all(*parts: str) -> str:
    """A regex that matches text containing every one of `parts`, in any order."""
    return "".join(f"(?=.*?(?:{p}))" for p in parts)


TRUNCATED = r"truncat|unexpected end|unexpected eof|ended (early|before|prematurely)|incomplete"
NOT_TAR = (
    r"not an? (valid |recognized )?(tar|archive)|invalid tar|bad tar|tar header"
    r"|unrecognized|unknown (archive )?format"
)
NOT_IMAGE = (
    r"unrecognized|not an? (oci|docker|image)|(no|missing|neither) "
    r"(index\.json|manifest\.json|oci-layout)"
)
BAD_HEADER = r"checksum|invalid tar|tar header|corrupt|bad header"
UNSAFE = r"unsafe|absolute|travers|escapes|outside|out of|illegal|not allowed|forbidden"
MISSING = r"missing|not found|absent|not in the archive|no such|\bno\b"
BAD_JSON = r"json|parse|decode|malformed"
TOO_LARGE = r"too (large|big)|exceeds|limit|larger than"
NOT_REGULAR = r"not a regular file|fifo|named pipe|socket"
NOT_REGULAR_ENTRY = r"not a regular|fifo|director|special|unsupported|type"


def _mismatch(blob: ig.Blob) -> str:
    return rf"blob {blob.digest} does not match its digest"


def _missing(blob: ig.Blob) -> str:
    """The cause for `blob` missing. A leaf (layer, config) that containerd already holds is
    not read from the archive, and a failed import may leave blobs in containerd until its
    GC runs: so each case that leaves out or breaks a leaf uses a `_base` variant whose
    blobs no other case has."""
    return _all(blob.digest, MISSING)


@dataclass(frozen=True, slots=True)
class _Base:
    """The good archive of `BYSTANDER` and `VICTIM` that the broken ones derive from."""

    victim: ig.BuiltImage
    bystander: ig.BuiltImage
    entries: tuple[ig.TarEntry, ...]
    layer0: ig.Blob
    layer1: ig.Blob


@functools.cache
def _base(variant: int = 0) -> _Base:
    """The good archive; a `variant` > 0 has victim blobs of its own (see `_missing`)."""
    bystander = ig.small_image(BYSTANDER, seed=102)
    layers = (
        ig.small_image(None, seed=101 + 10 * variant).layers[0],
        ig.small_image(None, seed=103 + 10 * variant, compression="gzip").layers[0],
    )
    victim = ig.ImageSpec(VICTIM, layers, ig.Platform.host())
    entries, _ = ig.oci_archive_entries([bystander, victim])
    return _Base(ig.build_image(victim), ig.build_image(bystander), tuple(entries), *layers)


def good_victim_archive(path: Path) -> str:
    """Write the good archive of `VICTIM` that tests import first; return its digest."""
    return ig.write_oci_archive(path, [ig.small_image(VICTIM, seed=100)])[VICTIM]


def _blob_path(blob: ig.Blob) -> str:
    return f"blobs/sha256/{blob.hex}"


def _swap(entries: Sequence[ig.TarEntry], name: str, *new: ig.TarEntry) -> list[ig.TarEntry]:
    """`entries` with the entry `name` replaced by `new` (nothing: removed)."""
    assert any(e.name == name for e in entries), name
    return [kept for e in entries for kept in (new if e.name == name else (e,))]


def _victim_descriptor(manifest: ig.Blob) -> dict[str, object]:
    return manifest.descriptor(
        annotations={ig.ANNOTATION_IMAGE_NAME: VICTIM, ig.ANNOTATION_REF_NAME: VICTIM}
    )


def _with_index(
    entries: Sequence[ig.TarEntry], victim_desc: dict[str, object]
) -> list[ig.TarEntry]:
    b = _base()
    index = {
        "schemaVersion": 2,
        "mediaType": ig.OCI_INDEX,
        "manifests": [
            b.bystander.manifest.descriptor(
                annotations={ig.ANNOTATION_IMAGE_NAME: BYSTANDER, ig.ANNOTATION_REF_NAME: BYSTANDER}
            ),
            victim_desc,
        ],
    }
    return _swap(entries, "index.json", ig.TarEntry("index.json", ig.json_bytes(index)))


def _with_manifest(
    mutate: Callable[[dict[str, object]], None],
    *,
    raw: bytes | None = None,
) -> tuple[list[ig.TarEntry], ig.Blob]:
    """The base entries with the victim's manifest rewritten by `mutate` (or set to `raw`)."""
    b = _base()
    doc = json.loads(b.victim.manifest.read())
    mutate(doc)
    manifest = ig.Blob.of(ig.OCI_MANIFEST, raw if raw is not None else ig.json_bytes(doc))
    entries = _swap(
        b.entries, _blob_path(b.victim.manifest), ig.TarEntry(_blob_path(manifest), manifest)
    )
    return _with_index(entries, _victim_descriptor(manifest)), manifest


def _layer0_desc(doc: dict[str, object]) -> dict[str, object]:
    return doc["layers"][0]  # type: ignore[index,no-any-return]


def _tar(entries: Sequence[ig.TarEntry]) -> Callable[[Path], None]:
    return lambda path: ig.write_tar(path, entries)


def _raw(data: bytes) -> Callable[[Path], object]:
    return lambda path: path.write_bytes(data)


def _tar_bytes(entries: Sequence[ig.TarEntry]) -> bytes:
    out = io.BytesIO()
    ig.write_tar(out, entries)
    return out.getvalue()


def _member(data: bytes, name: str) -> tarfile.TarInfo:
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return tar.getmember(name)


def _set_header_field(data: bytes, offset: int, field_at: int, value: bytes) -> bytes:
    """Overwrite a header field and recompute the header checksum (bytes 148..155)."""
    block = bytearray(data[offset : offset + 512])
    block[field_at : field_at + len(value)] = value
    block[148:156] = b" " * 8
    block[148:156] = b"%06o\0 " % sum(block)
    return data[:offset] + bytes(block) + data[offset + 512 :]


def _gzip(data: bytes) -> bytes:
    return gzip.compress(data, compresslevel=6, mtime=0)


def _zstd(data: bytes) -> bytes:
    return zstandard.ZstdCompressor(level=3, write_content_size=False).compress(data)


def _make_socket(path: Path) -> None:
    # bind through /proc/self/fd so that a long directory path stays under 108 bytes.
    fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.bind(f"/proc/self/fd/{fd}/{path.name}")
    finally:
        os.close(fd)


def _padded_json(path: Path, doc: bytes, media_type: str) -> ig.Blob:
    """A blob written to `path`: the JSON object `doc` with `BIG` spaces before its `}`."""
    h, spaces = hashlib.sha256(), b" " * (1 << 20)
    pads = (spaces[: min(len(spaces), BIG - i)] for i in range(0, BIG, len(spaces)))
    with open(path, "wb") as f:
        for part in (doc[:-1], *pads, doc[-1:]):
            h.update(part)
            f.write(part)
    return ig.Blob(media_type, "sha256:" + h.hexdigest(), path.stat().st_size, path=path)


def _make_big_index(path: Path) -> None:
    """index.json padded with whitespace to 100 MiB (valid JSON, all images listed)."""
    index = next(e.data for e in _base().entries if e.name == "index.json")
    blob = _padded_json(path.with_name(path.name + ".index"), index, "")  # type: ignore[arg-type]
    ig.write_tar(path, _swap(_base().entries, "index.json", ig.TarEntry("index.json", blob)))
    assert blob.path is not None
    blob.path.unlink()


def _make_big_manifest(path: Path) -> None:
    """A gzip-compressed archive whose victim manifest is 100 MiB of padded, valid JSON."""
    b = _base()
    part = path.with_name(path.name + ".manifest")
    manifest = _padded_json(part, b.victim.manifest.read(), ig.OCI_MANIFEST)
    entries = _swap(
        b.entries, _blob_path(b.victim.manifest), ig.TarEntry(_blob_path(manifest), manifest)
    )
    plain = path.with_name(path.name + ".tar")
    ig.write_tar(plain, _with_index(entries, _victim_descriptor(manifest)))
    ig.compress(plain, "gzip", dest=path)
    plain.unlink()
    part.unlink()


def _good(name: str, *, in_dir: bool = False) -> Callable[[Path], None]:
    """Writes a good archive of `name` at the path, or as `good.tar` in a new directory there."""

    def make(path: Path) -> None:
        if in_dir:
            path.mkdir()
            path = path / "good.tar"
        ig.write_oci_archive(path, [ig.small_image(name, seed=len(name))])

    return make


OK_NAMESPACE = "corpus-ok"
"""Where the cases that must import lie, apart from the namespace of the broken ones."""


def _docker_base(tag: str, seed: int) -> list[ig.TarEntry]:
    spec = ig.DockerImageSpec((tag,), ig.small_image(None, seed=seed, layers=2).layers)
    return ig.docker_archive_entries([spec])[0]


def _docker_manifest(entries: Sequence[ig.TarEntry]) -> list[dict[str, object]]:
    return json.loads(next(e.data for e in entries if e.name == "manifest.json"))  # type: ignore


def _container_cases(good: bytes) -> list[Case]:
    b = _base()
    l0 = _member(good, _blob_path(b.layer0))
    junk = random.Random(1).randbytes(10240)
    gz, zst = bytearray(_gzip(good)), bytearray(_zstd(good))
    gz[10] |= 0b110  # the first deflate block gets the reserved block type 11
    zst[4] |= 0x08  # the frame header descriptor's reserved bit
    not_tar = rf"{NOT_TAR}|invalid header|bad checksum"
    v1 = _base(1)
    v1_good = _tar_bytes(v1.entries)
    nested = _tar([ig.TarEntry("image.tar", good)])
    return [
        Case("zero-byte.tar", "an empty file", r"empty|zero[- ]byte|0 bytes|no data", _raw(b"")),
        Case("not-a-tar.tar", "10 KiB of random bytes", not_tar, _raw(junk)),
        Case(
            "truncated-header.tar",
            "cut 100 bytes into a tar header",
            TRUNCATED,
            _raw(good[: l0.offset + 100]),
        ),
        Case(
            "truncated-data.tar",
            "cut in the middle of a blob's data",
            TRUNCATED,
            _raw(good[: l0.offset_data + l0.size // 2]),
        ),
        Case(
            "truncated-at-entry.tar",
            "cut at an entry boundary, no end-of-archive marker",
            rf"{TRUNCATED}|{_all(f'{v1.layer0.digest}|{v1.layer1.digest}', MISSING)}",
            _raw(v1_good[: _member(v1_good, _blob_path(v1.layer0)).offset]),
        ),
        Case(
            "bad-header-checksum.tar",
            "one byte of a blob's tar header flipped",
            BAD_HEADER,
            _raw(good[: l0.offset] + b"c" + good[l0.offset + 1 :]),
        ),
        Case(
            "huge-size-header.tar",
            "a blob's header claims 8 GiB, checksum fixed",
            rf"{TRUNCATED}|{TOO_LARGE}|beyond",
            _raw(_set_header_field(good, l0.offset, 124, b"77777777777\0")),
        ),
        Case(
            "corrupt.tar.gz",
            "gzip whose first deflate block has the reserved type",
            r"gzip|deflate|invalid block type",
            _raw(bytes(gz)),
        ),
        Case(
            "truncated.tar.gz",
            "a gzip-compressed archive cut in half",
            TRUNCATED,
            _raw(_gzip(good)[: len(gz) // 2]),
        ),
        Case("garbage.tar.gz", "valid gzip of random bytes", not_tar, _raw(_gzip(junk))),
        Case(
            "corrupt.tar.zst",
            "zstd whose frame header sets the reserved bit",
            r"zstd|zstandard|frame",
            _raw(bytes(zst)),
        ),
        Case(
            "truncated.tar.zst",
            "a zstd-compressed archive cut in half",
            TRUNCATED,
            _raw(_zstd(good)[: len(zst) // 2]),
        ),
        Case("garbage.tar.zst", "valid zstd of random bytes", not_tar, _raw(_zstd(junk))),
        Case("nested.tar", "a good archive inside another tar", NOT_IMAGE, nested),
    ]


def _digest_cases() -> list[Case]:
    b, v5, v6 = _base(), _base(5), _base(6)
    man, l0 = b.victim.manifest, b.layer0

    def altered(base: _Base, blob: ig.Blob, old: bytes, new: bytes) -> list[ig.TarEntry]:
        data = blob.read()
        assert old in data and len(old) == len(new)
        return _swap(
            base.entries, _blob_path(blob), ig.TarEntry(_blob_path(blob), data.replace(old, new, 1))
        )

    cfg = v6.victim.config  # broken leaves come from variants of their own: see `_missing`
    sha999, _ = _with_manifest(lambda d: _layer0_desc(d).update(digest=f"sha999:{l0.hex}"))
    sha999 = _swap(sha999, _blob_path(l0), ig.TarEntry(f"blobs/sha999/{l0.hex}", l0))
    malformed = _with_index(b.entries, {**_victim_descriptor(man), "digest": "sha256:XYZ-not-hex"})
    return [
        Case(
            "layer-digest-mismatch.tar",
            "two bytes of a layer changed, same size",
            _mismatch(v5.layer0),
            _tar(altered(v5, v5.layer0, bytes(2), b"\x01\x01")),
        ),
        Case(
            "manifest-digest-mismatch.tar",
            "the manifest's schemaVersion 2 made 3",
            _mismatch(man),
            _tar(altered(b, man, b'"schemaVersion":2', b'"schemaVersion":3')),
        ),
        Case(
            "config-digest-mismatch.tar",
            "one character of the config changed",
            _mismatch(cfg),
            _tar(altered(v6, cfg, b"imagegen layer 0", b"imagegen layer X")),
        ),
        Case(
            "unknown-digest-algorithm.tar",
            "a layer listed and stored as sha999:<hex>",
            _all("sha999", r"algorithm|unsupported|unknown|invalid"),
            _tar(sha999),
        ),
        Case(
            "malformed-digest.tar",
            "index.json lists the manifest as sha256:XYZ-not-hex",
            _all("sha256:XYZ-not-hex", r"invalid|malformed|bad"),
            _tar(malformed),
        ),
    ]


def _path_cases() -> list[Case]:
    b = _base()
    l0 = _blob_path(b.layer0)
    hexes = b.layer0.hex
    v2 = _base(2)
    docker = _docker_base("corpus-docker-link:1", 104)
    first_layer = next(e.name for e in docker if e.name.endswith("/layer.tar"))
    docker_link = _swap(
        docker, first_layer, ig.TarEntry(first_layer, type=tarfile.SYMTYPE, linkname="/etc/passwd")
    )

    def plus(*extra: ig.TarEntry) -> Callable[[Path], None]:
        return _tar([*b.entries, *extra])

    def instead_of_l0(entry: ig.TarEntry) -> Callable[[Path], None]:
        return _tar(_swap(b.entries, l0, entry))

    return [
        Case(
            "absolute-path.tar",
            "an extra entry /etc/evil",
            _all("/etc/evil", UNSAFE),
            plus(ig.TarEntry("/etc/evil", b"x")),
        ),
        Case(
            "absolute-blob.tar",
            "a layer stored as /blobs/sha256/<hex>",
            _all("/blobs/sha256/", UNSAFE),
            instead_of_l0(ig.TarEntry("/" + l0, b.layer0)),
        ),
        Case(
            "dotdot-traversal.tar",
            "an extra entry ../../evil",
            _all(r"\.\./evil", UNSAFE),
            plus(ig.TarEntry("../../evil", b"x")),
        ),
        Case(
            "dotdot-in-blobs.tar",
            "an extra entry blobs/sha256/../../../evil",
            _all(r"\.\./evil", UNSAFE),
            plus(ig.TarEntry("blobs/sha256/../../../evil", b"x")),
        ),
        Case(
            "symlink-out.tar",
            "a layer's entry is a symlink to /etc/passwd",
            _all("link", rf"{hexes}|/etc/passwd"),
            instead_of_l0(ig.TarEntry(l0, type=tarfile.SYMTYPE, linkname="/etc/passwd")),
        ),
        Case(
            "symlink-dotdot.tar",
            "an extra symlink escape -> ../../../etc/shadow",
            _all("link", r"escape|\.\./etc/shadow"),
            plus(ig.TarEntry("escape", type=tarfile.SYMTYPE, linkname="../../../etc/shadow")),
        ),
        Case(
            "hardlink-out.tar",
            "a layer's entry is a hard link to ../../etc/passwd",
            _all("link", rf"{hexes}|\.\./etc/passwd"),
            instead_of_l0(ig.TarEntry(l0, type=tarfile.LNKTYPE, linkname="../../etc/passwd")),
        ),
        Case(
            "hardlink-abs.tar",
            "an extra hard link hardlink-to-shadow -> /etc/shadow",
            _all("link", r"hardlink-to-shadow|/etc/shadow"),
            plus(ig.TarEntry("hardlink-to-shadow", type=tarfile.LNKTYPE, linkname="/etc/shadow")),
        ),
        Case(
            "docker-symlink-layer.tar",
            "a docker archive whose layer.tar -> /etc/passwd",
            _all("link", r"layer\.tar|/etc/passwd"),
            _tar(docker_link),
        ),
        Case(
            "device-file.tar",
            "an extra character device entry dev/null",
            _all("dev/null", r"device|special|not a regular|unsupported|type"),
            plus(ig.TarEntry("dev/null", type=tarfile.CHRTYPE)),
        ),
        Case(
            "fifo-in-blobs.tar",
            "a layer's entry is a FIFO",
            _all(hexes, NOT_REGULAR_ENTRY),
            instead_of_l0(ig.TarEntry(l0, type=tarfile.FIFOTYPE)),
        ),
        Case(
            "blob-is-directory.tar",
            "a layer's entry is a directory",
            _all(v2.layer0.hex, rf"{NOT_REGULAR_ENTRY}|{MISSING}"),
            _tar(
                _swap(
                    v2.entries, _blob_path(v2.layer0), ig.TarEntry.directory(_blob_path(v2.layer0))
                )
            ),
        ),
        Case(
            "duplicate-blob.tar",
            "a layer's entry twice, same content",
            _all(hexes, r"duplicate|more than once|twice|repeated"),
            _tar(_swap(b.entries, l0, ig.TarEntry(l0, b.layer0), ig.TarEntry(l0, b.layer0))),
        ),
    ]


def _structure_cases() -> list[Case]:
    b = _base()
    man = b.victim.manifest
    v3, v4 = _base(3), _base(4)
    index = next(e for e in b.entries if e.name == "index.json")
    only_bystander = ig.TarEntry(
        "index.json",
        ig.json_bytes(
            {
                "schemaVersion": 2,
                "mediaType": ig.OCI_INDEX,
                "manifests": [b.bystander.manifest.descriptor()],
            }
        ),
    )
    not_json, _ = _with_manifest(lambda d: None, raw=b"this is not json\n")
    negative, _ = _with_manifest(lambda d: _layer0_desc(d).update(size=-1))
    bigger, _ = _with_manifest(lambda d: _layer0_desc(d).update(size=b.layer0.size + 1))

    def entries_with(name: str, data: bytes | None) -> Callable[[Path], None]:
        return _tar(_swap(b.entries, name, *([] if data is None else [ig.TarEntry(name, data)])))

    def index_with(**desc: object) -> Callable[[Path], None]:
        return _tar(_with_index(b.entries, {**_victim_descriptor(man), **desc}))

    media = rf"{re.escape(ig.OCI_INDEX)}|{re.escape(ig.OCI_MANIFEST)}|mismatch|does not match"
    return [
        Case(
            "missing-index.tar",
            "no index.json",
            _all(r"index\.json", MISSING),
            entries_with("index.json", None),
        ),
        Case(
            "duplicate-index.tar",
            "a second index.json listing only the bystander",
            _all(r"index\.json", r"duplicate|more than once|twice|repeated"),
            _tar([*b.entries, only_bystander]),
        ),
        Case(
            "index-not-json.tar",
            "index.json cut after its opening bracket",
            _all(r"index\.json", rf"{BAD_JSON}|invalid"),
            entries_with("index.json", index.data[:30]),
        ),  # type: ignore[index]
        Case(
            "index-is-list.tar",
            "index.json is the JSON list []",
            _all(r"index", r"object|list|array|expected"),
            entries_with("index.json", b"[]"),
        ),
        Case(
            "index-100mb.tar",
            "index.json padded with spaces to 100 MiB",
            _all(r"index\.json", TOO_LARGE),
            _make_big_index,
        ),
        Case(
            "manifest-100mb.tar.gz",
            "gzip of an archive with a 100 MiB padded manifest",
            _all(r"manifest|sha256:[0-9a-f]{64}", TOO_LARGE),
            _make_big_manifest,
        ),
        Case(
            "index-missing-manifest.tar",
            "the victim's manifest blob left out",
            _missing(man),
            entries_with(_blob_path(man), None),
        ),
        Case(
            "manifest-missing-layer.tar",
            "the victim's second layer left out",
            _missing(v3.layer1),
            _tar(_swap(v3.entries, _blob_path(v3.layer1))),
        ),
        Case(
            "manifest-missing-config.tar",
            "the victim's config left out",
            _missing(v4.victim.config),
            _tar(_swap(v4.entries, _blob_path(v4.victim.config))),
        ),
        Case(
            "manifest-not-json.tar",
            "a manifest blob (digest right) that is not JSON",
            _all(r"manifest|sha256:[0-9a-f]{64}", rf"{BAD_JSON}|invalid"),
            _tar(not_json),
        ),
        Case(
            "wrong-media-type.tar",
            "index.json lists the manifest as application/octet-stream",
            _all("application/octet-stream", r"media ?type|unsupported|unknown"),
            index_with(mediaType="application/octet-stream"),
        ),
        Case(
            "manifest-claims-index.tar",
            "index.json lists a manifest with the index media type",
            _all(r"media ?type", media),
            index_with(mediaType=ig.OCI_INDEX),
        ),
        Case(
            "negative-size.tar",
            "a layer descriptor with size -1",
            _all("size", r"-1|negative|invalid"),
            _tar(negative),
        ),
        Case(
            "wrong-layer-size.tar",
            "a layer descriptor one byte too large",
            _all(b.layer0.digest, r"size|bytes"),
            _tar(bigger),
        ),
        Case(
            "bad-layout-version.tar",
            "oci-layout says imageLayoutVersion 2.0.0",
            _all(r"2\.0\.0", r"version|layout"),
            entries_with("oci-layout", b'{"imageLayoutVersion":"2.0.0"}'),
        ),
        Case(
            "oci-layout-not-json.tar",
            "oci-layout is not JSON",
            _all("oci-layout", rf"{BAD_JSON}|invalid"),
            entries_with("oci-layout", b"oci!"),
        ),
    ]


def _docker_cases() -> list[Case]:
    entries = _docker_base("corpus-docker:1", 105)
    manifest = _docker_manifest(entries)
    config = str(manifest[0]["Config"])
    layer = str(manifest[0]["Layers"][0])  # type: ignore[index]
    bad_tag = [{**manifest[0], "RepoTags": ["Not A Valid::Tag"]}]

    def docker_with(name: str, data: bytes | None) -> Callable[[Path], None]:
        return _tar(_swap(entries, name, *([] if data is None else [ig.TarEntry(name, data)])))

    return [
        Case(
            "docker-missing-config.tar",
            "manifest.json names a config that is absent",
            _all(re.escape(config), MISSING),
            docker_with(config, None),
        ),
        Case(
            "docker-missing-layer.tar",
            "manifest.json names a layer.tar that is absent",
            _all(re.escape(layer), MISSING),
            docker_with(layer, None),
        ),
        Case(
            "docker-manifest-not-json.tar",
            "manifest.json is not JSON",
            _all(r"manifest\.json", rf"{BAD_JSON}|invalid"),
            docker_with("manifest.json", b"[{"),
        ),
        Case(
            "docker-bad-tag.tar",
            "RepoTags holds 'Not A Valid::Tag'",
            _all("Not A Valid::Tag", r"invalid|reference|tag|name"),
            docker_with("manifest.json", ig.json_bytes(bad_tag)),
        ),
    ]


def _accepted_cases() -> list[Case]:
    """Odd but valid archives: they must import, in `OK_NAMESPACE`."""
    bomb = "docker.io/library/corpus-bomb:1"
    bomb_entries, _ = ig.oci_archive_entries([ig.small_image(bomb, seed=106)])
    junk = [ig.TarEntry(f"junk/{i:05d}", b"") for i in range(20_000)]
    dot_name = "docker.io/library/corpus-dot-slash:1"
    dotted, _ = ig.oci_archive_entries([ig.small_image(dot_name, seed=107)])
    dotted = [ig.TarEntry("./" + e.name, e.data, e.type, e.linkname, e.mode) for e in dotted]
    # docker save links a layer shared by two images: <id2>/layer.tar -> ../<id1>/layer.tar
    entries = _docker_base("corpus-docker-inside-link:1", 108)
    manifest = _docker_manifest(entries)
    real = str(manifest[0]["Layers"][0])  # type: ignore[index]
    alias = "f" * 64
    manifest[0]["Layers"] = [f"{alias}/layer.tar", *manifest[0]["Layers"][1:]]  # type: ignore
    linked = [
        *_swap(entries, "manifest.json", ig.TarEntry("manifest.json", ig.json_bytes(manifest))),
        ig.TarEntry.directory(alias),
        ig.TarEntry(f"{alias}/layer.tar", type=tarfile.SYMTYPE, linkname="../" + real),
    ]
    return [
        Case(
            "tar-bomb.tar",
            "a good image plus 20,000 empty entries junk/NNNNN",
            None,
            _tar([*bomb_entries, *junk]),
            OK_NAMESPACE,
            images=(bomb,),
        ),
        Case(
            "dot-slash-names.tar",
            "a good image whose entries all start with ./",
            None,
            _tar(dotted),
            OK_NAMESPACE,
            images=(dot_name,),
        ),
        Case(
            "docker-symlink-inside.tar",
            "docker layer.tar symlinked to another in the archive",
            None,
            _tar(linked),
            OK_NAMESPACE,
            images=("docker.io/library/corpus-docker-inside-link:1",),
        ),
    ]


def _layout_cases() -> list[Case]:
    return [
        Case("fifo.tar", "a real FIFO where a tarball should be", NOT_REGULAR, os.mkfifo),
        Case(
            "socket.tar", "a real unix socket where a tarball should be", NOT_REGULAR, _make_socket
        ),
        Case(
            "invalid..ns",
            "a namespace directory containerd rejects, holding a good tarball",
            _all(r"invalid\.\.ns", "namespace"),
            _good("docker.io/library/corpus-badns:1", in_dir=True),
            placement="namespace_dir",
        ),
        Case(
            "nested-dir",
            "a directory inside a namespace directory, holding a good tarball",
            None,
            _good("docker.io/library/corpus-nested:1", in_dir=True),
            placement="nested_dir",
        ),
        Case(
            "top-level.tar",
            "a good tarball at the top of the preseed directory",
            None,
            _good("docker.io/library/corpus-top:1"),
            placement="top_file",
        ),
    ]


def cases() -> tuple[Case, ...]:
    """Every corpus case, in a stable order; names are unique."""
    good = _tar_bytes(_base().entries)
    all_cases = (
        *_container_cases(good),
        *_digest_cases(),
        *_path_cases(),
        *_structure_cases(),
        *_docker_cases(),
        *_accepted_cases(),
        *_layout_cases(),
    )
    assert len({c.name for c in all_cases}) == len(all_cases)
    return all_cases


GOOD_FILES = {
    f"{NAMESPACE}/good-oci.tar": ("docker.io/library/corpus-good-a:1",),
    f"{NAMESPACE}/good-docker.tar.zst": ("docker.io/library/corpus-good-b:1",),
}
"""The good tarballs `write_good_files` writes beside the corpus, and their images."""


def write_good_files(outdir: Path) -> dict[str, tuple[str, ...]]:
    """Write `GOOD_FILES` under `outdir` (an OCI tar and a zstd docker archive)."""
    (outdir / NAMESPACE).mkdir(parents=True, exist_ok=True)
    ig.write_oci_archive(
        outdir / NAMESPACE / "good-oci.tar",
        [ig.small_image("docker.io/library/corpus-good-a:1", seed=110)],
    )
    plain = outdir / NAMESPACE / "good-docker.tar"
    ig.write_docker_archive(
        plain,
        [ig.DockerImageSpec(("corpus-good-b:1",), ig.small_image(None, seed=111, layers=2).layers)],
    )
    ig.compress(plain, "zstd")
    plain.unlink()
    return dict(GOOD_FILES)


def generate(outdir: Path, selected: Sequence[Case] | None = None) -> tuple[Case, ...]:
    """Write the corpus (or the `selected` cases) under `outdir`; return the cases."""
    chosen = tuple(selected) if selected is not None else cases()
    for case in chosen:
        (outdir / case.relpath).parent.mkdir(parents=True, exist_ok=True)
        case.make(outdir / case.relpath)
    return chosen


def main(argv: Sequence[str] | None = None) -> int:
    """`make_corpus.py OUTDIR`: write the corpus and print one line per case."""
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1 or args[0].startswith("-"):
        print("usage: make_corpus.py OUTDIR", file=sys.stderr)
        return 2
    outdir = Path(args[0])
    written = generate(outdir)
    write_good_files(outdir)
    for case in written:
        print(f"{case.relpath:45} {case.doc}\n{'':45} -> {case.cause or 'imports / warning'}")
    print(f"{len(written)} cases in {outdir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
