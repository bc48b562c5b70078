"""Cases whose archive is well-formed but its images are not: index, manifests, docker's."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from pathlib import Path

from tests.support import images as ig
from tests.support.corpus.case import (
    BAD_JSON,
    BIG,
    MISSING,
    TOO_LARGE,
    Case,
    all_of,
    missing,
)
from tests.support.corpus.good_archive import (
    base,
    blob_path,
    docker_base,
    docker_manifest,
    layer0_desc,
    swap,
    victim_descriptor,
    with_index,
    with_manifest,
    writes_tar,
)

__all__ = ["docker_cases", "structure_cases"]


def padded_json(path: Path, doc: bytes, media_type: str) -> ig.Blob:
    """A blob written to `path`: the JSON object `doc` with `BIG` spaces before its `}`."""
    h, spaces = hashlib.sha256(), b" " * (1 << 20)
    pads = (spaces[: min(len(spaces), BIG - i)] for i in range(0, BIG, len(spaces)))
    with open(path, "wb") as f:
        for part in (doc[:-1], *pads, doc[-1:]):
            h.update(part)
            f.write(part)
    return ig.Blob(media_type, "sha256:" + h.hexdigest(), path.stat().st_size, path=path)


def make_big_index(path: Path) -> None:
    """index.json padded with whitespace to 100 MiB (valid JSON, all images listed)."""
    index = next(e.data for e in base().entries if e.name == "index.json")
    blob = padded_json(path.with_name(path.name + ".index"), index, "")  # type: ignore[arg-type]
    ig.write_tar(path, swap(base().entries, "index.json", ig.TarMember("index.json", blob)))
    assert blob.path is not None
    blob.path.unlink()


def make_big_manifest(path: Path) -> None:
    """A gzip-compressed archive whose victim manifest is 100 MiB of padded, valid JSON."""
    b = base()
    part = path.with_name(path.name + ".manifest")
    manifest = padded_json(part, b.victim.manifest.read(), ig.OCI_MANIFEST)
    entries = swap(
        b.entries, blob_path(b.victim.manifest), ig.TarMember(blob_path(manifest), manifest)
    )
    plain = path.with_name(path.name + ".tar")
    ig.write_tar(plain, with_index(entries, victim_descriptor(manifest)))
    ig.compress(plain, "gzip", dest=path)
    plain.unlink()
    part.unlink()


def structure_cases() -> list[Case]:
    b = base()
    man = b.victim.manifest
    v3, v4 = base(3), base(4)
    index = next(e for e in b.entries if e.name == "index.json")
    only_bystander = ig.TarMember(
        "index.json",
        ig.json_bytes(
            {
                "schemaVersion": 2,
                "mediaType": ig.OCI_INDEX,
                "manifests": [b.bystander.manifest.descriptor()],
            }
        ),
    )
    not_json, _ = with_manifest(lambda d: None, raw=b"this is not json\n")
    negative, _ = with_manifest(lambda d: layer0_desc(d).update(size=-1))
    bigger, _ = with_manifest(lambda d: layer0_desc(d).update(size=b.layer0.size + 1))

    def entries_with(name: str, data: bytes | None) -> Callable[[Path], None]:
        return writes_tar(
            swap(b.entries, name, *([] if data is None else [ig.TarMember(name, data)]))
        )

    def index_with(**desc: object) -> Callable[[Path], None]:
        return writes_tar(with_index(b.entries, {**victim_descriptor(man), **desc}))

    media = rf"{re.escape(ig.OCI_INDEX)}|{re.escape(ig.OCI_MANIFEST)}|mismatch|does not match"
    return [
        Case(
            "missing-index.tar",
            "no index.json",
            all_of(r"index\.json", MISSING),
            entries_with("index.json", None),
        ),
        Case(
            "duplicate-index.tar",
            "a second index.json listing only the bystander",
            all_of(r"index\.json", r"duplicate|more than once|twice|repeated"),
            writes_tar([*b.entries, only_bystander]),
        ),
        Case(
            "index-not-json.tar",
            "index.json cut after its opening bracket",
            all_of(r"index\.json", rf"{BAD_JSON}|invalid"),
            entries_with("index.json", index.data[:30]),
        ),  # type: ignore[index]
        Case(
            "index-is-list.tar",
            "index.json is the JSON list []",
            all_of(r"index", r"object|list|array|expected"),
            entries_with("index.json", b"[]"),
        ),
        Case(
            "index-100mb.tar",
            "index.json padded with spaces to 100 MiB",
            all_of(r"index\.json", TOO_LARGE),
            make_big_index,
        ),
        Case(
            "manifest-100mb.tar.gz",
            "gzip of an archive with a 100 MiB padded manifest",
            all_of(r"manifest|sha256:[0-9a-f]{64}", TOO_LARGE),
            make_big_manifest,
        ),
        Case(
            "index-missing-manifest.tar",
            "the victim's manifest blob left out",
            missing(man),
            entries_with(blob_path(man), None),
        ),
        Case(
            "manifest-missing-layer.tar",
            "the victim's second layer left out",
            missing(v3.layer1),
            writes_tar(swap(v3.entries, blob_path(v3.layer1))),
        ),
        Case(
            "manifest-missing-config.tar",
            "the victim's config left out",
            missing(v4.victim.config),
            writes_tar(swap(v4.entries, blob_path(v4.victim.config))),
        ),
        Case(
            "manifest-not-json.tar",
            "a manifest blob (digest right) that is not JSON",
            all_of(r"manifest|sha256:[0-9a-f]{64}", rf"{BAD_JSON}|invalid"),
            writes_tar(not_json),
        ),
        Case(
            "wrong-media-type.tar",
            "index.json lists the manifest as application/octet-stream",
            all_of("application/octet-stream", r"media ?type|unsupported|unknown"),
            index_with(mediaType="application/octet-stream"),
        ),
        Case(
            "manifest-claims-index.tar",
            "index.json lists a manifest with the index media type",
            all_of(r"media ?type", media),
            index_with(mediaType=ig.OCI_INDEX),
        ),
        Case(
            "negative-size.tar",
            "a layer descriptor with size -1",
            all_of("size", r"-1|negative|invalid"),
            writes_tar(negative),
        ),
        Case(
            "wrong-layer-size.tar",
            "a layer descriptor one byte too large",
            all_of(b.layer0.digest, r"size|bytes"),
            writes_tar(bigger),
        ),
        Case(
            "bad-layout-version.tar",
            "oci-layout says imageLayoutVersion 2.0.0",
            all_of(r"2\.0\.0", r"version|layout"),
            entries_with("oci-layout", b'{"imageLayoutVersion":"2.0.0"}'),
        ),
        Case(
            "oci-layout-not-json.tar",
            "oci-layout is not JSON",
            all_of("oci-layout", rf"{BAD_JSON}|invalid"),
            entries_with("oci-layout", b"oci!"),
        ),
    ]


def docker_cases() -> list[Case]:
    entries = docker_base("corpus-docker:1", 105)
    manifest = docker_manifest(entries)
    config = str(manifest[0]["Config"])
    layer = str(manifest[0]["Layers"][0])  # type: ignore[index]
    bad_tag = [{**manifest[0], "RepoTags": ["Not A Valid::Tag"]}]

    def docker_with(name: str, data: bytes | None) -> Callable[[Path], None]:
        return writes_tar(
            swap(entries, name, *([] if data is None else [ig.TarMember(name, data)]))
        )

    return [
        Case(
            "docker-missing-config.tar",
            "manifest.json names a config that is absent",
            all_of(re.escape(config), MISSING),
            docker_with(config, None),
        ),
        Case(
            "docker-missing-layer.tar",
            "manifest.json names a layer.tar that is absent",
            all_of(re.escape(layer), MISSING),
            docker_with(layer, None),
        ),
        Case(
            "docker-manifest-not-json.tar",
            "manifest.json is not JSON",
            all_of(r"manifest\.json", rf"{BAD_JSON}|invalid"),
            docker_with("manifest.json", b"[{"),
        ),
        Case(
            "docker-bad-tag.tar",
            "RepoTags holds 'Not A Valid::Tag'",
            all_of("Not A Valid::Tag", r"invalid|reference|tag|name"),
            docker_with("manifest.json", ig.json_bytes(bad_tag)),
        ),
    ]
