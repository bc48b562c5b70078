"""From an archive's index to the list of blobs to write and images to create.

`make_plan` is the walk of containerd's `client.Import`, without I/O to
containerd: starting at the top-level index it

1. names each top-level manifest from `io.containerd.image.name`, else
   `org.opencontainers.image.ref.name` (the Go client with no options); a
   manifest with neither is not dropped (its content would be collected) but
   named `<digest_ref_prefix>@<digest>`, with a warning; one name given to two
   different targets (among the platforms kept) is an error naming both — Go's
   client lets the last one win silently;
2. keeps the descriptors whose platform the matcher accepts (those with no
   platform always); a top-level image for another platform is left out with a
   warning, and if none is left the import fails, as Go's `WalkNotEmpty` does;
3. descends through indexes and manifests (reading each from the archive,
   checking its digest and size, its media type, and its children), and gives
   every parent the GC reference labels of its kept children;
4. lists each blob once, children before parents, leaves largest first.

A blob that is not in the archive is an error, unless `skip_missing` is set (it
is then left out, as containerd's `WithSkipMissing`); a missing layer or config
may also already be in containerd, which the writer checks (`source is None`).
Walks are bounded: at most 8 nested indexes and 100,000 descriptors.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from actors.images.media import ANNOTATION_IMAGE_NAME, ANNOTATION_REF_NAME, OCI_INDEX
from actors.images.platforms import Matcher
from actors.preseed.archive.archive import MAX_JSON_BYTES, Archive, parse_json
from actors.preseed.archive.descriptors import (
    Descriptor,
    check_document,
    children,
    gc_labels,
    is_index,
    is_manifest,
    new_hasher,
    parse_descriptor,
)
from actors.preseed.archive.layout import BlobSource, Layout
from actors.preseed.errors import ArchiveError

__all__ = ["BlobWrite", "ImagePlan", "Plan", "make_plan"]

_MAX_DEPTH = 8
_MAX_DESCRIPTORS = 100_000


@dataclass(frozen=True, slots=True)
class BlobWrite:
    """One blob to put in containerd's content store."""

    #: The blob.
    descriptor: Descriptor
    #: Its bytes in the archive, or None when the archive lacks it and containerd must already hold
    #: it.
    source: BlobSource | None
    #: GC reference labels to set on it (empty for leaves).
    labels: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ImagePlan:
    """One image to create or update."""

    #: Image name.
    name: str
    #: The manifest or index it points to.
    target: Descriptor


@dataclass(frozen=True)
class Plan:
    """Everything an import will do in containerd."""

    #: Images to create or update, in index order (one per name).
    images: tuple[ImagePlan, ...]
    #: Blobs to write, children before parents.
    writes: tuple[BlobWrite, ...]
    #: What the walk left out or renamed.
    warnings: tuple[str, ...]
    #: Digest of the archive's top-level index document.
    index_digest: str


