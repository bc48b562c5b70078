"""Which sandbox image the agent gives CRI, the tarball it builds for its own, the spec the
preseed gets, the config key that names the pause binary, and the warning without one."""

from __future__ import annotations

import json
import os
import shutil
import tomllib
from pathlib import Path

import pytest

from actors.agent.daemon import AgentError
from actors.agent.prepare import prepare_state, version_cache
from actors.agent.root import preseed_spec
from actors.agent.sandbox import (
    USER_CONFIG,
    SandboxChoice,
    pause_archive,
    prepare_sandbox,
    sandbox_image_name,
)
from actors.config import AgentConfig, ConfigError, parse_config
from actors.containerd.core.spec import BuiltImageSpec
from actors.containerd.core.version import ContainerdVersion
from actors.containerd.runtimes.binary import containerd_version
from actors.containerd.runtimes.config_file import render_containerd_config
from actors.containerd.runtimes.handlers import pod_runtime_settings
from actors.containerd.runtimes.sandbox_image import missing_sandbox_message
from actors.images.pause import write_pause_archive

V16, V21 = ContainerdVersion(1, 6, 20), ContainerdVersion(2, 1, 9)
SRC = "/etc/agent.toml"


def fake_pause(tmp_path: Path, version: str = "0.1.7") -> Path:
    binary = tmp_path / "catatonit"
    binary.write_text(f"#!/bin/sh\necho 'tini version {version}_catatonit'\n")
    binary.chmod(0o755)
    return binary


def config(state: Path, text: str = "") -> AgentConfig:
    env = {"PATH": os.environ.get("PATH", os.defpath), "NODE_CONTAINERD_STATE": str(state)}
    return parse_config(text, source=SRC, env=env, check_binaries=False)


def test_the_default_is_the_nodes_own_image_built_into_the_state_dir(tmp_path: Path) -> None:
    cfg = config(tmp_path / "s", f'[cri]\npause_binary = "{fake_pause(tmp_path)}"\n')
    choice = prepare_sandbox(cfg, V16)
    archive = tmp_path / "s" / "images" / "pause.tar"
    again = write_pause_archive(fake_pause(tmp_path), tmp_path / "again.tar")
    assert choice == SandboxChoice(
        name="localhost/node-containerd/pause:0.1.7",
        built=BuiltImageSpec(name=again.name, archive=str(archive), digest=again.digest),
        pause_missing=False,
    )
    assert pause_archive(cfg) == archive
    assert archive.read_bytes() == (tmp_path / "again.tar").read_bytes()
    assert sandbox_image_name(cfg, V21) == choice.name  # whatever containerd's version


def test_an_image_named_in_the_config_is_used_and_nothing_is_built(tmp_path: Path) -> None:
    text = (
        f'[cri]\nsandbox_image = "example.test/pause:1"\npause_binary = "{fake_pause(tmp_path)}"\n'
    )
    cfg = config(tmp_path / "s", text)
    assert prepare_sandbox(cfg, V16) == SandboxChoice(
        name="example.test/pause:1", built=None, pause_missing=False
    )
    assert not pause_archive(cfg).exists()


def test_without_a_pause_binary_containerds_default_is_used_and_flagged(tmp_path: Path) -> None:
    cfg = config(tmp_path / "s", '[cri]\npause_binary = "no-such-pause"\n')
    assert cfg.cri.pause_binary is None
    assert prepare_sandbox(cfg, V16) == SandboxChoice(
        name="registry.k8s.io/pause:3.6", built=None, pause_missing=True
    )
    assert prepare_sandbox(cfg, V21).name == "registry.k8s.io/pause:3.10"
    assert sandbox_image_name(cfg, V16) == "registry.k8s.io/pause:3.6"


def test_with_the_users_own_containerd_config_the_agent_builds_nothing(tmp_path: Path) -> None:
    own = tmp_path / "containerd.toml"
    own.write_text(f'root = "{tmp_path}/r"\nstate = "{tmp_path}/t"\n')
    cfg = config(tmp_path / "s", f'[containerd]\nconfig = "{own}"\n')
    assert prepare_sandbox(cfg, V16) is USER_CONFIG
    assert not pause_archive(cfg).exists()


