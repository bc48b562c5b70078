"""scripts/containerd-versions: the mirror comes from the machine's own apt sources."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from scripts.containerd_versions import (
    BINARIES,
    RUNSC,
    SUITES,
    FetchError,
    Source,
    bin_dir,
    cached,
    cached_version,
    fetch,
    machine_source,
    put_first_on_path,
    runsc_version,
)
from scripts.matrix import runsc_of

ROOT = Path(__file__).resolve().parents[1]


def test_the_mirror_and_keyring_come_from_a_deb822_source_of_the_release(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "debian.sources").write_text(
        "Types: deb\n"
        "# a comment\n"
        "URIs: http://mirror.example/debian-security\n"
        "Suites: bookworm-security\n"
        "Components: main\n"
        "Signed-By: /k/security.gpg\n"
        "\n"
        "Types: deb deb-src\n"
        "URIs: http://mirror.example/debian\n"
        "Suites: bookworm bookworm-updates\n"
        "Components: main contrib\n"
        "Signed-By: /k/archive.gpg\n"
    )
    assert machine_source(tmp_path / "d", tmp_path / "none.list") == Source(
        uri="http://mirror.example/debian", keyring="/k/archive.gpg"
    )


def test_a_one_line_sources_list_gives_the_mirror_and_its_signed_by(tmp_path: Path) -> None:
    (tmp_path / "sources.list").write_text(
        "# deb http://old.example/debian buster main\n"
        "deb http://mirror.example/debian-security bookworm-security main\n"
        "deb [arch=amd64 signed-by=/k/a.gpg] http://mirror.example/debian bookworm main\n"
    )
    assert machine_source(tmp_path / "no-dir", tmp_path / "sources.list") == Source(
        uri="http://mirror.example/debian", keyring="/k/a.gpg"
    )


def test_no_debian_source_with_main_is_an_error_naming_where_it_looked(tmp_path: Path) -> None:
    (tmp_path / "sources.list").write_text("deb http://mirror.example/x bookworm contrib\n")
    with pytest.raises(FetchError) as e:
        machine_source(tmp_path / "d", tmp_path / "sources.list")
    assert str(e.value) == (
        f"no Debian source with component 'main' in '{tmp_path}/d' or "
        f"'{tmp_path}/sources.list': cannot derive the mirror to fetch containerd from"
    )


def test_an_unknown_suite_is_refused_before_anything_is_fetched() -> None:
    with pytest.raises(FetchError) as e:
        fetch("buster")
    assert str(e.value) == "unknown suite 'buster': expected one of bookworm, trixie, sid"
    env = {"PATH": "/usr/bin"}
    with pytest.raises(FetchError):
        put_first_on_path("buster", env)
    assert env == {"PATH": "/usr/bin"}


def test_a_cached_suite_is_listed_offline_with_its_version_and_binaries() -> None:
    suites = cached()
    if not suites:
        pytest.skip("no containerd is cached: run scripts/containerd-versions")
    r = subprocess.run(
        [sys.executable, str(ROOT / "scripts/containerd_versions.py"), "--cached"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "http_proxy": "http://0.0.0.0:9"},  # no network needed
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == [
        f"{s}\t{cached_version(s)}\t{bin_dir(s)}\t({', '.join(BINARIES)})" for s in suites
    ]
    env = {"PATH": f"/usr/bin:{bin_dir(suites[0])}"}
    assert put_first_on_path(suites[0], env) == bin_dir(suites[0])
    assert env["PATH"] == f"{bin_dir(suites[0])}:/usr/bin"


def test_runsc_names_its_gvisor_release_and_a_binary_without_one_is_an_error(
    tmp_path: Path,
) -> None:
    fake = tmp_path / "runsc"
    fake.write_text("#!/bin/sh\necho 'runsc version 0.0~20240729.0'\necho 'spec: 1.2.0'\n")
    fake.chmod(0o755)
    assert runsc_version(fake) == "20240729"
    fake.write_text("#!/bin/sh\necho 'runsc version unknown'\nexit 3\n")
    with pytest.raises(FetchError) as e:
        runsc_version(fake)
    assert (
        str(e.value) == f"'{fake}' --version printed no release (exit 3): 'runsc version unknown'"
    )


def test_an_uncached_runsc_is_a_usage_error_naming_the_fetch_command() -> None:
    uncached = [s for s in SUITES if cached_version(s, RUNSC) is None]
    if not uncached:
        pytest.skip("every suite's runsc is cached")
    env = {"PATH": "/usr/bin"}
    with pytest.raises(FetchError) as e:
        put_first_on_path(uncached[0], env, RUNSC)
    assert str(e.value) == (
        f"runsc of {uncached[0]!r} is not cached: "
        f"run scripts/containerd-versions --package runsc {uncached[0]}"
    )
    assert env == {"PATH": "/usr/bin"}


def test_the_sid_run_uses_trixies_runsc_and_the_others_the_systems() -> None:
    assert [runsc_of(run) for run in ("system", *SUITES)] == [
        "system",
        "system",
        "system",
        "trixie",
    ]


def test_a_cached_runsc_is_listed_offline_with_its_release() -> None:
    suites = cached(RUNSC)
    if not suites:
        pytest.skip("no runsc is cached: run scripts/containerd-versions --package runsc trixie")
    r = subprocess.run(
        [sys.executable, str(ROOT / "scripts/containerd_versions.py"), "--package", "runsc"]
        + ["--cached"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "http_proxy": "http://0.0.0.0:9"},  # no network needed
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == [
        f"{s}\t{cached_version(s, RUNSC)}\t{bin_dir(s, RUNSC)}\t(runsc)" for s in suites
    ]
    assert bin_dir("trixie", RUNSC) == ROOT / ".cache/runsc/trixie/root/usr/bin"
    assert all(
        runsc_version(bin_dir(s, RUNSC) / "runsc") == cached_version(s, RUNSC) for s in suites
    )
