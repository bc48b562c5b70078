"""Pins: the labels that keep preseeded images from kubelet's image GC, and their cleanup.

An image imported from the preseed directory with `[preseed] pin` on gets two
labels: `io.cri-containerd.pinned=pinned` (honoured by CRI from containerd 1.7)
and our own `PRESEEDED_LABEL`, whose value names the tarball
(`<namespace>/<file name>`). The sandbox image is pinned whatever `pin` says.

`release_stale_pins` is the cleanup, run at start and after every change of
the preseed directory: every image that carries *our* label but is no longer
provided by a tarball present in the directory loses both labels. Images we
did not label are never touched, even if someone else pinned them.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

from google.protobuf import field_mask_pb2  # type: ignore[import-untyped]

from actors.containerd.api.client import ContainerdClient
from messages.containerd.services.images.v1 import images_pb2 as ipb

__all__ = [
    "PINNED_LABEL",
    "PINNED_VALUE",
    "PRESEEDED_LABEL",
    "pin_image",
    "pin_labels",
    "release_stale_pins",
]

PINNED_LABEL = "io.cri-containerd.pinned"
PINNED_VALUE = "pinned"
PRESEEDED_LABEL = "node-containerd/preseeded"


def pin_labels(file: str) -> Mapping[str, str]:
    """The labels that pin the images of one tarball (`file` as `<namespace>/<name>`)."""
    return {PINNED_LABEL: PINNED_VALUE, PRESEEDED_LABEL: file[:1024]}


def pin_image(client: ContainerdClient, namespace: str, name: str, file: str) -> None:
    """Add our two labels to one image (leaving its other labels as they are).

    Raises:
        ContainerdError: containerd refused the update.
    """
    labels = dict(pin_labels(file))
    mask = field_mask_pb2.FieldMask(paths=[f"labels.{k}" for k in labels])
    # The image is sent with its target: containerd 1.7 dereferences it in every
    # Update, whatever the mask says, and crashes on an image without one.
    current = client.call(
        client.images.Get,
        ipb.GetImageRequest(name=name),
        what=f"image {name!r}",
        namespace=namespace,
    ).image
    client.call(
        client.images.Update,
        ipb.UpdateImageRequest(
            image=ipb.Image(name=name, labels=labels, target=current.target), update_mask=mask
        ),
        what=f"pin of image {name!r}",
        namespace=namespace,
    )


def release_stale_pins(
    client: ContainerdClient, namespace: str, keep: Collection[str]
) -> list[str]:
    """Remove our two labels from every image of ours in `namespace` not named in `keep`.

    Returns:
        The names of the images unpinned, sorted.

    Raises:
        ContainerdError: containerd failed the listing or an update.
    """
    reply = client.call(
        client.images.List,
        ipb.ListImagesRequest(filters=[f'labels."{PRESEEDED_LABEL}"']),
        what="image list",
        namespace=namespace,
    )
    targets = {
        image.name: image.target
        for image in reply.images
        if PRESEEDED_LABEL in image.labels and image.name not in keep
    }
    stale = sorted(targets)
    mask = field_mask_pb2.FieldMask(paths=[f"labels.{PINNED_LABEL}", f"labels.{PRESEEDED_LABEL}"])
    for name in stale:
        # With its target: containerd 1.7 crashes on an Update of an image without one.
        client.call(
            client.images.Update,
            ipb.UpdateImageRequest(
                image=ipb.Image(name=name, target=targets[name]), update_mask=mask
            ),
            what=f"unpin of image {name!r}",
            namespace=namespace,
        )
    return stale
