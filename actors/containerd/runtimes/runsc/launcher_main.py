"""The runsc launcher's Python helper: what the shell launcher hands the few cases it cannot read.

The launcher the runc v2 shim runs is a shell script (`launcher_sh`, where what it
does is described); the agent writes this module next to it as `launcher.py`
(`actors.containerd.runtimes.runsc.launcher.render_helper`): a `#!` line naming
the agent's Python (run with `-IS`: no site, no environment), the values from the
config, the source of this module, then a call of `main`. It imports nothing but
the standard library. The shell launcher runs it for:

* `create` when the bundle's `config.json` is not the compact JSON containerd
  writes (or names the pod's log directory with an escape): the same decisions
  as the shell's, from the parsed spec — `--network=host` for a host-network pod
  (recorded as `<root>/<id>.hostnet` for `start`), gVisor's user and panic logs
  in the pod's log directory, a waiter for a container that joins a sandbox;
* `--watch-exec ARGS...` (ARGS: the `exec --detach` arguments runsc ran with):
  the exec watcher, started once `runsc exec` succeeded. It waits until the
  host-side `runsc exec` (the pid file's) has ended, and kills the process it ran
  in the sandbox (`runsc kill --pid`, the pid from `<pid-file>.inner`) only when
  that ended by a signal (the shim's kill at an ExecSync timeout): after a normal
  end the process is gone already. It learns how it ended from its pidfd
  (`PIDFD_GET_INFO`, Linux 6.15; without it, it kills whenever). One already
  reaped when the watcher looks ended by itself if that is less than `_QUICK`
  after the pid file was written (CRI's timeouts are whole seconds); later than
  that, the watcher cannot tell, and kills.

`main` takes every other command too (`start` with the waiter's stdio, `kill`
deleting a container still `created` by force, `delete` removing the records),
though the shell hands it only those two.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import select
import struct
import subprocess
import sys
import time
from collections.abc import Sequence

__all__ = ["main", "split_command"]

#: runc's global flags that take a separate value (as go-runc passes them).
_VALUE_FLAGS = frozenset({"--root", "--log", "--log-format", "--criu"})
#: Annotation by which containerd's CRI marks a pod's sandbox or its containers.
_TYPE_ANNOTATION = "io.kubernetes.cri.container-type"
#: Annotation by which containerd's CRI gives a pod's sandbox the pod's log directory.
_LOG_DIR_ANNOTATION = "io.kubernetes.cri.sandbox-log-directory"
#: gVisor's user log and panic log in the pod's log directory (as gVisor's shim names them).
_USER_LOG, _PANIC_LOG = "gvisor.log", "gvisor_panic.log"
#: How often the waiter looks whether its container has started, in seconds.
_POLL = 0.05
#: runsc's flag for a host-network pod: gVisor passes the host's network through.
_HOST_NETWORK = "--network=host"
#: The waiter's copies of the container's stdin, stdout, stderr, and how to reopen them.
_KEPT = ((3, os.O_RDONLY), (4, os.O_WRONLY), (5, os.O_WRONLY))
#: How many of the waiter's polls (`_POLL` apart) go by between two asks of runsc.
_ASK_EVERY = 20
#: `PIDFD_GET_INFO` (`_IOWR(0xFF, 11, struct pidfd_info)`, its first 64 bytes) and its
#: `PIDFD_INFO_EXIT` bit; the exit code (as `waitpid` reports it) lies at byte 60.
_PIDFD_INFO_SIZE = 64
_PIDFD_GET_INFO = (3 << 30) | (_PIDFD_INFO_SIZE << 16) | (0xFF << 8) | 11
_PIDFD_INFO_EXIT = 1 << 3
#: How long the watcher waits for the shim to reap the ended exec, in seconds.
_REAP_WAIT = 2.0
#: A host-side exec already reaped when the watcher looks less than this long (s)
#: after its pid file was written ended by itself: CRI's timeouts are whole seconds.
_QUICK = 0.5


def split_command(args: Sequence[str]) -> tuple[list[str], str, list[str]]:
    """Splits runc-style arguments into (global flags, subcommand, its arguments)."""
    i = 0
    while i < len(args):
        arg = args[i]
        if arg in _VALUE_FLAGS:
            i += 2
        elif arg.startswith("-"):
            i += 1
        else:
            return list(args[:i]), arg, list(args[i + 1 :])
    return list(args), "", []


def _option(args: Sequence[str], name: str) -> str | None:
    for i, arg in enumerate(args):
        if arg == name and i + 1 < len(args):
            return args[i + 1]
        if arg.startswith(name + "="):
            return arg[len(name) + 1 :]
    return None


def _spec(bundle: str) -> dict[str, object]:
    """The bundle's OCI spec; empty when it cannot be read (runsc then says why)."""
    try:
        with open(os.path.join(bundle, "config.json"), encoding="utf-8") as f:
            spec = json.load(f)
    except (OSError, ValueError):
        return {}
    return spec if isinstance(spec, dict) else {}