class _Walk:
    def __init__(self, archive: Archive, layout: Layout, matcher: Matcher, skip_missing: bool):
        self.archive = archive
        self.layout = layout
        self.matcher = matcher
        self.skip_missing = skip_missing
        self.parents: list[BlobWrite] = []
        self.leaves: dict[str, BlobWrite] = {}
        self.seen: set[str] = set()
        self.warnings: list[str] = []

    def kept(self, kids: list[Descriptor]) -> list[Descriptor]:
        return [k for k in kids if k.platform is None or self.matcher.match(k.platform)]

    def read(self, desc: Descriptor, source: BlobSource) -> bytes:
        kind = "manifest" if is_manifest(desc.media_type) else "index"
        if source.size > MAX_JSON_BYTES:
            raise ArchiveError(
                f"{kind} {desc.digest} is larger than the {MAX_JSON_BYTES >> 20} MiB limit "
                f"for json ({source.size} bytes)"
            )
        data = (
            source.data
            if source.data is not None
            else self.archive.pread(source.offset, source.size)
        )
        if not source.verified:
            hasher = new_hasher(desc.digest)
            hasher.update(data)
            if f"{desc.digest.split(':', 1)[0]}:{hasher.hexdigest()}" != desc.digest:
                raise ArchiveError(f"blob {desc.digest} does not match its digest")
        return data

    def visit(self, desc: Descriptor, depth: int) -> None:
        if desc.digest in self.seen:
            return
        self.seen.add(desc.digest)
        if len(self.seen) > _MAX_DESCRIPTORS:
            raise ArchiveError(f"archive references more than {_MAX_DESCRIPTORS} blobs")
        source = self.layout.lookup(desc)
        document = is_manifest(desc.media_type) or is_index(desc.media_type)
        if source is None:
            if self.skip_missing:
                self.warnings.append(f"blob {desc.digest} is not in the archive; skipped")
            elif document:
                kind = "manifest" if is_manifest(desc.media_type) else "index"
                raise ArchiveError(f"{kind} {desc.digest} is missing from the archive")
            else:
                self.leaves[desc.digest] = BlobWrite(desc, None)
            return
        if source.size != desc.size:
            raise ArchiveError(
                f"blob {desc.digest} has {source.size} bytes but its descriptor says {desc.size}"
            )
        if not document:
            self.leaves[desc.digest] = BlobWrite(desc, source)
            return
        if depth > _MAX_DEPTH:
            raise ArchiveError(f"indexes are nested more than {_MAX_DEPTH} deep")
        data = self.read(desc, source)
        doc = check_document(parse_json(data, f"blob {desc.digest}"), desc)
        kids = self.kept(children(doc, desc))
        if is_index(desc.media_type) and not kids:
            self.warnings.append(f"index {desc.digest} has no manifest for {self.matcher}")
        self.parents.append(
            BlobWrite(desc, BlobSource(-1, len(data), data, verified=True), gc_labels(kids))
        )
        for kid in kids:
            self.visit(kid, depth + 1)


def _image_name(desc: Descriptor, prefix: str, warnings: list[str]) -> str:
    name = (
        desc.annotations.get(ANNOTATION_IMAGE_NAME)
        or desc.annotations.get(ANNOTATION_REF_NAME)
        or ""
    )
    if not name:
        name = f"{prefix}@{desc.digest}"
        warnings.append(f"manifest {desc.digest} has no image name; imported as {name!r}")
    return name


def make_plan(
    archive: Archive,
    layout: Layout,
    matcher: Matcher,
    *,
    skip_missing: bool = False,
    digest_ref_prefix: str = "import",
) -> Plan:
    """Walk the archive's index as containerd's `client.Import` would.

    Raises:
        ArchiveError: a malformed document, digest or size mismatch, missing blob,
            or no image for the selected platform.
    """
    walk = _Walk(archive, layout, matcher, skip_missing)
    if not isinstance(layout.index, dict):
        raise ArchiveError("the image index is not a json object")
    top = Descriptor(OCI_INDEX, layout.index_digest, 0)
    check_document(layout.index, top)
    entries = layout.index.get("manifests") or []
    if not isinstance(entries, list):
        raise ArchiveError("the image index has manifests that are not a list")
    manifests = [
        parse_descriptor(m, f"manifest {i} of the image index") for i, m in enumerate(entries)
    ]
    images: dict[str, ImagePlan] = {}
    for desc in manifests:
        if not (is_manifest(desc.media_type) or is_index(desc.media_type)):
            raise ArchiveError(
                f"image {desc.digest} has media type {desc.media_type!r}, "
                "which is not a manifest or an index"
            )
        name = _image_name(desc, digest_ref_prefix, walk.warnings)
        if desc.platform is not None and not matcher.match(desc.platform):
            walk.warnings.append(
                f"image {name!r} is for {desc.platform}, not {matcher}; not imported"
            )
            continue
        earlier = images.get(name)
        if earlier is not None and earlier.target.digest != desc.digest:
            raise ArchiveError(
                f"image name {name!r} is given twice with different targets: "
                f"{earlier.target.digest} and {desc.digest}"
            )
        images[name] = ImagePlan(name, desc)
    if not images:
        if not manifests:
            raise ArchiveError("the archive holds no images")
        raise ArchiveError(f"no image in the archive is for {matcher}")
    for plan in images.values():
        walk.visit(plan.target, 0)
    leaves = sorted(walk.leaves.values(), key=lambda w: -w.descriptor.size)
    return Plan(
        images=tuple(images.values()),
        writes=tuple(leaves) + tuple(reversed(walk.parents)),
        warnings=tuple(walk.warnings),
        index_digest=layout.index_digest,
    )
