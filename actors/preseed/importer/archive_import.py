"""Importing one archive into containerd: `client.Import` + `archive.ImportIndex`, in Python.

`import_archive` does, in order:

1. open the file safely and index it as a tar (decompressing gzip/zstd first);
2. check its images before anything is sent: for an OCI layout, walk `index.json`
   for the selected platforms, verifying every manifest and index read and
   computing the GC labels (the plan); for a `docker save` archive, check
   `manifest.json`, the files it names, the configs and the tags;
3. reclaim the leases of imports that died (see `leases`), create a lease that
   expires on its own after 24 h, and write every blob under it (a docker
   archive's files are hashed as they are written, then its manifests and index
   are synthesised and planned);
4. create each image, or update its target (and our labels) if it exists;
5. with `ImportOptions.unpack`, unpack each image for the host platform into
   the snapshotter (see `unpack`), under the same lease;
6. delete the lease; the GC labels now keep every blob (and snapshot) alive
   from the images.

The two formats are planned differently (`_OciPlan`: everything is known
before writing; `_DockerPlan`: the files are hashed as they are written, then
the manifests are synthesised and planned); both give a final `Plan` and the
write statistics, so the rest of the import does not care which it was.

On any failure nothing of the archive is left behind: unfinished ingests are
aborted, images created are deleted and images updated get their old target and
labels back, and the lease is deleted. Every failure is raised as a
`PreseedError` naming the file as `<namespace>/<file name>`; no other exception
escapes for any file content.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import grpc
from google.protobuf import field_mask_pb2  # type: ignore[import-untyped]

from actors.containerd.api.client import ContainerdClient, code_of
from actors.containerd.api.errors import ContainerdError
from actors.fs_names import display
from actors.images.media import DOCKER_LAYER, DOCKER_LAYER_GZIP
from actors.images.platforms import parse_platform
from actors.preseed.archive.archive import Archive, open_archive
from actors.preseed.archive.descriptors import Descriptor
from actors.preseed.archive.docker import DockerArchive, read_docker_manifest, synthesise
from actors.preseed.archive.names import validate_namespace
from actors.preseed.archive.oci import LAYOUT_FILE, read_oci_layout
from actors.preseed.archive.tarindex import TarEntry
from actors.preseed.errors import ArchiveError, ContainerdFailed, PreseedError
from actors.preseed.importer.leases import create_lease, delete_lease, reclaim_dead_leases
from actors.preseed.importer.options import ImportOptions
from actors.preseed.importer.plan import ImagePlan, Plan, make_plan
from actors.preseed.importer.results import ImportedImage, ImportResult
from actors.preseed.importer.unpack import unpack_image
from actors.preseed.importer.writer import ContentWriter, WriteStats
from messages.containerd.services.content.v1 import content_pb2 as cpb
from messages.containerd.services.images.v1 import images_pb2 as ipb
from messages.containerd.types import descriptor_pb2

__all__ = ["display_name", "import_archive", "unpack_images"]

_UNCOMPRESSED = "containerd.io/uncompressed"
_PROGRESS_INTERVAL = 0.5
_LOG = logging.getLogger("actors.preseed")


def display_name(namespace: str, path: str | os.PathLike[str]) -> str:
    """How a file is named in messages: `<namespace>/<file name>`, in `fs_names.display` form."""
    return f"{display(namespace)}/{display(os.path.basename(os.fspath(path)))}"


def _find_compressed(
    client: ContainerdClient, namespace: str
) -> Callable[[Sequence[str]], Mapping[str, Descriptor]]:
    def find(digests: Sequence[str]) -> Mapping[str, Descriptor]:
        wanted = set(digests)
        filters = [f'labels."{_UNCOMPRESSED}"=={d}' for d in digests]
        found: dict[str, Descriptor] = {}
        try:
            stream = client.content.List(
                cpb.ListContentRequest(filters=filters),
                metadata=client.metadata(namespace),
                timeout=client.timeout,
            )
            for reply in stream:
                for info in reply.info:
                    source = info.labels.get(_UNCOMPRESSED, "")
                    if source in wanted and source not in found:
                        head = b"".join(
                            r.data
                            for r in client.content.Read(
                                cpb.ReadContentRequest(digest=info.digest, offset=0, size=10),
                                metadata=client.metadata(namespace),
                                timeout=client.timeout,
                            )
                        )
                        compressed = head.startswith((b"\x1f\x8b\x08", b"\x28\xb5\x2f\xfd"))
                        media = DOCKER_LAYER_GZIP if compressed else DOCKER_LAYER
                        found[source] = Descriptor(media, info.digest, info.size)
        except grpc.RpcError as e:
            raise client.error("the search for compressed layers", e) from e
        return found

    return find


def _target(desc: Descriptor) -> descriptor_pb2.Descriptor:
    return descriptor_pb2.Descriptor(
        media_type=desc.media_type,
        digest=desc.digest,
        size=desc.size,
        annotations=dict(desc.annotations),
    )


class _Images:
    """Creates or updates images, remembering how to undo it."""

    def __init__(self, client: ContainerdClient, namespace: str, labels: Mapping[str, str]):
        self.client = client
        self.namespace = namespace
        self.labels = dict(labels)
        self.undo: list[tuple[str, ipb.Image | None]] = []

    def get(self, name: str) -> ipb.Image | None:
        try:
            reply: ipb.GetImageResponse = self.client.call(
                self.client.images.Get,
                ipb.GetImageRequest(name=name),
                what=f"get of image {name!r}",
                namespace=self.namespace,
            )
        except ContainerdError as e:
            if code_of(e) == grpc.StatusCode.NOT_FOUND:
                return None
            raise
        return reply.image

    def update(self, image: ipb.Image, keys: Sequence[str]) -> None:
        mask = field_mask_pb2.FieldMask(paths=["target", *(f"labels.{k}" for k in keys)])
        self.client.call(
            self.client.images.Update,
            ipb.UpdateImageRequest(image=image, update_mask=mask),
            what=f"update of image {image.name!r}",
            namespace=self.namespace,
        )

    def apply(self, plan: ImagePlan) -> ImportedImage:
        image = ipb.Image(name=plan.name, labels=self.labels, target=_target(plan.target))
        previous = self.get(plan.name)
        if previous is None:
            try:
                self.client.call(
                    self.client.images.Create,
                    ipb.CreateImageRequest(image=image),
                    what=f"create of image {plan.name!r}",
                    namespace=self.namespace,
                )
            except ContainerdError as e:
                if code_of(e) != grpc.StatusCode.ALREADY_EXISTS:
                    raise
                previous = self.get(plan.name)
                self.update(image, list(self.labels))
        else:
            self.update(image, list(self.labels))
        self.undo.append((plan.name, previous))
        t = plan.target
        return ImportedImage(
            name=plan.name, target_digest=t.digest, media_type=t.media_type, size=t.size
        )

    def rollback(self) -> None:
        for name, previous in reversed(self.undo):
            try:
                if previous is None:
                    self.client.call(
                        self.client.images.Delete,
                        ipb.DeleteImageRequest(name=name),
                        what=f"delete of image {name!r}",
                        namespace=self.namespace,
                    )
                else:
                    restored = ipb.Image(
                        name=name,
                        target=previous.target,
                        labels={k: previous.labels[k] for k in self.labels if k in previous.labels},
                    )
                    self.update(restored, list(self.labels))
            except ContainerdError:
                pass
        self.undo.clear()


def _docker_files(docker: DockerArchive, options: ImportOptions) -> list[TarEntry]:
    """The files of the images the options select (the others are not written)."""
    matcher = options.matcher()
    wanted = [i for i in docker.images if matcher.match(i.platform)]
    if not wanted:
        raise ArchiveError(f"no image in the archive is for {matcher}")
    offsets = {e.offset for image in wanted for e in (image.config, *image.layers)}
    return [e for e in docker.files if e.offset in offsets]


@dataclass(frozen=True)
class _OciPlan:
    """An OCI layout, planned before anything is sent: the plan is final."""

    plan: Plan
    total: int

    def write(self, writer: ContentWriter, tick: Callable[[], None]) -> tuple[Plan, WriteStats]:
        return self.plan, writer.write_all(self.plan.writes, tick, _PROGRESS_INTERVAL)


@dataclass(frozen=True)
class _DockerPlan:
    """A `docker save` archive: its files are hashed as they are written, then planned."""

    archive: Archive
    docker: DockerArchive
    files: tuple[TarEntry, ...]
    total: int
    options: ImportOptions
    find_compressed: Callable[[Sequence[str]], Mapping[str, Descriptor]]

    def write(self, writer: ContentWriter, tick: Callable[[], None]) -> tuple[Plan, WriteStats]:
        digests = writer.hash_and_write(list(self.files), tick, _PROGRESS_INTERVAL)
        layout = synthesise(self.archive, self.docker, digests, self.find_compressed)
        plan = make_plan(
            self.archive,
            layout,
            self.options.matcher(),
            skip_missing=self.options.skip_missing,
            digest_ref_prefix=self.options.digest_ref_prefix,
        )
        return plan, writer.write_all(plan.writes, tick, _PROGRESS_INTERVAL)


def _prepare(
    client: ContainerdClient, archive: Archive, namespace: str, options: ImportOptions
) -> _OciPlan | _DockerPlan:
    """Check the archive's images before anything is sent."""
    if archive.index.lookup(LAYOUT_FILE) is not None:
        plan = make_plan(
            archive,
            read_oci_layout(archive),
            options.matcher(),
            skip_missing=options.skip_missing,
            digest_ref_prefix=options.digest_ref_prefix,
        )
        total = sum(w.descriptor.size for w in plan.writes if w.source is not None)
        return _OciPlan(plan, total)
    docker = read_docker_manifest(archive)
    files = tuple(_docker_files(docker, options))
    return _DockerPlan(
        archive,
        docker,
        files,
        sum(e.size for e in files),
        options,
        _find_compressed(client, namespace),
    )


