"""Property tests over the archive reader: no input makes `import_archive` misbehave.

Each example is a small good archive (OCI tar, its gzip and zstd forms, a docker archive)
broken at random: bit flips, a truncation, inserted junk, a tar header replaced by random
bytes or given random fields (checksum fixed, so the reader believes it), and random JSON
documents as `index.json`, as a manifest (digest fixed, so it gets parsed) or as docker's
`manifest.json`. Importing it into a real containerd must either succeed or raise
`PreseedError` naming the file; it must finish quickly; and the Python heap must stay
small (tracemalloc peak) for an input of a few KiB.

Hypothesis runs derandomized and without an example database, so CI sees the same
examples on every run.
"""

from __future__ import annotations

import gzip
import io
import json
import re
import tarfile
import tempfile
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import zstandard
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from actors.preseed import ContainerdClient, ImportResult, PreseedError, import_archive
from tests.support import images as ig
from tests.support.containerd_daemon import ContainerdDaemon

NAMESPACE = "fuzz"
NAME = "docker.io/library/fuzz:1"
PER_IMPORT_S = 10.0
"""An import of a few KiB that takes longer than this counts as a hang."""
PEAK_BYTES = 16 * 1024 * 1024
"""The Python heap an import of a few KiB may use at its peak (a good one peaks near 2 MiB,
mostly one 1 MiB decompression chunk)."""
_ERROR = re.compile(
    r"failed to import preseed image '[^']*fuzz\.tar': (?!internal error).+", re.DOTALL
)

FUZZ = settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

_IMAGE = ig.small_image(NAME, seed=42, layers=2)
_BUILT = ig.build_image(_IMAGE)
_OCI_ENTRIES, _ = ig.oci_archive_entries([_IMAGE])
_DOCKER_ENTRIES, _ = ig.docker_archive_entries([ig.DockerImageSpec(("fuzz:1",), _IMAGE.layers)])


def _tar(entries: list[ig.TarMember]) -> bytes:
    out = io.BytesIO()
    ig.write_tar(out, entries)
    return out.getvalue()


_OCI = _tar(_OCI_ENTRIES)
BASES = {
    "oci": _OCI,
    "oci.gz": gzip.compress(_OCI, mtime=0),
    "oci.zst": zstandard.ZstdCompressor(level=3).compress(_OCI),
    "docker": _tar(_DOCKER_ENTRIES),
}
with tarfile.open(fileobj=io.BytesIO(_OCI)) as _tarfile:
    HEADERS = [m.offset for m in _tarfile.getmembers()]


@pytest.fixture(scope="module")
def client(containerd: ContainerdDaemon) -> Iterator[ContainerdClient]:
    with ContainerdClient(containerd.address) as c:
        yield c


@pytest.fixture(scope="module")
def workdir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="nc-fuzz-") as d:
        yield Path(d)


def _import_behaves(client: ContainerdClient, workdir: Path, data: bytes) -> None:
    """Import `data`: success or a PreseedError naming the file, fast, in bounded memory."""
    path = workdir / "fuzz.tar"
    path.write_bytes(data)
    start = time.monotonic()
    tracemalloc.start()
    try:
        result = import_archive(client, path, namespace=NAMESPACE)
        assert isinstance(result, ImportResult)
        event("imported")
    except PreseedError as e:
        # the importer wraps a bug as "internal error: <type>: ...": that is a failure too
        assert _ERROR.fullmatch(str(e)), str(e)
        event("error: " + re.sub(r"'[^']*'|sha\d+:\w+|\d+", "_", str(e).split("': ", 1)[1])[:50])
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert time.monotonic() - start < PER_IMPORT_S
    assert peak < PEAK_BYTES, f"python heap peaked at {peak} bytes"


def _no_leftovers(containerd: ContainerdDaemon) -> dict[str, list[str]]:
    return {
        "leases": containerd.ctr("leases", "ls", namespace=NAMESPACE).splitlines()[1:],
        "ingests": containerd.ctr("content", "active", namespace=NAMESPACE).splitlines()[1:],
    }


# ---------------------------------------------------------------------------- strategies

base_names = st.sampled_from(sorted(BASES))

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=20,
)

_blobs = [_BUILT.manifest, _BUILT.config, *(layer.blob for layer in _IMAGE.layers)]


