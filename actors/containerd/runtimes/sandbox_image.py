"""Is the pod sandbox ("pause") image there? Pods cannot start without it.

No registry is reachable at boot, so CRI can start a pod only if the sandbox
image is in namespace `k8s.io`: the agent's own (built from catatonit and
imported by the preseed), or one preseeded. `warn_if_sandbox_image_missing`
runs at the end of every preseed (`root.containerd.preseed`) and logs one
WARNING naming the image and where its tarball was expected; `status` shows the
latest such warning under the preseed node (`latest_sandbox_warning`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path

import grpc

from actors.containerd.api.client import ContainerdClient, code_of
from actors.containerd.api.errors import ContainerdError
from actors.containerd.core.version import ContainerdVersion
from actors.containerd.runtimes.handlers import default_sandbox_image
from messages.containerd.services.images.v1 import images_pb2

__all__ = [
    "CRI_NAMESPACE",
    "PRESEEDING_MARK",
    "SANDBOX_WARNING_MARK",
    "latest_sandbox_warning",
    "missing_sandbox_message",
    "warn_if_sandbox_image_missing",
]

#: containerd's namespace that Kubernetes (CRI) sees.
CRI_NAMESPACE = "k8s.io"
#: How the warning begins; `status` looks for it.
SANDBOX_WARNING_MARK = "sandbox image "
#: The preseed's first INFO line of a run begins with this; earlier warnings are stale.
PRESEEDING_MARK = "containerd "


def missing_sandbox_message(
    image: str, preseed_dir: Path, *, built: str | None = None, pause_missing: bool = False
) -> str:
    """The warning's text: what is missing, and how to make it present.

    Args:
        image: the sandbox image.
        preseed_dir: the preseed directory, where its tarball belongs.
        built: the tarball the agent built of it, when it is the built-in image.
        pause_missing: it is containerd's default because no pause binary was found.
    """
    where = str(preseed_dir / CRI_NAMESPACE)
    head = f"{SANDBOX_WARNING_MARK}{image!r} is missing from namespace {CRI_NAMESPACE!r}: pods "
    if built is not None:
        return head + (
            f"cannot start; the agent built it into {built!r} and its import failed "
            "(see the error above); it is imported again at the preseed's next start"
        )
    fix = f"preseed it: put its image tarball into {where!r}"
    if pause_missing:
        fix += (
            ", or install catatonit (Debian: apt-get install catatonit) and restart the "
            "agent, which then builds its own sandbox image"
        )
    return head + f"cannot start without a registry; {fix}"


def warn_if_sandbox_image_missing(
    client: ContainerdClient,
    configured: str,
    preseed_dir: Path,
    log: logging.Logger,
    *,
    built: str | None = None,
    pause_missing: bool = False,
) -> bool:
    """Logs one WARNING if the sandbox image is missing; returns whether it is present.

    Args:
        client: the preseed's containerd client.
        configured: `cri.sandbox_image`; "" means containerd's own default.
        preseed_dir: the preseed directory.
        log: the preseed node's logger.
        built: the tarball the agent built of it, when it is the built-in image.
        pause_missing: it is containerd's default because no pause binary was found.
    """
    image = configured or default_sandbox_image(ContainerdVersion.find(client.version()))
    request = images_pb2.GetImageRequest(name=image)
    try:
        client.call(client.images.Get, request, what="get image", namespace=CRI_NAMESPACE)
    except ContainerdError as e:
        if code_of(e) != grpc.StatusCode.NOT_FOUND:
            raise
        message = missing_sandbox_message(
            image, preseed_dir, built=built, pause_missing=pause_missing
        )
        log.warning("%s", message)
        return False
    return True


def latest_sandbox_warning(messages: Iterable[str]) -> str | None:
    """The sandbox warning of the preseed's latest run, from its leveled messages in order."""
    latest = None
    for message in messages:
        if message.startswith(PRESEEDING_MARK) and "preseeding from" in message:
            latest = None
        elif message.startswith(SANDBOX_WARNING_MARK):
            latest = message
    return latest
