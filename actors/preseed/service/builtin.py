"""The images the agent built itself (the sandbox image), imported before the preseed directory.

The agent writes the built-in sandbox image's tarball before the tree starts
(`actors.agent.sandbox`); `import_built_image` puts it into containerd's `k8s.io`
namespace at every start of `root.containerd.preseed`, first of all:

- an image of that name whose target is the built manifest is left as it is
  (only its pins are put back if someone took them off): a restart costs one
  `Images.Get`;
- otherwise the tarball is imported with the project's importer
  (`import_archive`: blobs containerd has are not sent), which creates the image
  or moves an image of that name to the new target (a new pause binary);
- it is always pinned (`io.cri-containerd.pinned=pinned`, and our
  `node-containerd/preseeded` label naming its tarball), whatever `[preseed] pin`
  says, as a preseeded sandbox image is. `Preseeder.settle` never unpins it: it
  keeps the sandbox image's pins.
"""

from __future__ import annotations

import dataclasses
import logging

import grpc

from actors.containerd.api.client import ContainerdClient, code_of
from actors.containerd.api.errors import ContainerdError
from actors.containerd.core.spec import BuiltImageSpec
from actors.preseed.importer.archive_import import import_archive
from actors.preseed.importer.options import ImportOptions
from actors.preseed.importer.results import ImportResult
from actors.preseed.service.pins import PINNED_LABEL, PINNED_VALUE, pin_image, pin_labels
from messages.containerd.services.images.v1 import images_pb2 as ipb

__all__ = ["BUILT_NAMESPACE", "import_built_image"]

#: The namespace built images go into: the one Kubernetes (CRI) sees.
BUILT_NAMESPACE = "k8s.io"


def _current(client: ContainerdClient, name: str) -> ipb.Image | None:
    """The image `name` in `BUILT_NAMESPACE`, or None."""
    try:
        reply = client.call(
            client.images.Get,
            ipb.GetImageRequest(name=name),
            what=f"image {name!r}",
            namespace=BUILT_NAMESPACE,
        )
    except ContainerdError as e:
        if code_of(e) == grpc.StatusCode.NOT_FOUND:
            return None
        raise
    image: ipb.Image = reply.image
    return image


def import_built_image(
    client: ContainerdClient,
    built: BuiltImageSpec,
    options: ImportOptions,
    log: logging.Logger,
) -> ImportResult | None:
    """Imports `built` into `k8s.io` and pins it, unless it is there with the same target.

    Args:
        client: the preseed's containerd client.
        built: the image and its tarball.
        options: the preseed's import options; the pins are added to its labels.
        log: the preseed node's logger (one INFO line either way).

    Returns:
        The import's result, or None when the image was there already.

    Raises:
        PreseedError: the import failed (naming the tarball as `k8s.io/<file>`).
        ContainerdError: containerd failed the lookup or the pin.
    """
    current = _current(client, built.name)
    if current is not None and current.target.digest == built.digest:
        if current.labels.get(PINNED_LABEL) != PINNED_VALUE:
            pin_image(client, BUILT_NAMESPACE, built.name, built.archive)
        log.info("sandbox image %r is present (%s), built by the agent", built.name, built.digest)
        return None
    labels = {**options.labels, **pin_labels(built.archive)}
    result = import_archive(
        client,
        built.archive,
        namespace=BUILT_NAMESPACE,
        options=dataclasses.replace(options, labels=labels),
    )
    log.info(
        "imported sandbox image %r (%s) built by the agent from %r in %.0f ms, pinned",
        built.name,
        built.digest,
        built.archive,
        result.seconds * 1000,
    )
    return result