def _mostly(valid: st.SearchStrategy[Any], odd: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """`valid` three times in four, so that examples get past the first check."""
    return st.integers(0, 3).flatmap(lambda i: odd if i == 0 else valid)


media_types = st.sampled_from(
    [
        ig.OCI_INDEX,
        ig.OCI_MANIFEST,
        ig.OCI_CONFIG,
        ig.OCI_LAYER,
        ig.OCI_LAYER_GZIP,
        ig.DOCKER_MANIFEST,
        "",
        "text/plain",
    ]
)
digests = (
    st.sampled_from([b.digest for b in _blobs])
    | st.sampled_from(
        ["sha256:", "sha512:00", "md5:abc", "sha256:" + "0" * 64, "", "sha256:../../etc"]
    )
    | st.text(max_size=80)
)
sizes = st.sampled_from([b.size for b in _blobs]) | st.integers(-(2**64), 2**64)
names = st.sampled_from([NAME, "fuzz", "UPPER/Case:x", "a/b@sha256:" + "0" * 64, ""]) | st.text(
    max_size=40
)
annotation_maps = st.dictionaries(
    st.sampled_from([ig.ANNOTATION_IMAGE_NAME, ig.ANNOTATION_REF_NAME, "x"]), names, max_size=2
)
platforms = st.sampled_from(
    [ig.host_platform().to_json(), {"os": "linux", "architecture": "arm"}, {}]
) | st.fixed_dictionaries({"os": st.text(max_size=8), "architecture": st.text(max_size=8)})
random_descriptors = st.fixed_dictionaries(
    {
        "mediaType": _mostly(media_types, json_values),
        "digest": _mostly(digests, json_values),
        "size": _mostly(sizes, json_values),
    },
    optional={
        "annotations": _mostly(annotation_maps, json_values),
        "platform": _mostly(platforms, json_values),
    },
)
real_manifests = st.builds(
    lambda notes, extra: {**_BUILT.manifest.descriptor(), **extra, "annotations": notes},
    annotation_maps,
    st.fixed_dictionaries({}, optional={"platform": platforms}),
)
index_docs = st.fixed_dictionaries(
    {
        "schemaVersion": _mostly(st.just(2), json_values),
        "manifests": _mostly(
            st.lists(_mostly(real_manifests, random_descriptors), max_size=3), json_values
        ),
    },
    optional={"mediaType": media_types},
)
manifest_docs = st.fixed_dictionaries(
    {
        "schemaVersion": _mostly(st.just(2), json_values),
        "mediaType": media_types,
        "config": _mostly(st.just(_BUILT.config.descriptor()), random_descriptors | json_values),
        "layers": _mostly(
            st.lists(
                _mostly(
                    st.sampled_from([layer.blob.descriptor() for layer in _IMAGE.layers]),
                    random_descriptors,
                ),
                max_size=3,
            ),
            json_values,
        ),
    }
)
_docker_names = [e.name for e in _DOCKER_ENTRIES]
docker_docs = st.lists(
    st.fixed_dictionaries(
        {
            "Config": _mostly(
                st.sampled_from([n for n in _docker_names if n.endswith(".json")]),
                st.sampled_from(_docker_names) | json_values,
            ),
            "RepoTags": _mostly(st.lists(names, max_size=3), json_values),
            "Layers": _mostly(
                st.lists(
                    st.sampled_from([n for n in _docker_names if n.endswith("/layer.tar")]),
                    max_size=3,
                ),
                st.lists(st.sampled_from(_docker_names) | st.text(max_size=30), max_size=3)
                | json_values,
            ),
        }
    ),
    max_size=2,
)


def _replace(entries: list[ig.TarMember], name: str, data: bytes) -> list[ig.TarMember]:
    return [ig.TarMember(name, data) if e.name == name else e for e in entries]


def _doc_bytes(doc: object) -> bytes:
    return json.dumps(doc).encode()


# ---------------------------------------------------------------------------- properties


@pytest.mark.timeout(120)
@FUZZ
@given(
    base=base_names,
    flips=st.lists(st.tuples(st.integers(0, 2**31), st.integers(0, 7)), min_size=1, max_size=8),
)
def test_bit_flips_give_a_preseed_error_or_an_image(
    client: ContainerdClient, workdir: Path, base: str, flips: list[tuple[int, int]]
) -> None:
    data = bytearray(BASES[base])
    for position, bit in flips:
        data[position % len(data)] ^= 1 << bit
    _import_behaves(client, workdir, bytes(data))


@pytest.mark.timeout(120)
@FUZZ
@given(
    base=base_names,
    cut=st.floats(0, 1, exclude_max=True),
    junk=st.binary(max_size=700),
    at=st.floats(0, 1),
)
def test_truncated_or_junk_spliced_archives_give_a_preseed_error_or_an_image(
    client: ContainerdClient, workdir: Path, base: str, cut: float, junk: bytes, at: float
) -> None:
    data = BASES[base]
    data = (
        data[: int(cut * len(data))]
        if not junk
        else (data[: int(at * len(data))] + junk + data[int(at * len(data)) :])
    )
    _import_behaves(client, workdir, data)


tar_fields = st.one_of(
    st.tuples(st.just(0), st.binary(min_size=1, max_size=100)),  # name
    st.tuples(st.just(124), st.integers(0, 8**11 - 1).map(lambda n: b"%011o\0" % n)),  # size
    st.tuples(st.just(124), st.binary(min_size=12, max_size=12)),  # size, garbage
    st.tuples(
        st.just(156), st.sampled_from(list(b"0123456789AgxKLSVD\0")).map(lambda c: bytes([c]))
    ),  # typeflag
    st.tuples(st.just(157), st.binary(min_size=1, max_size=100)),  # linkname
    st.tuples(st.just(345), st.binary(min_size=1, max_size=155)),  # ustar prefix
)


@pytest.mark.timeout(120)
@FUZZ
@given(
    header=st.sampled_from(HEADERS),
    change=tar_fields | st.tuples(st.just(-1), st.binary(min_size=512, max_size=512)),
)
def test_random_tar_headers_give_a_preseed_error_or_an_image(
    client: ContainerdClient, workdir: Path, header: int, change: tuple[int, bytes]
) -> None:
    at, value = change
    block = bytearray(_OCI[header : header + 512])
    if at < 0:
        block[:] = value
    else:
        block[at : at + len(value)] = value
        block[148:156] = b" " * 8
        block[148:156] = b"%06o\0 " % sum(block)
    _import_behaves(client, workdir, _OCI[:header] + bytes(block) + _OCI[header + 512 :])


@pytest.mark.timeout(120)
@FUZZ
@given(doc=_mostly(index_docs, json_values))
def test_random_index_json_documents_give_a_preseed_error_or_an_image(
    client: ContainerdClient, workdir: Path, doc: object
) -> None:
    _import_behaves(client, workdir, _tar(_replace(_OCI_ENTRIES, "index.json", _doc_bytes(doc))))


@pytest.mark.timeout(120)
@FUZZ
@given(doc=_mostly(manifest_docs, json_values))
def test_random_manifests_with_a_matching_digest_give_a_preseed_error_or_an_image(
    client: ContainerdClient, workdir: Path, doc: object
) -> None:
    manifest = ig.Blob.of(ig.OCI_MANIFEST, _doc_bytes(doc))
    index = {
        "schemaVersion": 2,
        "manifests": [manifest.descriptor(annotations={ig.ANNOTATION_IMAGE_NAME: NAME})],
    }
    entries = [e for e in _OCI_ENTRIES if e.name != f"blobs/sha256/{_BUILT.manifest.hex}"]
    entries = [
        *_replace(entries, "index.json", _doc_bytes(index)),
        ig.TarMember(f"blobs/sha256/{manifest.hex}", manifest),
    ]
    _import_behaves(client, workdir, _tar(entries))


@pytest.mark.timeout(120)
@FUZZ
@given(doc=_mostly(docker_docs, json_values))
def test_random_docker_manifest_json_documents_give_a_preseed_error_or_an_image(
    client: ContainerdClient, workdir: Path, doc: object
) -> None:
    _import_behaves(
        client, workdir, _tar(_replace(_DOCKER_ENTRIES, "manifest.json", _doc_bytes(doc)))
    )


@pytest.mark.timeout(60)
def test_the_fuzzing_left_no_lease_or_ingest_behind(containerd: ContainerdDaemon) -> None:
    assert _no_leftovers(containerd) == {"leases": [], "ingests": []}