def test_cri_renders_the_chosen_image_where_each_version_reads_it(tmp_path: Path) -> None:
    cfg = config(tmp_path / "s", f'[cri]\npause_binary = "{fake_pause(tmp_path)}"\n')
    name = prepare_sandbox(cfg, V16).name
    for version in (V16, ContainerdVersion(1, 7, 24), V21):
        pods = pod_runtime_settings(cfg, version=version, sandbox_image=name)
        doc = tomllib.loads(render_containerd_config(cfg, version, pods))
        if version.config_version == 3:
            found = doc["plugins"]["io.containerd.cri.v1.images"]["pinned_images"]["sandbox"]
        else:
            found = doc["plugins"]["io.containerd.grpc.v1.cri"]["sandbox_image"]
        assert found == "localhost/node-containerd/pause:0.1.7", version


def test_the_preseed_spec_carries_the_built_image(tmp_path: Path) -> None:
    cfg = config(tmp_path / "s", f'[cri]\npause_binary = "{fake_pause(tmp_path)}"\n')
    choice = prepare_sandbox(cfg, V16)
    spec = preseed_spec(cfg, choice)
    assert spec is not None
    assert (spec.sandbox_image, spec.built_sandbox, spec.pause_missing) == (
        choice.name,
        choice.built,
        False,
    )


@pytest.mark.skipif(shutil.which("containerd") is None, reason="containerd: run scripts/setup")
def test_prepare_state_writes_the_tarball_and_a_config_that_names_it(tmp_path: Path) -> None:
    cfg = config(tmp_path / "s", f'[cri]\npause_binary = "{fake_pause(tmp_path)}"\n')
    choice = prepare_state(cfg)
    assert choice.built is not None and Path(choice.built.archive).is_file()
    assert '"localhost/node-containerd/pause:0.1.7"' in cfg.containerd.config.read_text()
    # What containerd said of its version is kept for the next start.
    held = json.loads(version_cache(cfg).read_text())
    assert str(containerd_version(cfg.containerd.binary)) in held["output"]


def test_a_pause_binary_that_cannot_be_read_stops_the_start_naming_it(tmp_path: Path) -> None:
    binary = fake_pause(tmp_path)
    cfg = config(tmp_path / "s", f'[cri]\npause_binary = "{binary}"\n')
    binary.unlink()
    with pytest.raises(AgentError) as e:
        prepare_state(cfg)
    assert str(e.value) == (
        f"cannot build the sandbox image from {str(binary)!r} into "
        f"{str(tmp_path / 's' / 'images' / 'pause.tar')!r}: No such file or directory"
    )


def test_a_pause_binary_path_that_is_not_executable_is_a_config_problem(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as e:
        config(tmp_path / "s", f'[cri]\npause_binary = "{tmp_path}/nope"\n')
    assert e.value.problems == [
        f"key 'cri.pause_binary' in {SRC}: '{tmp_path}/nope' is not an executable file; "
        "install catatonit (Debian: apt-get install catatonit) or set cri.pause_binary to its path"
    ]


def test_the_missing_sandbox_warning_says_how_to_make_it_present() -> None:
    where = "/s/preseed/k8s.io"
    head = "sandbox image 'registry.k8s.io/pause:3.6' is missing from namespace 'k8s.io': pods "
    image = "registry.k8s.io/pause:3.6"
    watch = "the preseed's watch imports it when the copy is complete; no restart is needed"
    assert missing_sandbox_message(image, where) == (
        head + f"cannot start without a registry; copy its image tarball into {where!r}: {watch}"
    )
    assert missing_sandbox_message(image, where, pause_missing=True) == (
        head + f"cannot start without a registry; copy its image tarball into {where!r}: "
        f"{watch}; or install catatonit (Debian: apt-get install catatonit) and restart the "
        "agent, which then builds its own sandbox image"
    )
    built = missing_sandbox_message("x:1", where, built="/s/images/pause.tar")
    assert built == (
        "sandbox image 'x:1' is missing from namespace 'k8s.io': pods cannot start; the agent "
        "built it into '/s/images/pause.tar' and imports it again when it is deleted; if its "
        "import failed, `logs root.containerd.preseed` says why"
    )
