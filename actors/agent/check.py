"""`node-containerd check`: the preflight an operator runs on a new machine.

Against the running agent (found through `--config`, or the default profile),
in this order, one result per check:

1. containerd answers CRI's `Version` on its socket;
2. the sandbox image is present in namespace `k8s.io`;
3. for every registered runtime handler (`runc`; `runsc` when a runsc binary
   is configured): a pod sandbox (host network) and a container from `--image`
   (default: the sandbox image, with its own command) start, and the container
   exits 0 — by itself, or on SIGTERM from `StopContainer` if it is still
   running (as a pause image does; dying of that SIGTERM before its handler
   was installed also passes, see `_clean_exit`);
4. for `runsc`: runsc's debug lines naming that pod's sandbox ID arrive in the
   log of `root.containerd.runsc` (read through the control socket);
5. for every handler: a pod with its own network namespace gets an address from
   CNI that the node reaches (`actors.agent.check_network`). Under a runsc that
   refuses gVisor's network stack on this kernel (gVisor issue #10704) this check
   is skipped, naming that cause: a skipped check is not a failure.

Later checks that depend on an earlier one fail naming it instead of running.

**What the pods' starts took reaches the agent's metrics.** Each RunPodSandbox is
timed here, where it is called, and the times are sent to the agent over the control
socket (`ReportCheck`) when the pod checks end, however they end; the agent observes
them in `node_containerd_check_sandbox_start_duration_seconds{handler}`. The check
stays a command of the operator's (its lock, signals and cleanup are this process's);
the agent, which owns `/metrics`, only records. A report that fails is one line on
stderr, never a failed check; with the agent's metrics off it is dropped there.

**Nothing is left behind, on every way out.** Every pod is stopped and removed,
and the pods' log directory (`<state>/run/check-*`) deleted, whether the checks
passed, failed, or were interrupted:

- SIGINT, SIGTERM and SIGHUP interrupt a check alike (`actors.agent.interrupts`):
  the cleanup runs, then `check` exits 128 + the signal (130, 143, 129). A
  signal during the cleanup is kept, not obeyed: the cleanup is bounded instead
  (each pod's removal is retried for at most `_REMOVE_TIMEOUT` seconds: a
  container still being started cannot be removed at once), and a cleanup error
  never replaces the interruption or the failure it cleans up after.
- Every pod of a check carries the label `CHECK_LABEL`. A check that was killed
  outright (SIGKILL, a crash, a power cut) leaves what it had: the next check
  removes every pod with that label and every `<state>/run/check-*` directory
  before it starts, and says so on stderr. The cleanup at the end also removes
  every labelled pod, so a sandbox whose start was interrupted before its ID
  came back is not left either.
- Two checks at once would remove each other's pods: a check holds
  `<state>/run/check.lock` (`flock`) while it runs, and a second one is refused.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import shutil
import signal
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import grpc

from actors.agent.check_network import check_own_network, own_network_check_name
from actors.agent.control.wire import channel_target
from actors.agent.interrupts import Interrupted, SignalGuard
from actors.agent.sandbox import SandboxImageError, pause_archive, sandbox_image_name
from actors.config.schema import AgentConfig
from actors.containerd.api.cri import CriClient, CriError, PodRun
from actors.containerd.core.dns import RUNSC_DN
from actors.containerd.core.version import ContainerdVersion
from actors.containerd.runtimes.handlers import pod_runtime_settings
from actors.containerd.runtimes.sandbox_image import CRI_NAMESPACE
from actors.exit_codes import ExitCode
from messages.control import control_pb2 as control
from messages.control import control_pb2_grpc as control_grpc
from messages.cri.runtime.v1 import api_pb2 as cri

__all__ = ["CHECK_LABEL", "CheckBusy", "CheckResult", "cmd_check", "run_checks"]

T = TypeVar("T")

#: The CRI label of every pod a check runs: how the next check finds leftovers.
CHECK_LABEL = "node-containerd/check"
#: Seconds a container may take to start, and to exit once asked to.
_CONTAINER_TIMEOUT = 60.0
#: Seconds runsc's lines may take to arrive in the log tree.
_LOG_TIMEOUT = 15.0
#: Seconds the removal of one pod is retried (a container being started refuses it).
_REMOVE_TIMEOUT = 60.0
#: Seconds between tries of a removal.
_REMOVE_RETRY = 0.5
#: The prefix of a check's log directories under `<state>/run`.
_LOG_DIR_PREFIX = "check-"
#: The lock a running check holds, under `<state>/run`.
_LOCK_NAME = "check.lock"

#: The signals of the `check` command (installed by `cmd_check`).
_GUARD = SignalGuard()


@dataclass(frozen=True, slots=True)
class CheckResult:
    """One check's outcome."""

    #: What was checked, e.g. `pod under runsc starts and exits 0`.
    name: str
    #: Why it failed; None when it passed.
    cause: str | None = None
    #: Why it did not apply here (it counts as passed); None when it ran.
    skipped: str | None = None

    @property
    def ok(self) -> bool:
        """Whether the check passed."""
        return self.cause is None


