"""`node-containerd check`: the preflight an operator runs on a new machine.

Against the running agent (found through `--config`, or the default profile),
in this order, one result per check:

1. containerd answers CRI's `Version` on its socket;
2. the sandbox image is present in namespace `k8s.io`;
3. for every registered runtime handler (`runc`; `runsc` when a runsc binary
   is configured): a pod sandbox (host network) and a container from `--image`
   (default: the sandbox image, with its own command) start, and the container
   exits 0 — by itself, or on SIGTERM from `StopContainer` if it is still
   running (as a pause image does);
4. for `runsc`: runsc's debug lines naming that pod's sandbox ID arrive in the
   log of `root.containerd.runsc` (read through the control socket);
5. for every handler: a pod with its own network namespace gets an address from
   CNI that the node reaches (`actors.agent.check_network`). Under a runsc that
   refuses gVisor's network stack on this kernel (gVisor issue #10704) this check
   is skipped, naming that cause: a skipped check is not a failure.

Nothing is left behind: every pod is stopped and removed, even when a step
failed, and the pods' log directory (under `<state>/run`) is deleted. Later
checks that depend on an earlier one fail naming it instead of running.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import grpc

from actors.agent.check_network import check_own_network, own_network_check_name
from actors.agent.control.wire import channel_target
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

__all__ = ["CheckResult", "cmd_check", "run_checks"]

T = TypeVar("T")

#: The DN whose log receives runsc's FIFO.
#: Seconds a container may take to start, and to exit once asked to.
_CONTAINER_TIMEOUT = 60.0
#: Seconds runsc's lines may take to arrive in the log tree.
_LOG_TIMEOUT = 15.0


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


def _run_pod(client: CriClient, handler: str, image: str, log_dir: Path) -> str:
    """Runs one pod to a clean exit 0; returns its sandbox ID. Always removes it."""
    pod = PodRun(client=client, handler=handler, log_dir=log_dir / handler)
    try:
        pod.start_sandbox()
        pod.start_container(image, None)
        status = pod.wait_state((cri.CONTAINER_RUNNING, cri.CONTAINER_EXITED), _CONTAINER_TIMEOUT)
        if status.state == cri.CONTAINER_RUNNING:
            pod.stop_container(grace=10)
            status = pod.wait_state((cri.CONTAINER_EXITED,), _CONTAINER_TIMEOUT)
        if status.exit_code != 0:
            why = " ".join(p for p in (status.reason, status.message) if p)
            raise _Failed(
                f"container from {image!r} exited {status.exit_code}" + (f" ({why})" if why else "")
            )
        return pod.sandbox_id
    finally:
        pod.remove()


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


def run_checks(cfg: AgentConfig, image: str | None = None) -> list[CheckResult]:
    """Runs every check against the agent of `cfg`; never raises for a failed check."""
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
        results = [answered, _attempt(name, _image_present, client, sandbox_image, cfg)[0]]
        log_dir = Path(tempfile.mkdtemp(prefix="check-", dir=cfg.state_dir / "run"))
        try:
            for runtime in pod_runtime_settings(cfg).runtimes:
                name = f"pod under {runtime.name} starts and exits 0"
                ran, sandbox = _attempt(
                    name, _run_pod, client, runtime.name, image or sandbox_image, log_dir
                )
                results.append(ran)
                if runtime.name == "runsc":
                    name = f"runsc's debug lines reach {RUNSC_DN}"
                    if sandbox is None:
                        results.append(CheckResult(name, "no runsc pod ran (see above)"))
                    else:
                        results.append(
                            _attempt(name, _runsc_lines_arrive, cfg.control.socket, sandbox)[0]
                        )
                results.append(
                    _own_network(cfg, client, runtime.name, sandbox is not None, log_dir)
                )
        finally:
            shutil.rmtree(log_dir, ignore_errors=True)
        return results
    finally:
        client.close()


def cmd_check(args: argparse.Namespace, cfg: AgentConfig) -> int:
    """Prints one line per check (or JSON); 0 when all passed, else 1."""
    results = run_checks(cfg, image=args.image)
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
