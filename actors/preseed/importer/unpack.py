"""Unpacking an imported image's layers into a snapshotter, as `ctr images import` does.

`unpack_image` does containerd's unpacker's work through the gRPC API only
(Snapshots Prepare/Commit/Stat/Remove, Diff Apply and Content Update, all of
them in containerd 1.6 and 2.x):

1. read the image's target from the content store; for an index, pick the
   first manifest for the host platform (the one CRI runs);
2. read the config's `rootfs.diff_ids` and compute the chain IDs
   (`chain[0] = diff[0]`, `chain[i] = sha256(chain[i-1] + " " + diff[i])`);
3. for each layer, bottom up: skip it if the snapshot named by its chain ID
   exists; else Prepare an active snapshot `extract-<random>-<chain>` on the
   parent's chain ID, Apply the layer blob onto its mounts (the applied,
   uncompressed digest must be the layer's diff ID), and Commit it as the
   chain ID;
4. label the config blob `containerd.io/gc.ref.snapshot.<snapshotter>=<top
   chain ID>` — the reference that keeps the snapshots alive once the import's
   lease is gone — and each compressed layer `containerd.io/uncompressed`.

Every call carries the import's lease, so nothing is collected half-way; a
failure removes the active snapshot it prepared. CRI sees the image as unpacked
(its top chain ID exists in the snapshotter) and starts containers from it
without an unpack step.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass
from typing import Any

import grpc
from google.protobuf import field_mask_pb2  # type: ignore[import-untyped]

from actors.containerd.api.client import ContainerdClient, code_of
from actors.containerd.api.errors import ContainerdError
from actors.images.platforms import Matcher, Platform, host_platform
from actors.preseed.archive.descriptors import Descriptor, is_index, is_manifest, parse_descriptor
from actors.preseed.errors import ArchiveError
from messages.containerd.services.content.v1 import content_pb2 as cpb
from messages.containerd.services.diff.v1 import diff_pb2 as dpb
from messages.containerd.services.snapshots.v1 import snapshots_pb2 as spb
from messages.containerd.types import descriptor_pb2 as tpb

__all__ = ["DEFAULT_SNAPSHOTTER", "UnpackStats", "chain_ids", "unpack_image"]

DEFAULT_SNAPSHOTTER = "overlayfs"
_GC_SNAPSHOT = "containerd.io/gc.ref.snapshot."
_UNCOMPRESSED = "containerd.io/uncompressed"
_SNAPSHOT_REF = "containerd.io/snapshot.ref"
_MAX_DOCUMENT = 16 << 20


@dataclass(frozen=True, slots=True)
class UnpackStats:
    """What one unpack did."""

    #: Layers extracted into new snapshots.
    applied: int
    #: Layers whose snapshot (chain ID) already existed.
    present: int
    #: The chain ID of the image's top layer ("" for an image without layers).
    top: str


def chain_ids(diff_ids: list[str]) -> list[str]:
    """The chain IDs of a layer stack, from its diff IDs (OCI image spec)."""
    chain: list[str] = []
    for diff in diff_ids:
        if not chain:
            chain.append(diff)
        else:
            text = f"{chain[-1]} {diff}".encode()
            chain.append("sha256:" + hashlib.sha256(text).hexdigest())
    return chain


class _Session:
    """The calls of one unpack, with the namespace, lease and snapshotter bound."""

    def __init__(
        self, client: ContainerdClient, namespace: str, lease: str, snapshotter: str
    ) -> None:
        self.client = client
        self.namespace = namespace
        self.lease = lease
        self.snapshotter = snapshotter

    def call(self, method: Any, request: Any, what: str, timeout: float | None = None) -> Any:
        return self.client.call(
            method,
            request,
            what=what,
            namespace=self.namespace,
            lease=self.lease,
            timeout=timeout,
        )

    def read(self, desc: Descriptor) -> Any:
        if desc.size > _MAX_DOCUMENT:
            raise ArchiveError(f"blob {desc.digest} is too large to be a manifest or config")
        try:
            data = b"".join(
                r.data
                for r in self.client.content.Read(
                    cpb.ReadContentRequest(digest=desc.digest),
                    metadata=self.client.metadata(self.namespace, self.lease),
                    timeout=self.client.timeout,
                )
            )
        except grpc.RpcError as e:
            raise self.client.error(f"read of blob {desc.digest}", e) from e
        try:
            return json.loads(data)
        except ValueError as e:
            raise ArchiveError(f"blob {desc.digest} is not valid json: {e}") from None

    def exists(self, chain: str) -> bool:
        try:
            self.call(
                self.client.snapshots.Stat,
                spb.StatSnapshotRequest(snapshotter=self.snapshotter, key=chain),
                f"stat of snapshot {chain}",
            )
        except ContainerdError as e:
            if code_of(e) == grpc.StatusCode.NOT_FOUND:
                return False
            raise
        return True

    def label(self, digest: str, key: str, value: str) -> None:
        info = cpb.Info(digest=digest, labels={key: value})
        self.call(
            self.client.content.Update,
            cpb.UpdateRequest(
                info=info, update_mask=field_mask_pb2.FieldMask(paths=[f"labels.{key}"])
            ),
            f"label update of blob {digest}",
        )


def _manifest(session: _Session, target: Descriptor, platform: Platform) -> Descriptor:
    if is_manifest(target.media_type):
        return target
    if not is_index(target.media_type):
        raise ArchiveError(f"image target {target.digest} is not a manifest or an index")
    matcher = Matcher(platform)
    doc = session.read(target)
    for i, item in enumerate(doc.get("manifests") or []):
        desc = parse_descriptor(item, f"manifest {i} of index {target.digest}")
        if desc.platform is not None and not matcher.match(desc.platform):
            continue
        if is_index(desc.media_type):
            return _manifest(session, desc, platform)
        if is_manifest(desc.media_type):
            return desc
    raise ArchiveError(f"index {target.digest} has no manifest for {platform}")


def _layers(
    session: _Session, manifest: Descriptor
) -> tuple[Descriptor, list[Descriptor], list[str]]:
    doc = session.read(manifest)
    config = parse_descriptor(doc.get("config"), f"config of manifest {manifest.digest}")
    layers = [
        parse_descriptor(layer, f"layer {i} of manifest {manifest.digest}")
        for i, layer in enumerate(doc.get("layers") or [])
    ]
    rootfs = session.read(config).get("rootfs") or {}
    diff_ids = rootfs.get("diff_ids") or []
    if len(diff_ids) != len(layers) or not all(isinstance(d, str) for d in diff_ids):
        raise ArchiveError(
            f"config {config.digest} lists {len(diff_ids)} diff ids for {len(layers)} layers"
        )
    return config, layers, list(diff_ids)


def _apply(session: _Session, layer: Descriptor, diff_id: str, chain: str, parent: str) -> None:
    key = f"extract-{secrets.token_hex(6)}-{chain}"
    prepared = session.call(
        session.client.snapshots.Prepare,
        spb.PrepareSnapshotRequest(
            snapshotter=session.snapshotter, key=key, parent=parent, labels={_SNAPSHOT_REF: chain}
        ),
        f"prepare of snapshot {key!r}",
    )
    try:
        applied = session.call(
            session.client.diff.Apply,
            dpb.ApplyRequest(
                diff=tpb.Descriptor(
                    media_type=layer.media_type, digest=layer.digest, size=layer.size
                ),
                mounts=prepared.mounts,
            ),
            f"apply of layer {layer.digest}",
            timeout=max(session.client.timeout, layer.size / (4 << 20)),
        ).applied
        if applied.digest != diff_id:
            raise ArchiveError(
                f"layer {layer.digest} unpacks to {applied.digest}, but its config says {diff_id}"
            )
        session.call(
            session.client.snapshots.Commit,
            spb.CommitSnapshotRequest(snapshotter=session.snapshotter, name=chain, key=key),
            f"commit of snapshot {chain}",
        )
    except BaseException as e:
        try:
            session.call(
                session.client.snapshots.Remove,
                spb.RemoveSnapshotRequest(snapshotter=session.snapshotter, key=key),
                f"remove of snapshot {key!r}",
            )
        except ContainerdError:
            pass
        if isinstance(e, ContainerdError) and code_of(e) == grpc.StatusCode.ALREADY_EXISTS:
            return  # another unpack committed the same chain first
        raise
    if layer.digest != diff_id:
        session.label(layer.digest, _UNCOMPRESSED, diff_id)


def unpack_image(
    client: ContainerdClient,
    namespace: str,
    target: Descriptor,
    *,
    lease: str,
    snapshotter: str = DEFAULT_SNAPSHOTTER,
    platform: Platform | None = None,
) -> UnpackStats:
    """Unpack an image's layers for one platform into a snapshotter.

    Args:
        client: The containerd holding the image's content.
        namespace: Its namespace.
        target: The image's target (a manifest or an index).
        lease: The lease every snapshot and label is made under.
        snapshotter: The snapshotter to unpack into (CRI's, "overlayfs" by default).
        platform: The platform of the manifest chosen from an index (default: the host's).

    Raises:
        ArchiveError: the image's documents are inconsistent (diff IDs, digests).
        ContainerdError: containerd refused a call.
    """
    session = _Session(client, namespace, lease, snapshotter)
    manifest = _manifest(session, target, platform or host_platform())
    config, layers, diff_ids = _layers(session, manifest)
    chains = chain_ids(diff_ids)
    applied = present = 0
    for i, (layer, chain) in enumerate(zip(layers, chains, strict=True)):
        if session.exists(chain):
            present += 1
            continue
        _apply(session, layer, diff_ids[i], chain, chains[i - 1] if i else "")
        applied += 1
    top = chains[-1] if chains else ""
    if top:
        session.label(config.digest, _GC_SNAPSHOT + snapshotter, top)
    return UnpackStats(applied=applied, present=present, top=top)