def _joins_sandbox(spec: dict[str, object]) -> bool:
    annotations = spec.get("annotations") or {}
    return isinstance(annotations, dict) and annotations.get(_TYPE_ANNOTATION) == "container"


def _log_dir(spec: dict[str, object]) -> str | None:
    """The pod's log directory from a sandbox's spec; None without one (or not absolute)."""
    annotations = spec.get("annotations") or {}
    value = annotations.get(_LOG_DIR_ANNOTATION) if isinstance(annotations, dict) else None
    return value if isinstance(value, str) and value.startswith("/") else None


def _host_network(spec: dict[str, object]) -> bool:
    """Whether the spec has no `network` namespace: the pod uses the host's network."""
    linux = spec.get("linux")
    namespaces = linux.get("namespaces") if isinstance(linux, dict) else None
    if not isinstance(namespaces, list):
        return False
    return not any(isinstance(n, dict) and n.get("type") == "network" for n in namespaces)


def _chooses_network(flags: Sequence[str]) -> bool:
    return any(f == "--network" or f.startswith("--network=") for f in flags)


def _hostnet_record(prefix: list[str], sub: list[str]) -> str | None:
    root = _option(prefix, "--root")
    return os.path.join(root, sub[-1] + ".hostnet") if root and sub else None


def _wait(prefix: list[str], container: str) -> int:
    """The waiter: the container's exit status, once it has started and exited.

    It has started when the launcher's `start` left `<root>/<id>.started`; runsc is
    asked without a root, every `_ASK_EVERY` polls, and once the waiter's record
    `<root>/<id>.waiter` is gone (a forced delete or `delete` removed it).
    """
    root = _option(prefix, "--root")
    started = os.path.join(root, container + ".started") if root else None
    record = os.path.join(root, container + ".waiter") if root else ""
    polls = 0
    while started is None or not os.path.exists(started):
        polls += 1
        gone = polls > 1 and not os.path.exists(record)
        if started is None or gone or polls % _ASK_EVERY == 0:
            state = subprocess.run([*prefix, "state", container], capture_output=True, text=True)
            if state.returncode != 0:
                return 255
            try:
                status = json.loads(state.stdout).get("status")
            except ValueError:
                return 255
            if status != "created":
                break
        time.sleep(_POLL)
    done = subprocess.run([*prefix, "wait", container], capture_output=True, text=True)
    try:
        return int(json.loads(done.stdout)["exitStatus"]) & 0xFF
    except (ValueError, KeyError, TypeError):
        return 255


def _create_with_waiter(prefix: list[str], sub: list[str], pid_file: str) -> int:
    runsc_pid_file = pid_file + ".runsc"
    i = sub.index("--pid-file") if "--pid-file" in sub else -1
    if i >= 0:
        sub = [*sub[:i], "--pid-file", runsc_pid_file, *sub[i + 2 :]]
    else:
        sub = [f"--pid-file={runsc_pid_file}" if a.startswith("--pid-file=") else a for a in sub]
    code = subprocess.run([*prefix, "create", *sub]).returncode
    if code != 0:
        return code
    container = sub[-1]
    # The waiter keeps the container's stdio as fds 3-5 from its fork on (`start` may
    # reopen them before the child has run a line); its own stdio is /dev/null.
    for fd in (0, 1, 2):
        os.dup2(fd, fd + 3, inheritable=False)
    pid = os.fork()
    if pid == 0:
        null = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        os._exit(_wait(prefix, container))
    for fd in (3, 4, 5):
        os.close(fd)
    _write_atomic(pid_file, str(pid))
    root = _option(prefix, "--root")
    if root is not None:
        _write_atomic(os.path.join(root, container + ".waiter"), str(pid))
    os.unlink(runsc_pid_file)
    return 0