def _attempt(name: str, step: Callable[..., T], *args: Any) -> tuple[CheckResult, T | None]:
    """Runs `step(*args)`: its check result, and its value when it passed."""
    try:
        value = step(*args)
    except (CriError, OSError, grpc.RpcError, _Failed) as e:
        return CheckResult(name, str(e)), None
    return CheckResult(name), value


class _Failed(Exception):
    """A check's own failure (not an RPC's)."""


class CheckBusy(Exception):
    """Another check runs on this state directory."""


def _remove_pod(client: CriClient, sandbox_id: str) -> str | None:
    """Removes a pod, retrying for `_REMOVE_TIMEOUT` s; the last error if it stays, else None."""
    deadline = time.monotonic() + _REMOVE_TIMEOUT
    while True:
        try:
            client.remove_sandbox(sandbox_id)
            return None
        except CriError as e:
            if time.monotonic() >= deadline:
                return str(e)
        time.sleep(_REMOVE_RETRY)


@dataclass(frozen=True, slots=True)
class _Swept:
    """What a sweep removed, and what it could not."""

    #: Pods removed.
    pods: int
    #: Log directories removed.
    dirs: int
    #: "<sandbox id>: <last error>" of each pod that stayed.
    left: tuple[str, ...]


def _sweep(client: CriClient, run_dir: Path) -> _Swept:
    """Removes every pod labelled `CHECK_LABEL` and every `check-*` log directory."""
    pods, left = 0, []
    try:
        sandboxes = client.sandbox_ids({CHECK_LABEL: "true"})
    except CriError as e:
        sandboxes, left = [], [f"(listing them): {e}"]
    for sandbox_id in sandboxes:
        error = _remove_pod(client, sandbox_id)
        if error is None:
            pods += 1
        else:
            left.append(f"{sandbox_id[:12]}: {error}")
    dirs = 0
    for path in sorted(run_dir.glob(_LOG_DIR_PREFIX + "*")):
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
            dirs += 1
    return _Swept(pods, dirs, tuple(left))


@contextmanager
def _exclusive(run_dir: Path) -> Iterator[None]:
    """Holds `<run_dir>/check.lock` for the block.

    Raises:
        CheckBusy: another check holds it.
    """
    run_dir.mkdir(mode=0o700, exist_ok=True)
    path = run_dir / _LOCK_NAME
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise CheckBusy(
                f"another check is running on this node (it holds {str(path)!r}); "
                "wait for it to end"
            ) from None
        yield
    finally:
        os.close(fd)


def _note(text: str) -> None:
    sys.stdout.flush()
    print(f"node-containerd check: {text}", file=sys.stderr, flush=True)


def _run_pod(
    client: CriClient,
    handler: str,
    image: str,
    log_dir: Path,
    guard: SignalGuard,
    starts: list[control.SandboxStart],
) -> str:
    """Runs one pod to a clean exit 0; returns its sandbox ID. Always removes it.

    Its sandbox's start time (RunPodSandbox, when it answered) is appended to `starts`.
    """
    pod = PodRun(
        client=client,
        handler=handler,
        log_dir=log_dir / handler,
        name=f"nc-check-{uuid.uuid4().hex[:10]}",
        labels={CHECK_LABEL: "true"},
    )
    ran = False
    try:
        began = time.monotonic()
        pod.start_sandbox()
        starts.append(control.SandboxStart(handler=handler, seconds=time.monotonic() - began))
        pod.start_container(image, None)
        status = pod.wait_state((cri.CONTAINER_RUNNING, cri.CONTAINER_EXITED), _CONTAINER_TIMEOUT)
        stopped = status.state == cri.CONTAINER_RUNNING
        if stopped:
            pod.stop_container(grace=10)
            status = pod.wait_state((cri.CONTAINER_EXITED,), _CONTAINER_TIMEOUT)
        if not _clean_exit(status.exit_code, stopped_by_us=stopped):
            why = " ".join(p for p in (status.reason, status.message) if p)
            raise _Failed(
                f"container from {image!r} exited {status.exit_code}" + (f" ({why})" if why else "")
            )
        ran = True
        return pod.sandbox_id
    finally:
        # Never replaces what is in flight (a failure, an interruption); a pod that stays
        # is removed by the final sweep, or by the next check.
        with guard.shielded():
            left = _remove_pod(client, pod.sandbox_id) if pod.sandbox_id else None
        if left is not None and ran:
            raise _Failed(f"the pod ran, but was not removed: {left}")


