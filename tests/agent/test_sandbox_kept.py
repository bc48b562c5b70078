"""The built-in sandbox image is built once and kept: a later start on the same state
directory uses its tarball as it is while the binary, the tarball and the agent are
the ones it was built from and with."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from actors.agent.sandbox import pause_archive, prepare_sandbox
from actors.config import AgentConfig, parse_config
from actors.containerd.core.version import ContainerdVersion
from tests.support.project import REPO, python_env

V17 = ContainerdVersion(1, 7, 24)


def _pause(tmp_path: Path, version: str = "0.1.7") -> Path:
    """A pause binary stand-in that counts how often it is asked its version."""
    binary = tmp_path / "catatonit"
    runs = tmp_path / "runs"
    binary.write_text(f"#!/bin/sh\necho run >> {runs}\necho 'tini version {version}_catatonit'\n")
    binary.chmod(0o755)
    return binary


def _runs(tmp_path: Path) -> int:
    runs = tmp_path / "runs"
    return len(runs.read_text().splitlines()) if runs.exists() else 0


def _env(tmp_path: Path) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", os.defpath),
        "NODE_CONTAINERD_STATE": str(tmp_path / "s"),
    }


def _text(binary: Path | str) -> str:
    return f'[cri]\npause_binary = "{binary}"\n'


def _config(tmp_path: Path, binary: Path) -> AgentConfig:
    return parse_config(_text(binary), source="t", env=_env(tmp_path), check_binaries=False)


def _identity(path: Path) -> tuple[int, int]:
    st = path.stat()
    return st.st_ino, st.st_mtime_ns


def test_a_second_start_keeps_the_tarball_and_asks_the_binary_nothing(tmp_path: Path) -> None:
    cfg = _config(tmp_path, _pause(tmp_path))
    first = prepare_sandbox(cfg, V17)
    archive = pause_archive(cfg)
    built = _identity(archive)
    assert _runs(tmp_path) == 1
    again = prepare_sandbox(cfg, V17)
    assert again == first
    assert _identity(archive) == built  # not written again
    assert _runs(tmp_path) == 1
    held = json.loads(archive.with_suffix(".json").read_text())
    assert first.built is not None and held["digest"] == first.built.digest


def test_a_changed_binary_a_touched_tarball_or_a_torn_record_builds_it_again(
    tmp_path: Path,
) -> None:
    binary = _pause(tmp_path)
    cfg = _config(tmp_path, binary)
    first = prepare_sandbox(cfg, V17)
    archive = pause_archive(cfg)
    record = archive.with_suffix(".json")
    # An upgraded pause binary: another name, built again.
    binary.write_text(binary.read_text().replace("0.1.7", "0.1.8"))
    upgraded = prepare_sandbox(cfg, V17)
    assert upgraded.name == "localhost/node-containerd/pause:0.1.8" != first.name
    # A tarball someone replaced, removed, or a record torn or of another agent.
    damages = (
        lambda: archive.write_bytes(archive.read_bytes()),
        lambda: archive.unlink(),
        lambda: record.write_text("{"),
        lambda: record.write_text(record.read_text().replace('"agent": "', '"agent": "0.0.')),
    )
    for damage in damages:
        before = _runs(tmp_path)
        damage()
        assert prepare_sandbox(cfg, V17) == upgraded
        assert _runs(tmp_path) == before + 1
        assert json.loads(record.read_text())["archive"][2] == archive.stat().st_ino


def test_a_kept_image_does_not_load_the_image_code(tmp_path: Path) -> None:
    cfg = _config(tmp_path, _pause(tmp_path))
    built = prepare_sandbox(cfg, V17).built
    script = (
        "import sys\n"
        "from actors.agent.sandbox import prepare_sandbox\n"
        "from actors.config import parse_config\n"
        f"cfg = parse_config({_text(str(cfg.cri.pause_binary))!r}, source='t',\n"
        f"                   env={_env(tmp_path)!r},\n"
        "                   check_binaries=False)\n"
        "print(prepare_sandbox(cfg, None).built.digest,\n"
        "      sorted(m for m in sys.modules if m.startswith('actors.images')))\n"
    )
    r = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        env=python_env(),
        cwd=REPO,
        timeout=60,
    )
    assert built is not None
    assert (r.stdout, r.stderr) == (f"{built.digest} []\n", "")