def _write_atomic(path: str, text: str) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="ascii") as f:
        f.write(text)
    os.replace(tmp, path)


def _start(prefix: list[str], sub: list[str]) -> int:
    """`start`; a joining container gets the stdio its waiter kept from `create`."""
    root = _option(prefix, "--root")
    record = os.path.join(root, sub[-1] + ".waiter") if root and sub else None
    try:
        with open(record or "", encoding="ascii") as f:
            waiter = int(f.read())
        stdio = [os.open(f"/proc/{waiter}/fd/{fd}", flags) for fd, flags in _KEPT]
    except (OSError, ValueError):
        stdio = None
    if stdio is None:
        os.execv(prefix[0], [*prefix, "start", *sub])
    done = subprocess.run(
        [*prefix, "start", *sub], stdin=stdio[0], stdout=stdio[1], stderr=stdio[2]
    )
    for fd in stdio:
        os.close(fd)
    if done.returncode == 0 and record is not None:
        _write_atomic(record[: -len(".waiter")] + ".started", "")
    return done.returncode


def main(runsc: str, flags: Sequence[str], tmpdir: str) -> int:
    """Runs runsc for the shim; returns the exit code (or never returns: exec)."""
    os.environ["TMPDIR"] = tmpdir
    args = sys.argv[1:]
    if args[:1] == ["--watch-exec"]:
        return _watch_exec(runsc, flags, args[1:])
    global_flags, command, sub = split_command(args)
    prefix = [runsc, *flags, *global_flags]
    hostnet = _hostnet_record(prefix, sub)
    if command == "create":
        spec = _spec(_option(sub, "--bundle") or _option(sub, "-b") or ".")
        if _host_network(spec) and not _chooses_network(flags):
            prefix = [runsc, *flags, _HOST_NETWORK, *global_flags]
            if hostnet is not None:  # runsc makes its root at the first create, 0711 too
                os.makedirs(os.path.dirname(hostnet), mode=0o711, exist_ok=True)
                _write_atomic(hostnet, _HOST_NETWORK)
        pid_file = _option(sub, "--pid-file")
        if pid_file is not None and _joins_sandbox(spec):
            return _create_with_waiter(prefix, sub, pid_file)
        log_dir = _log_dir(spec)
        if log_dir is not None:
            os.makedirs(log_dir, exist_ok=True)
            panic = f"--panic-log={os.path.join(log_dir, _PANIC_LOG)}"
            prefix = [prefix[0], *prefix[1 : 1 + len(flags)], panic, *prefix[1 + len(flags) :]]
            sub = [f"--user-log={os.path.join(log_dir, _USER_LOG)}", *sub]
        os.execv(runsc, [*prefix, command, *sub])
    if command == "start":
        if hostnet is not None and os.path.exists(hostnet):
            prefix = [runsc, *flags, _HOST_NETWORK, *global_flags]
        return _start(prefix, sub)
    if command == "delete" and sub:
        root = _option(prefix, "--root")
        if root is not None:
            for suffix in (".waiter", ".hostnet", ".started"):
                with contextlib.suppress(OSError):
                    os.unlink(os.path.join(root, sub[-1] + suffix))
    if command == "kill":
        return _kill(prefix, sub)
    os.execv(runsc, [runsc, *flags, *args])
    return 127  # not reached