def _clean_exit(exit_code: int, *, stopped_by_us: bool) -> bool:
    """Whether a check container's exit is a pass.

    0 always is. So is death by the SIGTERM of our own `StopContainer`: a container
    reaches RUNNING when its process is started, before that process had a chance to
    install its handler (a pause's `trap`, catatonit's signalfd), so a stop sent at
    once can kill it by the signal's default action (exit 128+15). That is the
    runtime working, not the image failing.
    """
    return exit_code == 0 or (stopped_by_us and exit_code == 128 + signal.SIGTERM)


def _runsc_lines_arrive(socket: Path, sandbox_id: str) -> None:
    """Waits until a line of `RUNSC_DN`'s log names `sandbox_id`."""
    needle = sandbox_id.encode()
    deadline = time.monotonic() + _LOG_TIMEOUT
    with grpc.insecure_channel(channel_target(str(socket))) as channel:
        stub = control_grpc.ControlStub(channel)
        while True:
            request = control.LogsRequest(dn=RUNSC_DN, backlog_all=True)
            try:
                entries = list(stub.Logs(request, timeout=10))
            except grpc.RpcError as e:
                raise _Failed(
                    f"cannot read the log of {RUNSC_DN!r} from the agent at {str(socket)!r}: "
                    f"{e.details() or e.code().name}"
                ) from e
            for entry in entries:
                if needle in entry.data or any(sandbox_id in line for line in entry.lines):
                    return
            if time.monotonic() >= deadline:
                raise _Failed(
                    f"no line of {RUNSC_DN!r} names sandbox {sandbox_id[:12]} after "
                    f"{_LOG_TIMEOUT:g}s: runsc's debug log does not reach the FIFO"
                )
            time.sleep(0.2)


def _report_starts(
    socket: Path, starts: list[control.SandboxStart], note: Callable[[str], None]
) -> None:
    """Sends the sandboxes' start times to the agent's metrics; a failure is a note."""
    try:
        with grpc.insecure_channel(channel_target(str(socket))) as channel:
            request = control.ReportCheckRequest(sandbox_starts=starts)
            control_grpc.ControlStub(channel).ReportCheck(request, timeout=10)
    except grpc.RpcError as e:
        note(
            f"the pods' start times did not reach the agent's metrics at {str(socket)!r}: "
            f"{e.details() or e.code().name}"
        )


def _image_present(client: CriClient, image: str, cfg: AgentConfig) -> None:
    if client.image_present(image):
        return
    where = repr(str(cfg.preseed.dir / CRI_NAMESPACE))
    if not (cfg.cri.sandbox_image or not cfg.containerd.generate_config):
        if cfg.cri.pause_binary is not None:
            raise _Failed(
                f"not in containerd's namespace {CRI_NAMESPACE!r}; the agent builds it into "
                f"{str(pause_archive(cfg))!r} and imports it at start (and again when it is "
                "deleted): see `node-containerd logs root.containerd.preseed`"
            )
        where += (
            " (or install catatonit: Debian: apt-get install catatonit, and restart the "
            "agent, which then builds its own)"
        )
    if not cfg.preseed.enabled:
        hint = (
            f"the preseed is off ([preseed] enabled = false): import it yourself, or turn "
            f"the preseed on and put its image tarball into {where}"
        )
    elif cfg.preseed.watch:
        hint = (
            f"copy its image tarball into {where}: the agent's preseed watch imports it "
            f"as soon as the copy is complete, no restart needed"
        )
    else:
        hint = f"put its image tarball into {where} and restart the agent ([preseed] watch is off)"
    raise _Failed(f"not in containerd's namespace {CRI_NAMESPACE!r}; {hint}")


def _check_names(cfg: AgentConfig) -> list[str]:
    """The names of the checks after the first, in order, for the handlers of `cfg`."""
    names = []
    for runtime in pod_runtime_settings(cfg).runtimes:
        names.append(f"pod under {runtime.name} starts and exits 0")
        if runtime.name == "runsc":
            names.append(f"runsc's debug lines reach {RUNSC_DN}")
        names.append(own_network_check_name(runtime.name))
    return names


def _own_network(
    cfg: AgentConfig, client: CriClient, handler: str, ran: bool, log_dir: Path
) -> CheckResult:
    """The check of a pod with its own network under `handler` (`ran`: its plain pod did)."""
    name = own_network_check_name(handler)
    if not ran:
        return CheckResult(name, f"no pod under {handler} ran (see above)")
    try:
        outcome = check_own_network(
            client,
            handler,
            log_dir,
            conf_dir=cfg.cni.conf_dir,
            bin_dirs=cfg.cni.bin_dirs,
            runsc=cfg.runsc.binary,
        )
    except CriError as e:
        return CheckResult(name, str(e))
    return CheckResult(name, outcome.cause, outcome.skipped)