def unpack_images(
    client: ContainerdClient,
    namespace: str,
    images: Sequence[ImportedImage],
    options: ImportOptions,
    lease: str,
) -> tuple[int, int]:
    """Unpack each image for the host platform; return (layers applied, layers present)."""
    applied = present = 0
    platform = parse_platform(options.platform) if options.platform else None
    for image in images:
        target = Descriptor(image.media_type, image.target_digest, image.size)
        stats = unpack_image(
            client,
            namespace,
            target,
            lease=lease,
            snapshotter=options.snapshotter,
            platform=platform,
        )
        applied += stats.applied
        present += stats.present
    return applied, present


def _import(
    client: ContainerdClient,
    path: str | os.PathLike[str],
    namespace: str,
    options: ImportOptions,
    progress: Callable[[int, int], None] | None,
    file: str,
) -> ImportResult:
    started = time.monotonic()
    with open_archive(path, temp_dir=options.temp_dir) as archive:
        prepared = _prepare(client, archive, namespace, options)
        total = prepared.total
        for lease_id in reclaim_dead_leases(client, namespace):
            _LOG.info("reclaimed lease %r of an import that died", lease_id)
        lease = create_lease(client, namespace, file)
        writer = ContentWriter(client, namespace, lease, archive)
        images = _Images(client, namespace, options.labels)

        def tick() -> None:
            if progress is not None:
                progress(min(writer.stats.bytes_done, total), total)

        try:
            plan, stats = prepared.write(writer, tick)
            imported = tuple(images.apply(p) for p in plan.images)
            unpacked = (
                unpack_images(client, namespace, imported, options, lease)
                if options.unpack
                else (0, 0)
            )
        except BaseException:
            writer.stop.set()
            writer.abort_open()
            images.rollback()
            delete_lease(client, namespace, lease)
            raise
        warnings = list(plan.warnings)
        problem = delete_lease(client, namespace, lease)
        if problem:
            warnings.append(problem)
        if progress is not None:
            progress(total, total)
        return ImportResult(
            path=os.fspath(path),
            namespace=namespace,
            images=imported,
            bytes_sent=stats.bytes_sent,
            blobs_written=stats.blobs_written,
            blobs_skipped=stats.blobs_skipped,
            unchanged=False,
            index_digest=plan.index_digest,
            warnings=tuple(warnings),
            size=archive.source_size,
            mtime_ns=archive.source_mtime_ns,
            seconds=time.monotonic() - started,
            layers_unpacked=unpacked[0],
            layers_present=unpacked[1],
        )


