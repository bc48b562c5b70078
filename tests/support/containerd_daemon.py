"""The one containerd fixture builder: a real containerd in a private directory.

`ContainerdDaemon` writes a config whose root, state, gRPC and ttrpc sockets all lie
under one directory, in the layout the `containerd` on PATH reads natively (the
agent's own renderer: version 2 for 1.x, 3 for 2.x), starts that binary on it,
waits until the socket answers `ctr version`, and stops it with SIGTERM (then
SIGKILL) on `stop()`. `ctr(...)` runs the reference client against it; `local`
holds the flags that make ``ctr images import/export`` use Go's ``client.Import`` /
``Export`` as 1.x does (ctr 2.x goes through the Transfer API unless ``--local``).

A test that runs containerd under the agent's own runnable writes only the config
(`write_config`) and builds the runnable's spec with `tests.support.specs.containerd_spec_in`;
`started_daemon` is what the `containerd` and `fresh_containerd` fixtures run.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from actors.containerd.core.version import ContainerdVersion
from actors.containerd.runtimes.binary import containerd_version
from actors.containerd.runtimes.config_file import ContainerdSettings, render_settings
from tests.support.project import short_tmp

__all__ = ["ContainerdDaemon", "containerd_available", "started_daemon"]


def containerd_available() -> bool:
    """Whether the containerd and ctr binaries are on PATH."""
    return shutil.which("containerd") is not None and shutil.which("ctr") is not None


class ContainerdDaemon:
    """One containerd process whose whole state lies under `base`."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.root = base / "root"
        self.state = base / "state"
        self.address = str(base / "containerd.sock")
        self.config = base / "config.toml"
        self.log_path = base / "containerd.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self._version: ContainerdVersion | None = None

    @property
    def version(self) -> ContainerdVersion:
        """The version of the containerd on PATH (asked once)."""
        if self._version is None:
            self._version = containerd_version(shutil.which("containerd") or "containerd")
        return self._version

    @property
    def local(self) -> list[str]:
        """Flags of ``ctr images import/export`` for Go's client-side Import/Export."""
        return ["--local"] if self.version.major >= 2 else []

    def write_config(self) -> None:
        self.base.mkdir(parents=True, exist_ok=True)
        settings = ContainerdSettings(
            source="tests/support/containerd_daemon.py",
            root=self.root,
            state=self.state,
            address=Path(self.address),
            ttrpc_address=Path(f"{self.address}.ttrpc"),
            opt_dir=self.root / "opt",
        )
        self.config.write_text(render_settings(settings, self.version))

    def start(self, timeout: float = 20.0) -> None:
        """Start containerd and wait until it answers on its socket."""
        self.write_config()
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            ["containerd", "--config", str(self.config)],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"containerd exited with {self.proc.returncode}: "
                    f"{self.log_path.read_text(errors='replace')[-2000:]}"
                )
            if os.path.exists(self.address):
                r = subprocess.run(
                    ["ctr", "-a", self.address, "version"],
                    capture_output=True,
                    timeout=10,
                )
                if r.returncode == 0:
                    return
            time.sleep(0.02)
        self.stop()
        raise TimeoutError(f"containerd did not answer on {self.address} within {timeout}s")

    def stop(self) -> None:
        """SIGTERM containerd, SIGKILL its session after 10 s."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def ctr(self, *args: str, namespace: str = "default", check: bool = True) -> str:
        """Run the reference client `ctr` against this daemon; return stdout."""
        r = subprocess.run(
            ["ctr", "-a", self.address, "-n", namespace, *args],
            capture_output=True,
            text=True,
            timeout=300,
        )
        if check and r.returncode != 0:
            raise RuntimeError(f"ctr {' '.join(args)} failed ({r.returncode}): {r.stderr}")
        return r.stdout


@contextmanager
def started_daemon() -> Iterator[ContainerdDaemon]:
    """A started containerd in a fresh short directory; stopped and removed at the end."""
    daemon = ContainerdDaemon(short_tmp("ctd"))
    daemon.start()
    try:
        yield daemon
    finally:
        daemon.stop()
        shutil.rmtree(daemon.base, ignore_errors=True)
