"""The soak's faults of the environment: a frozen root, a read-only or full state, a second agent.

The other faults signal one process of the tree; these come from around it, as on
a real node (issue 20's audit found each of them mishandled once):

====================  ==================================================================
kind                  what is done, and what must hold
====================  ==================================================================
freeze root           SIGSTOP of the agent's root process for 1 to 10 s, then SIGCONT
                      (a VM pause, CPU starvation): the root must judge nobody for its
                      own lateness, so no node restarts
readonly state        the state directory read-only for 1 to 5 s (ext4's
                      `errors=remount-ro`), then writable again: whatever failed
                      meanwhile recovers, and no node is HEALTHY without its process.
                      Done with a read-only bind mount of the state dir over itself,
                      lazily unmounted after: every path under it refuses to be
                      written, created, renamed, bound or removed (EROFS), while files
                      already open for writing stay writable (the kernel refuses to
                      remount read-only a mount with writers, so the running agent's
                      own mount cannot be)
full state            the state directory's file system full to the last byte for 1 to
                      5 s, then freed: whatever failed meanwhile (containerd's
                      metadata, the import record) recovers once space is back. The
                      state dir is an ext4 file system of its own for the whole run
                      (a sparse file, loop-mounted over it before the agent starts, so
                      that filling it fills nothing of the machine's; a tmpfs where
                      the machine has no loop device); the filler is allocated with
                      `fallocate`, so the sparse file barely grows, and topped up by
                      writes until not one byte is left
second agent          `node-containerd run` started on the same config: it must be
                      refused (exit 1, naming the agent that holds the state dir)
                      without writing anything (containerd's config and the runsc
                      launcher unchanged) or restarting any node
interrupt check       `node-containerd check`, and SIGINT, SIGTERM or SIGHUP once its
                      first pod exists: it must exit 128 + the signal, leaving no pod
                      and no `<state>/run/check-*` directory, and restart no node
====================  ==================================================================

`HostileFaults.setup` prepares what these need before the agent starts: a pause image
preseeded as the sandbox image so that a check's pods really start (umoci, skopeo and
busybox-static, as the pod tests; without them the kind is left out), and the state
dir's own file system (a loop-mounted ext4, or a tmpfs where there is no loop
device). Read-only spells and a full state need root (mounts); without it those
kinds are left out. `teardown` removes any mount a fault
left, and the state dir's file system, always.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import random
import shutil
import signal
import subprocess
import time
from pathlib import Path

from bench.soak_model import Fault, SoakSettings
from bench.soak_rig import SoakRig
from tests.support.project import CLI

__all__ = ["HostileFaults"]

#: The soak's sandbox image, built with busybox for the interrupted checks.
PAUSE_REF = "soak.local/pause:1"
#: The interrupted checks' container image: it takes `SLOW_STOP_S` seconds to exit 0
#: on `check`'s StopContainer, so that a signal at a random moment of the pod's life
#: finds the check still running.
SLOW_STOP_REF = "soak.local/slow-stop:1"
SLOW_STOP_S = 2
#: Its entrypoint: wait to be stopped, then take its time.
_SLOW_STOP = (
    "/bin/sh",
    "-c",
    f"trap 'sleep {SLOW_STOP_S}; exit 0' TERM INT; sleep 2147483647 & wait",
)
#: The range of a freeze of the root, and of a read-only or full spell of the state dir, in s.
FREEZE_S = (1.0, 10.0)
READONLY_S = (1.0, 5.0)
FULL_S = (1.0, 5.0)
#: The size of the state dir's own file system (a sparse file: only what is written
#: takes room), enough for the long soak's images.
STATE_FS_BYTES = 32 << 30
#: Without a loop device: the state dir's tmpfs is at least this big, or this many
#: times what the state dir holds at setup (its tarballs, imported later).
TMPFS_MIN_BYTES = 512 << 20
TMPFS_FACTOR = 8
#: The file that fills the state dir's file system during a full spell.
FILLER = ".soak-filler"
#: Seconds a check may take to start its first pod, and to end after the signal.
CHECK_POD_S = 60.0
CHECK_END_S = 150.0
#: The files a refused second agent must not have written.
_WRITTEN_BY_AN_AGENT = ("containerd/config.toml", "runsc/launcher")


def _mount(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["mount", *args], capture_output=True, text=True, timeout=30, check=False)


def _run(*cmd: str) -> None:
    """Runs a setup command; a failure raises `RuntimeError` with its stderr."""
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: {r.stderr.strip()}")


def _usage(path: Path) -> int:
    """Bytes of the regular files below `path`."""
    return sum(p.lstat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def _digest(path: Path) -> tuple[int, str] | None:
    try:
        return path.stat().st_mtime_ns, hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


class HostileFaults:
    """Injects the faults of the environment into the agent of `rig`; see the module doc."""

    def __init__(self, rig: SoakRig, settings: SoakSettings, rng: random.Random) -> None:
        self.rig = rig
        self.s = settings
        self.rng = rng
        #: Read-only mounts over the state dir not unmounted yet.
        self.mounted = 0
        #: Whether the state dir is on its own (loop-mounted) file system.
        self.state_fs = False
        #: Why a kind is left out of this run, by action.
        self.unavailable: dict[str, str] = {}

    # ------------------------------------------------------------ setup and teardown

    def setup(self) -> None:
        """Before the agent starts: the sandbox image; what this run cannot inject."""
        if os.geteuid() != 0 or shutil.which("mount") is None:
            self.unavailable["readonly"] = "mounting needs root and mount(8)"
        try:
            self._state_fs()
        except (OSError, RuntimeError, subprocess.SubprocessError) as e:
            self.unavailable["full"] = f"cannot give the state dir a file system: {e}"
        try:
            self._pause_image()
        except (OSError, RuntimeError, subprocess.SubprocessError) as e:
            self.unavailable["interrupt"] = f"cannot build a pause image: {e}"

    def _state_fs(self) -> None:
        """Moves the state dir (config and tarballs written) onto a file system of its own:
        a loop-mounted ext4 on a sparse file, or, where the machine has no loop device
        (a container), a tmpfs of `TMPFS_MIN_BYTES` or `TMPFS_FACTOR` times what the state
        holds already, whichever is more (a full spell then holds that much memory)."""
        if os.geteuid() != 0 or shutil.which("mount") is None:
            raise RuntimeError("a file system of its own needs root and mount(8)")
        state = self.rig.state
        before = state.with_name(state.name + ".before")
        os.rename(state, before)
        try:
            state.mkdir()
            try:
                self._mount_ext4(state)
            except RuntimeError as loop_failed:
                size = max(TMPFS_MIN_BYTES, TMPFS_FACTOR * _usage(before))
                r = _mount("-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(state))
                if r.returncode != 0:
                    raise RuntimeError(f"{loop_failed}; tmpfs: {r.stderr.strip()}") from None
        except BaseException:
            state.rmdir()
            os.rename(before, state)
            raise
        self.state_fs = True
        with contextlib.suppress(FileNotFoundError):
            (state / "lost+found").rmdir()
        shutil.copytree(before, state, symlinks=True, dirs_exist_ok=True)
        shutil.copystat(before, state)
        shutil.rmtree(before)

    def _mount_ext4(self, state: Path) -> None:
        image = self.rig.work / "state.ext4"
        if shutil.which("mkfs.ext4") is None:
            raise RuntimeError("no mkfs.ext4")
        with open(image, "wb") as f:
            f.truncate(STATE_FS_BYTES)
        try:
            # No blocks reserved for root: the agent runs as root, and "full" means full.
            _run("mkfs.ext4", "-q", "-F", "-m", "0", str(image))
            _run("mount", "-o", "loop", str(image), str(state))
        except RuntimeError:
            image.unlink()
            raise

    def _pause_image(self) -> None:
        from tests.support.images.tools import busybox_image
        from tests.support.pods import PAUSE_ENTRYPOINT

        work = self.rig.work / "pause-image"
        work.mkdir()
        self.rig.staging.mkdir(exist_ok=True)
        for tar in (
            busybox_image(work, PAUSE_REF, entrypoint=PAUSE_ENTRYPOINT, cmd=()),
            busybox_image(work, SLOW_STOP_REF, entrypoint=_SLOW_STOP, cmd=()),
        ):
            staged = self.rig.staging / tar.name
            shutil.copyfile(tar, staged)  # onto the state dir's file system, then renamed
            os.replace(staged, self.rig.preseed_dir / tar.name)
        with open(self.rig.config, "a") as f:
            # runc only: runsc's debug lines of every check pod would flood the log
            # the soak counts its lines and the root's memory in.
            f.write(f'[cri]\nsandbox_image = "{PAUSE_REF}"\n[runsc]\nbinary = "no-runsc-here"\n')
            # An empty CNI directory of the soak's own: no default network is written, so
            # no pod of an interrupted `check` gets a network (or a bridge) of its own.
            empty = self.rig.work / "net.d"
            empty.mkdir(exist_ok=True)
            f.write(f'[cni]\nconf_dir = "{empty}"\n')

    def teardown(self) -> None:
        """Unmounts whatever read-only mount a fault left, then the state dir's own file
        system (its sparse file stays in the work directory, for a kept run)."""
        while self.mounted:
            self._unmount()
        if self.state_fs:
            self.state_fs = False
            subprocess.run(["umount", "-l", str(self.rig.state)], check=False, timeout=30)

    def _unmount(self) -> str | None:
        """Unmounts the top mount of the state dir (lazily: a process may hold it)."""
        r = subprocess.run(
            ["umount", "-l", str(self.rig.state)],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        self.mounted -= 1
        return None if r.returncode == 0 else r.stderr.strip()

    def available(self, action: str) -> bool:
        """Whether this run can inject faults of `action`."""
        return action not in self.unavailable

    # ------------------------------------------------------------ the faults

    def inject(self, fault: Fault, action: str) -> Fault:
        """Carries out `fault` (of `action`); returns it with its outcome and problems."""
        rows = self.rig.rows()
        fault.same_pids = {r.dn: r.pid for r in rows if r.pid is not None}
        fault.wall_start = time.time()
        if action == "freeze":
            self._freeze(fault)
        elif action == "readonly":
            fault.same_pids = {}  # containerd may fail on a read-only disk: that is allowed
            self._readonly(fault)
        elif action == "full":
            fault.same_pids = {}  # containerd may fail on a full disk: that is allowed
            self._full(fault)
        elif action == "second":
            self._second_agent(fault)
        else:
            self._interrupt_check(fault)
        if fault.outcome != "missed":
            fault.end, fault.wall_end = time.monotonic(), time.time()
        return fault

    def _freeze(self, fault: Fault) -> None:
        fault.stop_s = self.rng.uniform(*FREEZE_S)
        pidfd = os.pidfd_open(self.rig.agent.pid)
        try:
            signal.pidfd_send_signal(pidfd, signal.SIGSTOP)
            try:
                time.sleep(fault.stop_s)
            finally:
                signal.pidfd_send_signal(pidfd, signal.SIGCONT)
        finally:
            os.close(pidfd)
        fault.outcome = "thawed"
        fault.note = f"frozen {fault.stop_s:.1f} s"

    def _readonly(self, fault: Fault) -> None:
        state = str(self.rig.state)
        fault.stop_s = self.rng.uniform(*READONLY_S)
        r = _mount("--bind", "-o", "ro", state, state)
        if r.returncode != 0:
            fault.outcome, fault.note = "missed", f"read-only mount failed: {r.stderr.strip()}"
            return
        self.mounted += 1
        try:
            time.sleep(fault.stop_s)
        finally:
            error = self._unmount()
        if error is not None:
            fault.problems.append(f"the state dir stayed read-only: {error}")
        fault.outcome = "restored"
        fault.note = f"read-only {fault.stop_s:.1f} s"

    def _full(self, fault: Fault) -> None:
        fault.stop_s = self.rng.uniform(*FULL_S)
        filler = self.rig.state / FILLER
        try:
            fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except OSError as e:
            fault.outcome, fault.note = "missed", f"cannot create the filler: {e}"
            return
        try:
            try:
                free = os.statvfs(self.rig.state)
                os.posix_fallocate(fd, 0, free.f_bavail * free.f_frsize)
            except OSError:
                pass  # what it allocated stays; the writes below take the rest
            os.lseek(fd, 0, os.SEEK_END)
            for block in (1 << 20, 4096, 512, 1):
                chunk = bytes(block)
                with contextlib.suppress(OSError):
                    while True:
                        os.write(fd, chunk)
            left = os.statvfs(self.rig.state).f_bavail
            time.sleep(fault.stop_s)
        finally:
            os.close(fd)
            os.unlink(filler)
        if left:
            fault.problems.append(f"the state dir's file system kept {left} free blocks")
        fault.outcome = "restored"
        fault.note = f"full {fault.stop_s:.1f} s"

    def _second_agent(self, fault: Fault) -> None:
        files = [self.rig.state / name for name in _WRITTEN_BY_AN_AGENT]
        before = [_digest(p) for p in files]
        try:
            r = subprocess.run(
                [*CLI, "run", "--config", str(self.rig.config)],
                capture_output=True,
                text=True,
                timeout=30,
                check=False,
                stdin=subprocess.DEVNULL,
            )
        except subprocess.TimeoutExpired:
            fault.outcome = "accepted"
            fault.problems.append("a second agent on the same state dir ran for 30 s")
            return
        fault.note = r.stderr.strip().splitlines()[-1] if r.stderr.strip() else ""
        expected = f"another node-containerd agent (pid {self.rig.agent.pid}) is already serving"
        if r.returncode == 1 and expected in r.stderr:
            fault.outcome = "refused"
        else:
            fault.outcome = "accepted"
            fault.problems.append(f"a second agent was not refused: exit {r.returncode}")
        for path, old in zip(files, before, strict=True):
            if _digest(path) != old:
                fault.problems.append(f"the refused second agent rewrote {path.name}")

    def _interrupt_check(self, fault: Fault) -> None:
        from actors.agent.check import CHECK_LABEL
        from actors.containerd.api.cri import CriClient

        client = CriClient(self.rig.socket, timeout=10.0)
        proc = subprocess.Popen(
            [*CLI, "check", "--config", str(self.rig.config), "--image", SLOW_STOP_REF],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            deadline = time.monotonic() + CHECK_POD_S
            while not client.sandbox_ids({CHECK_LABEL: "true"}) and proc.poll() is None:
                if time.monotonic() > deadline:
                    break
                time.sleep(0.02)
            if proc.poll() is not None:
                out, err = proc.communicate()
                fault.outcome = "missed"
                fault.note = f"the check ended before a pod ran: {(out + err).strip()[-300:]}"
                return
            time.sleep(self.rng.uniform(0.0, SLOW_STOP_S))  # a random moment of the pod's life
            signum = self.rng.choice([signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
            if proc.poll() is None:
                proc.send_signal(signum)
            out, err = proc.communicate(timeout=CHECK_END_S)
            if proc.returncode in (0, 1) and "interrupted by" not in err:
                fault.outcome = "missed"  # it had ended before the signal
                fault.note = f"the check ended before the signal: {out.strip()[-200:]}"
                return
            fault.outcome = "interrupted"
            fault.note = f"{signal.Signals(signum).name} → exit {proc.returncode}"
            if proc.returncode != 128 + signum:
                fault.problems.append(
                    f"check exited {proc.returncode} on {signal.Signals(signum).name}, "
                    f"not {128 + signum}: {err.strip()[-300:]}"
                )
            left = client.sandbox_ids()
            if left:
                fault.problems.append(f"the interrupted check left {len(left)} pod(s)")
            dirs = sorted(p.name for p in (self.rig.state / "run").glob("check-*"))
            if dirs:
                fault.problems.append(f"the interrupted check left {dirs}")
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
            client.close()
