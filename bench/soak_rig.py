"""The soak's world: its work directory, the agent under soak, its processes and images.

`SoakRig` owns what the fault driver, the recovery check and the end checks
all look at: the config and state directory, the running agent (the test kit's
`AgentUnderTest`) and its status (`ControlStatus`), every process of it ever seen
(`ProcessTable`), its JSON log (`JsonLogFollower`) and the image tarballs put into
the preseed directory. It decides nothing about faults or verdicts.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
from pathlib import Path

from bench.soak_agent import ControlStatus, NodeRow, ProcessTable, containerd_pid, write_config
from bench.soak_lines import JsonLogFollower
from bench.soak_model import CONTAINERD_DN, NAMESPACE, SoakAbort, SoakReport, SoakSettings
from tests.support.agent import AgentUnderTest
from tests.support.images import ImageSpec, random_layer, write_oci_archive

__all__ = ["SoakRig"]


class SoakRig:
    """The agent under soak and everything around it; see the module doc."""

    def __init__(self, settings: SoakSettings) -> None:
        self.s = settings
        base = settings.workdir or Path(tempfile.mkdtemp(prefix="ncsoak-", dir="/tmp"))
        #: The work directory, and the agent's state directory in it.
        self.work = base
        self.state = base / "st"
        #: Where the preseed tarballs go (namespace k8s.io).
        self.preseed_dir = self.state / "preseed" / NAMESPACE
        #: Where a tarball is written before it is renamed into the preseed directory: in
        #: the state directory, so that the rename never crosses a mount (`soak_hostile`
        #: mounts over the state directory).
        self.staging = self.state / ".soak-staging"
        #: The agent's JSON log sink, its config, and containerd's socket.
        self.json_log = base / "log.jsonl"
        self.config = base / "agent.toml"
        self.socket = self.state / "containerd" / "containerd.sock"
        #: The agent process, its status, every process of it ever seen, and its JSON log.
        self.agent = AgentUnderTest(
            base, config=self.config, state=self.state, stderr=base / "agent.stderr"
        )
        self.status = ControlStatus(self.state / "control.sock", self.agent)
        self.procs = ProcessTable(self.state)
        self.follower = JsonLogFollower(self.json_log)
        #: The names of the images put into the preseed directory, in order.
        self.images: list[str] = []
        self._image_seq = 0

    def make_image(self, size: int | None = None) -> Path:
        """Writes one new tarball into the preseed directory (atomically, by rename)."""
        i = self._image_seq
        self._image_seq += 1
        name = f"soak.local/img{i}:v1"
        spool = self.work / "spool"
        size = self.s.image_bytes if size is None else size
        layer = random_layer(size, seed=self.s.seed * 1000 + i, spool_dir=spool)
        self.staging.mkdir(exist_ok=True)
        staged = self.staging / f"img{i}.tar"
        write_oci_archive(staged, [ImageSpec(name=name, layers=(layer,))])
        assert layer.blob.path is not None
        layer.blob.path.unlink()
        final = self.preseed_dir / f"img{i}.tar"
        os.replace(staged, final)
        self.images.append(name)
        return final

    def setup(self) -> None:
        """Writes the config and the initial tarballs."""
        self.state.mkdir(parents=True, exist_ok=True)
        write_config(
            self.config,
            state_dir=self.state,
            json_log=self.json_log,
            backoff_max_s=self.s.backoff_max_s,
            log_keep=self.s.log_keep,
        )
        if not self.s.preseed:
            with open(self.config, "a") as f:
                f.write("[preseed]\nenabled = false\n")
        self.preseed_dir.mkdir(parents=True, exist_ok=True)
        if self.s.preseed:
            for _ in range(self.s.initial_images):
                self.make_image()

    def rows(self) -> list[NodeRow]:
        """The tree's status now; every pid in it is remembered."""
        rows = self.status.status()
        if rows is None:
            raise SoakAbort(f"no status from the agent (exit code {self.agent.exited()})")
        for r in rows:
            if r.pid is not None:
                self.procs.remember(r.pid, r.dn)
        return rows

    @staticmethod
    def row(rows: list[NodeRow], dn: str) -> NodeRow | None:
        """The row of `dn` in `rows`, None if it is not there."""
        return next((r for r in rows if r.dn == dn), None)

    def remember_containerd(self, rows: list[NodeRow]) -> None:
        """Remembers the containerd binary's pid below root.containerd."""
        node = self.row(rows, CONTAINERD_DN)
        if node is not None and node.pid is not None:
            pid = containerd_pid(node.pid)
            if pid is not None:
                self.procs.remember(pid, "containerd")

    def containerd_answers(self) -> bool:
        """Whether `ctr version` gets an answer from containerd."""
        try:
            r = subprocess.run(
                ["ctr", "-a", str(self.socket), "version"],
                capture_output=True,
                timeout=10,
                check=False,
            )
        except subprocess.TimeoutExpired:
            return False
        return r.returncode == 0

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Runs `node-containerd ARGS --config FILE` against the agent under soak."""
        return self.agent.cli(*args, "--config", str(self.config), check=False, timeout=30.0)

    def wait_pid(self, dn: str, not_pid: int | None, timeout: float) -> NodeRow | None:
        """Polls status until `dn` runs in a process other than `not_pid`."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            row = self.row(self.rows(), dn)
            if row is not None and row.pid is not None and row.pid != not_pid:
                return row
            time.sleep(0.005)
        return None

    def check_images(self, report: SoakReport) -> None:
        """Books which images are complete, and the leases and ingests left."""
        report.images_expected = list(self.images)
        ctr = ["ctr", "-a", str(self.socket), "-n", NAMESPACE]
        out = subprocess.run(
            [*ctr, "images", "check"], capture_output=True, text=True, timeout=60, check=False
        )
        status = {}
        for line in out.stdout.splitlines()[1:]:
            cols = line.split()
            if len(cols) >= 4:
                status[cols[0]] = cols[3]
        report.images_complete = [i for i in self.images if status.get(i) == "complete"]
        for what, args in (("leases", ["leases", "ls"]), ("ingests", ["content", "active"])):
            r = subprocess.run(
                [*ctr, *args], capture_output=True, text=True, timeout=30, check=False
            )
            count = len([x for x in r.stdout.splitlines()[1:] if x.strip()])
            setattr(report, f"{what}_left", count)

    def shutdown(self, report: SoakReport) -> None:
        """SIGTERM to the agent; books its exit code, time and leftover processes."""
        began = time.monotonic()
        self.status.close()
        report.exit_code = self.agent.terminate(timeout=60.0)
        report.shutdown_s = time.monotonic() - began
        deadline = time.monotonic() + 2.0
        while True:
            left = self.procs.leftovers(self.agent.pid)
            if not left or time.monotonic() >= deadline:
                break
            time.sleep(0.05)
        report.leftovers = left
        report.processes_seen = self.procs.seen