def import_archive(
    client: ContainerdClient,
    path: str | os.PathLike[str],
    *,
    namespace: str,
    options: ImportOptions = ImportOptions(),  # noqa: B008 (frozen, never mutated)
    progress: Callable[[int, int], None] | None = None,
) -> ImportResult:
    """Import one image archive into a containerd namespace.

    Args:
        client: The containerd to import into.
        path: An OCI image layout or `docker save` tarball, possibly gzip- or
            zstd-compressed.
        namespace: The containerd namespace (e.g. "k8s.io").
        options: Platforms, missing blobs, image labels.
        progress: Called with (bytes done, bytes total) about twice a second while
            blobs are written, and once at the end.

    Returns:
        The images created or updated and what was sent.

    Raises:
        PreseedError: for every failure, naming the file as `<namespace>/<file name>`
            (`ContainerdFailed`, a subclass, when containerd itself failed).
    """
    file = display_name(namespace, path)
    try:
        validate_namespace(namespace)
    except ValueError as e:
        raise PreseedError.for_file(file, str(e)) from None
    try:
        return _import(client, path, namespace, options, progress, file)
    except ContainerdError as e:
        raise ContainerdFailed.for_file(file, str(e)) from e
    except ContainerdFailed as e:
        raise ContainerdFailed.for_file(file, e.cause) from e
    except PreseedError as e:
        raise PreseedError.for_file(file, e.cause, incomplete=e.incomplete) from e
    except OSError as e:
        raise PreseedError.for_file(file, f"cannot read the archive: {e.strerror or e}") from e
    except Exception as e:  # a bug must still name the file, and be a PreseedError
        raise PreseedError.for_file(file, f"internal error: {type(e).__name__}: {e}") from e
