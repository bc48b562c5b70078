"""Progress of `import` and `preseed`: one line redrawn on a terminal, nothing when piped."""

from __future__ import annotations

import io
import os
import pty
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from actors.preseed.progress import FileProgress, TerminalProgress, line_for
from tests.support.containerd_daemon import ContainerdDaemon
from tests.support.preseed_archives import Archives

pytestmark = pytest.mark.timeout(120)
ROOT = Path(__file__).resolve().parents[2]


def test_the_line_names_the_file_its_bytes_share_rate_and_the_others_under_way() -> None:
    shown = FileProgress("k8s.io/big.tar", 120_400_000, 524_000_000, started=10.0)
    assert line_for(shown, 0, 12.0) == "k8s.io/big.tar: 120.4/524.0 MB (22%), 60.2 MB/s"
    assert line_for(shown, 2, 10.0) == "k8s.io/big.tar (+2): 120.4/524.0 MB (22%)"


def test_the_line_is_redrawn_at_most_ten_times_a_second_and_always_at_the_end() -> None:
    now = [0.0]
    out = io.StringIO()
    bar = TerminalProgress(out, clock=lambda: now[0])
    for t, done in ((0.0, 1_000_000), (0.05, 2_000_000), (0.2, 3_000_000), (0.25, 4_000_000)):
        now[0] = t
        bar.update("ns/a.tar", done, 4_000_000)
    bar.clear()
    assert out.getvalue().split("\r\x1b[K") == [
        "",
        "ns/a.tar: 1.0/4.0 MB (25%)",
        "ns/a.tar: 3.0/4.0 MB (75%), 15.0 MB/s",
        "ns/a.tar: 4.0/4.0 MB (100%), 16.0 MB/s",
        "",
    ]


def on_a_terminal(argv: list[str]) -> tuple[int, str]:
    """Runs `argv` with stdout and stderr on a pseudo-terminal; its exit code and transcript."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        argv,
        stdout=slave,
        stderr=slave,
        stdin=subprocess.DEVNULL,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO: the other side is closed
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    return proc.wait(60), b"".join(chunks).decode()


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "actors.agent.cli", *args]


def test_import_shows_progress_on_a_terminal_and_nothing_extra_when_piped(
    archives: Archives, fresh_containerd: ContainerdDaemon
) -> None:
    argv = cli("import", "--address", fresh_containerd.address, "--namespace", "ns")
    code, transcript = on_a_terminal([*argv, str(archives.docker)])
    assert code == 0, transcript
    assert transcript.rpartition("\r\x1b[K")[2].startswith(
        "imported preseed bundle 'ns/hello-docker.tar' into namespace 'ns': "
    )
    assert re.search(
        r"\r\x1b\[Kns/hello-docker\.tar: [\d.]+/[\d.]+ MB \(100%\)(, [\d.]+ MB/s)?\r\x1b\[K",
        transcript,
    ), transcript
    piped = subprocess.run(
        [*argv, str(archives.oci)],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=60,
    )
    assert (piped.returncode, piped.stderr) == (0, "")
    assert "\x1b" not in piped.stdout and "\r" not in piped.stdout


def test_preseed_shows_progress_on_a_terminal(
    archives: Archives, fresh_containerd: ContainerdDaemon, tmp_path: Path
) -> None:
    (tmp_path / "ns").mkdir()
    shutil.copy(archives.oci, tmp_path / "ns" / "hello.tar")
    code, transcript = on_a_terminal(
        cli("preseed", "--address", fresh_containerd.address, "--dir", str(tmp_path))
    )
    assert code == 0, transcript
    drawn, _, results = transcript.rpartition("\r\x1b[K")
    assert "\r\x1b[Kns/hello.tar: " in drawn
    assert results.startswith("imported preseed bundle 'ns/hello.tar' into namespace 'ns': ")
