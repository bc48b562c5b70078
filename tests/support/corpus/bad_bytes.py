"""Cases broken at the byte level: the container (tar, gzip, zstd) and the digests."""

from __future__ import annotations

import random

from tests.support import images as ig
from tests.support.corpus.case import (
    BAD_HEADER,
    MISSING,
    NOT_IMAGE,
    NOT_TAR,
    TOO_LARGE,
    TRUNCATED,
    Case,
    all_of,
    mismatch,
)
from tests.support.corpus.good_archive import (
    Base,
    base,
    blob_path,
    gzip_bytes,
    layer0_desc,
    member_of,
    set_header_field,
    swap,
    tar_bytes,
    victim_descriptor,
    with_index,
    with_manifest,
    writes_bytes,
    writes_tar,
    zstd_bytes,
)

__all__ = ["container_cases", "digest_cases"]


def container_cases(good: bytes) -> list[Case]:
    b = base()
    l0 = member_of(good, blob_path(b.layer0))
    junk = random.Random(1).randbytes(10240)
    gz, zst = bytearray(gzip_bytes(good)), bytearray(zstd_bytes(good))
    gz[10] |= 0b110  # the first deflate block gets the reserved block type 11
    zst[4] |= 0x08  # the frame header descriptor's reserved bit
    not_tar = rf"{NOT_TAR}|invalid header|bad checksum"
    v1 = base(1)
    v1_good = tar_bytes(v1.entries)
    nested = writes_tar([ig.TarMember("image.tar", good)])
    return [
        Case(
            "zero-byte.tar",
            "an empty file",
            r"empty|zero[- ]byte|0 bytes|no data",
            writes_bytes(b""),
        ),
        Case("not-a-tar.tar", "10 KiB of random bytes", not_tar, writes_bytes(junk)),
        Case(
            "truncated-header.tar",
            "cut 100 bytes into a tar header",
            TRUNCATED,
            writes_bytes(good[: l0.offset + 100]),
        ),
        Case(
            "truncated-data.tar",
            "cut in the middle of a blob's data",
            TRUNCATED,
            writes_bytes(good[: l0.offset_data + l0.size // 2]),
        ),
        Case(
            "truncated-at-entry.tar",
            "cut at an entry boundary, no end-of-archive marker",
            rf"{TRUNCATED}|{all_of(f'{v1.layer0.digest}|{v1.layer1.digest}', MISSING)}",
            writes_bytes(v1_good[: member_of(v1_good, blob_path(v1.layer0)).offset]),
        ),
        Case(
            "bad-header-checksum.tar",
            "one byte of a blob's tar header flipped",
            BAD_HEADER,
            writes_bytes(good[: l0.offset] + b"c" + good[l0.offset + 1 :]),
        ),
        Case(
            "huge-size-header.tar",
            "a blob's header claims 8 GiB, checksum fixed",
            rf"{TRUNCATED}|{TOO_LARGE}|beyond",
            writes_bytes(set_header_field(good, l0.offset, 124, b"77777777777\0")),
        ),
        Case(
            "corrupt.tar.gz",
            "gzip whose first deflate block has the reserved type",
            r"gzip|deflate|invalid block type",
            writes_bytes(bytes(gz)),
        ),
        Case(
            "truncated.tar.gz",
            "a gzip-compressed archive cut in half",
            TRUNCATED,
            writes_bytes(gzip_bytes(good)[: len(gz) // 2]),
        ),
        Case(
            "garbage.tar.gz", "valid gzip of random bytes", not_tar, writes_bytes(gzip_bytes(junk))
        ),
        Case(
            "corrupt.tar.zst",
            "zstd whose frame header sets the reserved bit",
            r"zstd|zstandard|frame",
            writes_bytes(bytes(zst)),
        ),
        Case(
            "truncated.tar.zst",
            "a zstd-compressed archive cut in half",
            TRUNCATED,
            writes_bytes(zstd_bytes(good)[: len(zst) // 2]),
        ),
        Case(
            "garbage.tar.zst", "valid zstd of random bytes", not_tar, writes_bytes(zstd_bytes(junk))
        ),
        Case("nested.tar", "a good archive inside another tar", NOT_IMAGE, nested),
    ]


def digest_cases() -> list[Case]:
    b, v5, v6 = base(), base(5), base(6)
    man, l0 = b.victim.manifest, b.layer0

    def altered(base: Base, blob: ig.Blob, old: bytes, new: bytes) -> list[ig.TarMember]:
        data = blob.read()
        assert old in data and len(old) == len(new)
        return swap(
            base.entries, blob_path(blob), ig.TarMember(blob_path(blob), data.replace(old, new, 1))
        )

    cfg = v6.victim.config  # broken leaves come from variants of their own: see `missing`
    sha999, _ = with_manifest(lambda d: layer0_desc(d).update(digest=f"sha999:{l0.hex}"))
    sha999 = swap(sha999, blob_path(l0), ig.TarMember(f"blobs/sha999/{l0.hex}", l0))
    malformed = with_index(b.entries, {**victim_descriptor(man), "digest": "sha256:XYZ-not-hex"})
    return [
        Case(
            "layer-digest-mismatch.tar",
            "two bytes of a layer changed, same size",
            mismatch(v5.layer0),
            writes_tar(altered(v5, v5.layer0, bytes(2), b"\x01\x01")),
        ),
        Case(
            "manifest-digest-mismatch.tar",
            "the manifest's schemaVersion 2 made 3",
            mismatch(man),
            writes_tar(altered(b, man, b'"schemaVersion":2', b'"schemaVersion":3')),
        ),
        Case(
            "config-digest-mismatch.tar",
            "one character of the config changed",
            mismatch(cfg),
            writes_tar(altered(v6, cfg, b"/bin/true", b"/bin/trux")),
        ),
        Case(
            "unknown-digest-algorithm.tar",
            "a layer listed and stored as sha999:<hex>",
            all_of("sha999", r"algorithm|unsupported|unknown|invalid"),
            writes_tar(sha999),
        ),
        Case(
            "malformed-digest.tar",
            "index.json lists the manifest as sha256:XYZ-not-hex",
            all_of("sha256:XYZ-not-hex", r"invalid|malformed|bad"),
            writes_tar(malformed),
        ),
    ]
