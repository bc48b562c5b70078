"""Is the pod sandbox ("pause") image there? Pods cannot start without it.

No registry is reachable at boot, so CRI can start a pod only if the sandbox
image is in namespace `k8s.io`: the agent's own (built from catatonit and
imported by the preseed), or one preseeded. Whether it is, is a fact asked of containerd
(`sandbox_image_present`), never read from log text: `root.containerd.preseed`
asks at start, after each import and on each image event of containerd, and
reports a `SandboxImageState` to the root as the fact `SANDBOX_IMAGE_FACT`
(`actors.supervisor.process.api.report_fact`). `status`, `status --json` and the
metrics show the state from there; `check` asks containerd itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import grpc

from actors.containerd.api.client import ContainerdClient, code_of
from actors.containerd.api.errors import ContainerdError
from messages.containerd.services.images.v1 import images_pb2

__all__ = [
    "CRI_NAMESPACE",
    "SANDBOX_IMAGE_FACT",
    "SandboxImageState",
    "missing_sandbox_message",
    "sandbox_image_present",
]

#: containerd's namespace that Kubernetes (CRI) sees.
CRI_NAMESPACE = "k8s.io"
#: The name of the preseed node's fact about the sandbox image.
SANDBOX_IMAGE_FACT = "sandbox_image"


def missing_sandbox_message(
    image: str,
    tarball_dir: str,
    *,
    watched: bool = True,
    built: str | None = None,
    pause_missing: bool = False,
) -> str:
    """The warning that the sandbox image is missing, and what to do about it.

    Args:
        image: the sandbox image's name.
        tarball_dir: where its tarball belongs (`<preseed dir>/k8s.io`).
        watched: whether the preseed watches that directory (then a copy is enough).
        built: the tarball the agent built of it, when it is the built-in image.
        pause_missing: it is containerd's default because no pause binary was found.
    """
    head = f"sandbox image {image!r} is missing from namespace {CRI_NAMESPACE!r}: pods cannot "
    if built is not None:
        return head + (
            f"start; the agent built it into {built!r} and imports it again when it is "
            "deleted; if its import failed, `logs root.containerd.preseed` says why"
        )
    then = (
        "the preseed's watch imports it when the copy is complete; no restart is needed"
        if watched
        else "then restart the agent (the preseed's watch is off)"
    )
    fix = f"copy its image tarball into {tarball_dir!r}: {then}"
    if pause_missing:
        fix += (
            "; or install catatonit (Debian: apt-get install catatonit) and restart the "
            "agent, which then builds its own sandbox image"
        )
    return head + f"start without a registry; {fix}"


@dataclass(frozen=True, slots=True, kw_only=True)
class SandboxImageState:
    """Whether the sandbox image is present, as the preseed last found it."""

    #: The image's name, e.g. `registry.k8s.io/pause:3.6`.
    image: str
    #: Whether containerd has it in `CRI_NAMESPACE`.
    present: bool
    #: Where its tarball belongs: `<preseed dir>/k8s.io`.
    tarball_dir: str
    #: Whether the preseed watches `tarball_dir` (a copied tarball is then imported).
    watched: bool
    #: The tarball the agent built of it, when it is the built-in image; else None.
    built: str | None = None
    #: It is containerd's default because no pause binary was found.
    pause_missing: bool = False

    def to_fact(self) -> dict[str, Any]:
        """The fact's value (what `status --json` shows as `sandbox_image`)."""
        fact: dict[str, Any] = {
            "image": self.image,
            "namespace": CRI_NAMESPACE,
            "present": self.present,
            "tarball_dir": self.tarball_dir,
            "watched": self.watched,
        }
        if self.built is not None:
            fact["built"] = self.built
        if self.pause_missing:
            fact["pause_missing"] = True
        return fact

    @classmethod
    def from_fact(cls, value: object) -> SandboxImageState | None:
        """The state a `to_fact` value describes; None for anything else."""
        if not isinstance(value, dict):
            return None
        image, present = value.get("image"), value.get("present")
        tarball_dir, watched = value.get("tarball_dir"), value.get("watched", True)
        built, pause_missing = value.get("built"), value.get("pause_missing", False)
        if not (
            isinstance(image, str)
            and isinstance(present, bool)
            and isinstance(tarball_dir, str)
            and isinstance(watched, bool)
            and (built is None or isinstance(built, str))
            and isinstance(pause_missing, bool)
        ):
            return None
        return cls(
            image=image,
            present=present,
            tarball_dir=tarball_dir,
            watched=watched,
            built=built,
            pause_missing=pause_missing,
        )

    @property
    def warning(self) -> str | None:
        """The warning when the image is missing, else None."""
        if self.present:
            return None
        return missing_sandbox_message(
            self.image,
            self.tarball_dir,
            watched=self.watched,
            built=self.built,
            pause_missing=self.pause_missing,
        )


def sandbox_image_present(client: ContainerdClient, image: str) -> bool:
    """Whether containerd has the image `image` in namespace `k8s.io`.

    Raises:
        ContainerdError: containerd did not answer, or failed the lookup.
    """
    request = images_pb2.GetImageRequest(name=image)
    try:
        client.call(client.images.Get, request, what="get image", namespace=CRI_NAMESPACE)
    except ContainerdError as e:
        if code_of(e) != grpc.StatusCode.NOT_FOUND:
            raise
        return False
    return True