def run_checks(
    cfg: AgentConfig,
    image: str | None = None,
    *,
    guard: SignalGuard = _GUARD,
    note: Callable[[str], None] = _note,
) -> list[CheckResult]:
    """Runs every check against the agent of `cfg`; never raises for a failed check.

    Args:
        cfg: the agent's config.
        image: the container's image; None for the sandbox image.
        guard: the signals whose cleanup it shields (installed by `cmd_check`).
        note: where lines about leftovers go (stderr).

    Raises:
        CheckBusy: another check is running.
        Interrupted: a signal interrupted it (after the cleanup).
    """
    address = cfg.containerd.address
    client = CriClient(address)
    try:
        answered, version = _attempt(f"containerd answers on {str(address)!r}", client.version)
        rest = ["the sandbox image is present", *_check_names(cfg)]
        if version is None:
            return [
                answered,
                *(CheckResult(n, "containerd does not answer (see above)") for n in rest),
            ]
        try:
            sandbox_image = sandbox_image_name(cfg, ContainerdVersion.find(version.runtime_version))
        except SandboxImageError as e:
            return [answered, *(CheckResult(n, str(e)) for n in rest)]
        name = f"sandbox image {sandbox_image!r} is present"
        results = [
            answered,
            _attempt(name, _image_present, client, sandbox_image, cfg)[0],
        ]
        run_dir = cfg.state_dir / "run"
        with _exclusive(run_dir):
            with guard.shielded():
                swept = _sweep(client, run_dir)
            if swept.pods or swept.dirs:
                note(
                    f"removed {swept.pods} pod(s) and {swept.dirs} log directory(ies) left by "
                    "an earlier check that was interrupted"
                )
            _pods(cfg, client, image or sandbox_image, run_dir, guard, note, results)
        return results
    finally:
        client.close()


def _pods(
    cfg: AgentConfig,
    client: CriClient,
    image: str,
    run_dir: Path,
    guard: SignalGuard,
    note: Callable[[str], None],
    results: list[CheckResult],
) -> None:
    """The pod checks, appended to `results`; their log directory and pods removed after."""
    log_dir = Path(tempfile.mkdtemp(prefix=_LOG_DIR_PREFIX, dir=run_dir))
    starts: list[control.SandboxStart] = []
    try:
        for runtime in pod_runtime_settings(cfg).runtimes:
            guard.raise_pending()
            name = f"pod under {runtime.name} starts and exits 0"
            ran, sandbox = _attempt(
                name, _run_pod, client, runtime.name, image, log_dir, guard, starts
            )
            results.append(ran)
            if runtime.name == "runsc":
                name = f"runsc's debug lines reach {RUNSC_DN}"
                if sandbox is None:
                    results.append(CheckResult(name, "no runsc pod ran (see above)"))
                else:
                    lines = _attempt(name, _runsc_lines_arrive, cfg.control.socket, sandbox)
                    results.append(lines[0])
            guard.raise_pending()
            results.append(_own_network(cfg, client, runtime.name, sandbox is not None, log_dir))
    finally:
        with guard.shielded():
            swept = _sweep(client, run_dir)
            if starts:
                _report_starts(cfg.control.socket, starts, note)
        if swept.left:
            note(
                "could not remove these pods (the next check removes them): "
                + "; ".join(swept.left)
            )


def cmd_check(args: argparse.Namespace, cfg: AgentConfig) -> int:
    """Prints one line per check (or JSON); 0 if all passed, else 1; 128 + signal if interrupted."""
    try:
        with _GUARD.installed():
            results = run_checks(cfg, image=args.image)
    except Interrupted as e:
        _note(f"interrupted by {e.name}; its pods and log directory were cleaned up first")
        return e.exit_code
    except CheckBusy as e:
        _note(str(e))
        return ExitCode.FAILURE
    except OSError as e:  # its lock or log directory cannot be made (a read-only state dir)
        _note(f"cannot run: {e.strerror or e}: {e.filename!r}")
        return ExitCode.FAILURE
    if args.json:
        doc = {
            "ok": all(r.ok for r in results),
            "checks": [
                {"name": r.name, "ok": r.ok, "cause": r.cause, "skipped": r.skipped}
                for r in results
            ],
        }
        print(json.dumps(doc))
    else:
        for r in results:
            if not r.ok:
                print(f"{r.name}: FAIL: {r.cause}")
            elif r.skipped is not None:
                print(f"{r.name}: skipped: {r.skipped}")
            else:
                print(f"{r.name}: ok")
    sys.stdout.flush()
    return ExitCode.OK if all(r.ok for r in results) else ExitCode.FAILURE
