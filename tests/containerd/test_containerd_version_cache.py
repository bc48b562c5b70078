"""`run` asks containerd for its version once per binary: the answer is kept in the
state directory and asked again when the binary is another file or was changed."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from actors.containerd.core.version import ContainerdVersionError
from actors.containerd.runtimes.binary import cached_containerd_version, containerd_version

_LINE = "containerd github.com/containerd/containerd {v} {v}-1\n"


def _binary(tmp_path: Path, version: str, name: str = "containerd") -> Path:
    """A containerd stand-in that prints `version` and counts its runs in `runs`."""
    binary = tmp_path / name
    binary.write_text(
        f"#!/bin/sh\necho run >> {tmp_path / 'runs'}\nprintf '{_LINE.format(v=version)}'\n"
    )
    binary.chmod(0o755)
    return binary


def _runs(tmp_path: Path) -> int:
    runs = tmp_path / "runs"
    return len(runs.read_text().splitlines()) if runs.exists() else 0


def test_the_version_is_asked_once_and_kept_while_the_binary_is_unchanged(tmp_path: Path) -> None:
    binary = _binary(tmp_path, "1.7.24")
    cache = tmp_path / "version.json"
    first = cached_containerd_version(str(binary), cache)
    again = cached_containerd_version(str(binary), cache)
    assert first == again == containerd_version(str(binary))
    assert str(first) == "1.7.24"
    assert _runs(tmp_path) == 2  # the cached call, and the uncached one just above
    held = json.loads(cache.read_text())
    assert held["key"][0] == str(binary) and "1.7.24" in held["output"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["containerd", "runs", "version.json"]


def test_a_changed_or_replaced_binary_is_asked_again(tmp_path: Path) -> None:
    binary = _binary(tmp_path, "1.7.24")
    cache = tmp_path / "version.json"
    assert cached_containerd_version(str(binary), cache).major == 1
    # An upgrade in place: the same path, another file (and so another inode and ctime).
    fresh = _binary(tmp_path, "2.1.9", name="containerd.new")
    os.replace(fresh, binary)
    assert cached_containerd_version(str(binary), cache).major == 2
    assert _runs(tmp_path) == 2
    # The same file written again with its old length: its ctime moved.
    binary.write_text(binary.read_text().replace("2.1.9", "2.1.8"))
    assert cached_containerd_version(str(binary), cache).patch == 8
    assert _runs(tmp_path) == 3


def test_a_torn_or_foreign_cache_is_asked_past_and_replaced(tmp_path: Path) -> None:
    binary = _binary(tmp_path, "1.6.20")
    cache = tmp_path / "version.json"
    for held in ("{", "[]", json.dumps({"key": "x", "output": 1}), ""):
        cache.write_text(held)
        assert cached_containerd_version(str(binary), cache).minor == 6
    assert _runs(tmp_path) == 4
    assert json.loads(cache.read_text())["key"][0] == str(binary)
    # Another binary, whose key is not the one held, is asked too.
    other = _binary(tmp_path, "2.1.9", name="containerd2")
    assert cached_containerd_version(str(other), cache).major == 2
    assert _runs(tmp_path) == 5


def test_an_unwritable_cache_costs_only_the_question(tmp_path: Path) -> None:
    binary = _binary(tmp_path, "1.7.24")
    cache = tmp_path / "missing-dir" / "version.json"
    assert cached_containerd_version(str(binary), cache).minor == 7
    assert cached_containerd_version(str(binary), cache).minor == 7
    assert _runs(tmp_path) == 2
    assert not cache.parent.exists()


def test_a_binary_that_cannot_tell_is_refused_naming_it_and_nothing_is_kept(
    tmp_path: Path,
) -> None:
    binary = tmp_path / "containerd"
    binary.write_text("#!/bin/sh\necho 'no version here'\n")
    binary.chmod(0o755)
    cache = tmp_path / "version.json"
    with pytest.raises(ContainerdVersionError, match=str(binary)):
        cached_containerd_version(str(binary), cache)
    assert not cache.exists()


def test_the_machines_containerd_is_found_on_path_and_kept(tmp_path: Path) -> None:
    found = shutil.which("containerd")
    if found is None:
        pytest.skip("no containerd on PATH")
    cache = tmp_path / "version.json"
    version = cached_containerd_version("containerd", cache)
    assert version == containerd_version(found)
    assert json.loads(cache.read_text())["key"][0] == os.path.realpath(found)
