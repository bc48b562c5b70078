"""The sandbox image the agent built, imported by the preseed into a real containerd:
imported and pinned once, then found present (and re-pinned) rather than imported again,
moved to a new target when the binary changes, and never unpinned by the settle."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from actors.containerd.api.client import ContainerdClient
from actors.containerd.core.spec import BuiltImageSpec
from actors.images.pause import write_pause_archive
from actors.preseed.importer.options import ImportOptions
from actors.preseed.service.builtin import import_built_image
from actors.preseed.service.pins import PINNED_LABEL, PRESEEDED_LABEL
from actors.preseed.service.preseeder import Preseeder
from messages.containerd.services.images.v1 import images_pb2 as ipb
from tests.support.containerd_daemon import ContainerdDaemon

pytestmark = [pytest.mark.timeout(120), pytest.mark.containerd]

NAME = "localhost/node-containerd/pause:0.1.7"


class _Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def _built(tmp_path: Path, flavour: str) -> BuiltImageSpec:
    """The pause image of a fake pause binary that says version 0.1.7."""
    binary = tmp_path / f"pause-{flavour}"
    binary.write_text(f"#!/bin/sh\n# {flavour}\necho 'tini version 0.1.7_catatonit'\n")
    binary.chmod(0o755)
    archive = tmp_path / f"{flavour}.tar"
    image = write_pause_archive(binary, archive)
    assert image.name == NAME
    return BuiltImageSpec(name=image.name, archive=str(archive), digest=image.digest)


def _image(client: ContainerdClient, name: str) -> ipb.Image:
    reply = client.call(
        client.images.Get, ipb.GetImageRequest(name=name), what="get", namespace="k8s.io"
    )
    image: ipb.Image = reply.image
    return image


def test_the_built_image_is_imported_pinned_then_found_present_and_repinned(
    containerd: ContainerdDaemon, tmp_path: Path
) -> None:
    log = logging.getLogger(f"test.builtin.{id(tmp_path)}")
    log.setLevel(logging.INFO)
    lines = _Lines()
    log.addHandler(lines)
    built = _built(tmp_path, "a")
    with ContainerdClient(containerd.address) as client:
        containerd.ctr("images", "rm", NAME, namespace="k8s.io", check=False)
        result = import_built_image(client, built, ImportOptions(labels={"team": "x"}), log)
        assert result is not None and [i.name for i in result.images] == [NAME]
        image = _image(client, NAME)
        assert image.target.digest == built.digest
        ours = {k: v for k, v in image.labels.items() if k != "io.cri-containerd.image"}
        assert ours == {
            "team": "x",
            PINNED_LABEL: "pinned",
            PRESEEDED_LABEL: built.archive,
        }

        assert import_built_image(client, built, ImportOptions(), log) is None
        containerd.ctr("images", "label", NAME, f"{PINNED_LABEL}=", namespace="k8s.io")
        assert PINNED_LABEL not in _image(client, NAME).labels
        assert import_built_image(client, built, ImportOptions(), log) is None
        assert _image(client, NAME).labels[PINNED_LABEL] == "pinned"

        preseeder = Preseeder(
            client,
            options=ImportOptions(),
            record_path=tmp_path / "record.json",
            log=log,
            sandbox_image=NAME,
        )
        preseeder.settle([])  # no tarball of the directory holds it: still pinned
        assert _image(client, NAME).labels[PINNED_LABEL] == "pinned"
    present = f"sandbox image {NAME!r} is present ({built.digest}), built by the agent"
    assert lines.lines[1:] == [present, present]
    assert lines.lines[0].startswith(
        f"imported sandbox image {NAME!r} ({built.digest}) built by the agent from "
        f"{built.archive!r} in "
    )


def test_a_new_pause_binary_moves_the_image_to_its_new_target(
    containerd: ContainerdDaemon, tmp_path: Path
) -> None:
    log = logging.getLogger("test.builtin.moved")
    first, second = _built(tmp_path, "first"), _built(tmp_path, "second")
    assert first.digest != second.digest
    with ContainerdClient(containerd.address) as client:
        import_built_image(client, first, ImportOptions(), log)
        assert _image(client, NAME).target.digest == first.digest
        assert import_built_image(client, second, ImportOptions(), log) is not None
        image = _image(client, NAME)
        assert image.target.digest == second.digest
        assert image.labels[PRESEEDED_LABEL] == second.archive
