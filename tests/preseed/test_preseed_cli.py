"""The one-shot `import` and `preseed` commands: exit codes, --json, help."""

from __future__ import annotations

import argparse
import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from actors.preseed.cli import add_parsers
from tests.support.containerd_daemon import ContainerdDaemon
from tests.support.ctr import images
from tests.support.preseed_archives import HELLO, Archives

pytestmark = pytest.mark.timeout(120)
ROOT = Path(__file__).resolve().parents[2]


def _cli(*argv: str) -> tuple[int, str, str]:
    parser = argparse.ArgumentParser(prog="node-containerd")
    add_parsers(parser.add_subparsers(dest="command", required=True))
    out, err = io.StringIO(), io.StringIO()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:
        return int(e.code or 0), "", ""
    return args.func(args, out, err), out.getvalue(), err.getvalue()


def test_import_prints_the_images_per_file_as_json_and_exits_zero(
    archives: Archives, fresh_containerd: ContainerdDaemon
) -> None:
    code, out, err = _cli(
        "import",
        "--address",
        fresh_containerd.address,
        "--namespace",
        "ns",
        "--label",
        "io.cri-containerd.pinned=pinned",
        "--json",
        str(archives.docker),
    )
    doc = json.loads(out)
    digest = images(fresh_containerd, "ns")[HELLO]

    assert (code, err) == (0, "")
    assert doc["ok"] is True
    assert [(f["file"], f["error"], f["images"]) for f in doc["files"]] == [
        (
            "ns/hello-docker.tar",
            None,
            [
                {
                    "name": HELLO,
                    "target_digest": digest,
                    "media_type": "application/vnd.docker.distribution.manifest.v2+json",
                },
                {
                    "name": "docker.io/library/hello:2",
                    "target_digest": digest,
                    "media_type": "application/vnd.docker.distribution.manifest.v2+json",
                },
            ],
        )
    ]


def test_import_exits_one_naming_the_failed_file_and_still_imports_the_others(
    archives: Archives, fresh_containerd: ContainerdDaemon, tmp_path: Path
) -> None:
    junk = tmp_path / "junk.tar"
    junk.write_bytes(b"not a tarball" * 100)
    code, out, err = _cli(
        "import",
        "--address",
        fresh_containerd.address,
        "--namespace",
        "ns",
        str(junk),
        str(archives.oci),
    )
    code_json, out_json, _ = _cli(
        "import", "--address", fresh_containerd.address, "--namespace", "ns", "--json", str(junk)
    )

    assert code == code_json == 1
    assert err == "error: failed to import preseed image 'ns/junk.tar': not a tar archive\n"
    assert out.startswith(
        f"imported preseed bundle 'ns/hello-oci.tar' into namespace 'ns': {HELLO} ("
    )
    assert json.loads(out_json)["files"][0]["error"] == (
        "failed to import preseed image 'ns/junk.tar': not a tar archive"
    )
    assert set(images(fresh_containerd, "ns")) == {HELLO}


@pytest.mark.parametrize(
    "argv",
    [
        ["import", "--address", "x", "--namespace", "ns", "--label", "novalue", "f.tar"],
        ["import", "--namespace", "ns", "f.tar"],  # no containerd: no --address, no agent
        ["preseed", "--address", "x"],
        ["import", "--address", "x", "--namespace", "ns", "--platform", "a/b/c/d", "f.tar"],
    ],
)
def test_usage_errors_exit_two(argv: list[str]) -> None:
    assert _cli(*argv)[0] == 2


def test_preseed_walks_the_directory_with_a_record_and_reports_json(
    archives: Archives, fresh_containerd: ContainerdDaemon, tmp_path: Path
) -> None:
    (tmp_path / "dir" / "k8s.io").mkdir(parents=True)
    shutil.copy(archives.oci, tmp_path / "dir" / "k8s.io" / "a.tar")
    (tmp_path / "dir" / "stray").write_text("x")
    argv = [
        "preseed",
        "--address",
        fresh_containerd.address,
        "--dir",
        str(tmp_path / "dir"),
        "--record",
        str(tmp_path / "record.json"),
        "--json",
    ]

    first = _cli(*argv)
    second = _cli(*argv)
    doc = json.loads(second[1])

    assert (first[0], second[0]) == (0, 0)
    assert [
        (f["file"], f["unchanged"], [i["name"] for i in f["images"]]) for f in doc["files"]
    ] == [("k8s.io/a.tar", True, [HELLO])]
    assert doc["warnings"] == ["non-directory 'stray' found in preseed folder, ignoring"]


def test_the_module_runs_as_a_command_with_help_and_a_clear_error(
    archives: Archives, tmp_path: Path
) -> None:
    def run(*argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "actors.preseed.cli", *argv],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    helped = run("preseed", "--help")
    failed = run(
        "import", "--address", str(tmp_path / "no.sock"), "--namespace", "ns", str(archives.oci)
    )

    assert helped.returncode == 0 and "DIR/<namespace>/<file>" in helped.stdout
    assert failed.returncode == 1
    assert failed.stderr == (
        "error: failed to import preseed image 'ns/hello-oci.tar': containerd "
        f"socket {str(tmp_path / 'no.sock')!r} does not exist\n"
    )


@pytest.mark.containerd
def test_import_unpack_leaves_the_image_unpacked_as_ctr_checks_it(
    archives: Archives, fresh_containerd: ContainerdDaemon
) -> None:
    code, out, err = _cli(
        "import", "--address", fresh_containerd.address, "--namespace", "k8s.io", "--unpack",
        str(archives.docker),
    )  # fmt: skip

    assert (code, err) == (0, "")
    assert out.endswith(", 2 layers unpacked, 2 present)\n")  # hello:2 finds them there
    # `ctr run` would unpack an image that is not: `ctr images check` says whether it is.
    listing = fresh_containerd.ctr("images", "check", namespace="k8s.io")
    rows = [line.split() for line in listing.splitlines() if line.startswith(HELLO)]
    assert rows and rows[0][-1] == "true", listing