def _watch_exec(runsc: str, flags: Sequence[str], args: list[str]) -> int:
    """The exec watcher (see the module's docstring); returns 0."""
    global_flags, _, sub = split_command(args)
    pid_file = _option(sub, "--pid-file")
    if pid_file is None or not sub:
        return 0
    inner_file = pid_file + ".inner"
    try:
        with open(pid_file, encoding="ascii") as f:
            host = int(f.read())
        with open(inner_file, encoding="ascii") as f:
            inner = f.read().strip()
        fd = os.pidfd_open(host)
    except ProcessLookupError:
        killed = time.time() - os.stat(pid_file).st_mtime > _QUICK
    except (OSError, ValueError):
        return 0
    else:
        killed = _ended_by_signal(fd)
    with contextlib.suppress(OSError):
        os.unlink(inner_file)
    if killed and inner:
        command = [runsc, *flags, *global_flags, "kill", "--pid", inner, sub[-1], "9"]
        subprocess.run(command, capture_output=True)
    return 0


def _ended_by_signal(fd: int) -> bool:
    """Waits until the process of pidfd `fd` has ended; whether a signal ended it.

    True also when it cannot be told (a kernel without `PIDFD_GET_INFO`, or the
    process not reaped within `_REAP_WAIT`): the caller then kills, to be safe.
    """
    try:
        select.select([fd], [], [])
        deadline = time.monotonic() + _REAP_WAIT
        while time.monotonic() < deadline:
            info = bytearray(_PIDFD_INFO_SIZE)
            struct.pack_into("Q", info, 0, _PIDFD_INFO_EXIT)
            fcntl.ioctl(fd, _PIDFD_GET_INFO, info)
            if struct.unpack_from("Q", info, 0)[0] & _PIDFD_INFO_EXIT:
                return os.WIFSIGNALED(struct.unpack_from("i", info, 60)[0])
            time.sleep(0.005)  # ended, not yet reaped by the shim
        return True
    except OSError:
        return True
    finally:
        os.close(fd)


def _kill(prefix: list[str], sub: list[str]) -> int:
    """`kill`, with what runsc refuses done or said the way the runc shim understands.

    runc kills a container that was created but never started; runsc refuses to
    signal one (`cannot signal container ... in state created`): its `start` failed
    (a sandbox refused its network, a container a capability runsc does not know).
    Such a kill is `runsc delete --force`, which ends its gofer (and, for a
    sandbox, the sandbox); the shim's later `delete` then finds it gone, which it
    accepts. Its rootfs (`<bundle>/rootfs`, the bundle being where the shim's
    `--log` lies) is then detached: a newer runsc's sandbox keeps the container's
    overlay filestore open there, and the shim's unmount would fail for ever. The
    state is asked of runsc, not read from the wording of its error; only an
    error saying `not running` (a stopped container, or its sandbox gone: never
    one still `created`, which runsc refuses as `in state created`) spares the ask.

    The shim treats a kill of a process that is gone as done only when runc's error
    says `container not running`; runsc says `sandbox is not running` or
    `... is not running` instead, and the shim would then fail the exit handling
    for ever.
    """
    done = subprocess.run([*prefix, "kill", *sub], capture_output=True, text=True)
    ids = [a for a in sub if not a.startswith("-")]
    said = done.stderr + done.stdout
    if done.returncode != 0 and ids and "not running" not in said:
        state = subprocess.run([*prefix, "state", ids[0]], capture_output=True, text=True)
        try:
            status = json.loads(state.stdout).get("status") if state.returncode == 0 else None
        except ValueError:
            status = None
        if status == "created":
            done = subprocess.run(
                [*prefix, "delete", "--force", ids[0]], capture_output=True, text=True
            )
            log = _option(prefix, "--log")
            if done.returncode == 0 and log is not None:  # see launcher_sh: the filestore
                rootfs = os.path.join(os.path.dirname(log), "rootfs")
                subprocess.run(["umount", "-l", rootfs], capture_output=True)
            root = _option(prefix, "--root")
            if done.returncode == 0 and root is not None:  # its waiter finds it gone now
                with contextlib.suppress(OSError):
                    os.unlink(os.path.join(root, ids[0] + ".waiter"))
    sys.stdout.write(done.stdout)
    if done.returncode != 0 and "not running" in done.stderr + done.stdout:
        sys.stderr.write("container not running\n")
    else:
        sys.stderr.write(done.stderr)
    return done.returncode
