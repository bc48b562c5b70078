"""`node-containerd check`: a pod with its own network namespace, under one runtime handler.

What a Kubernetes pod that is not hostNetwork needs: CRI sets its network namespace up
with CNI (`actors.containerd.runtimes.cni`), and the pod gets an address the node
reaches. In order:

1. CRI's `NetworkReady` condition is true (it has loaded a CNI config); else the
   check fails with CRI's message and where the config belongs;
2. every plugin the networks CRI loaded name (and their IPAM plugins) is in one of
   CRI's plugin directories (from its verbose status); else the check fails naming
   them and what to install, without running a pod: CRI could not tear such a pod's
   network down, and would keep its sandbox until the plugins are there;
3. a pod sandbox with its own network namespace starts under the handler, and CRI
   reports its IP address;
4. the node reaches that address: a TCP connection to `PROBE_PORT` is answered, by
   a refusal (nothing listens there in a pause container, and the refusal comes
   from the pod's own network stack) or by an accept. No answer within
   `PROBE_TIMEOUT` fails the check.

The pod is always removed (a removal that fails is said in the outcome). A failure
names its cause; the errors CRI gives for a missing plugin or a missing config get a
hint saying what to install or set.

One failure is not the node's: Debian 12's runsc (release 2022-12-19), like every
runsc before gVisor issue #10704 (July 2024) was fixed, refuses gVisor's network
stack in every network namespace on kernels that show
`/proc/sys/net/core/rmem_default` in namespaces other than the host's (recent ones:
the issue saw it on 6.11, not on 6.6), taking each for the host's. That is reported
as the check skipped, with the cause and what to do, not as a failure: the runsc in
use cannot give a pod gVisor's network stack on this kernel.
"""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import socket
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from actors.containerd.api.cri import CriClient, CriError, PodRun

__all__ = [
    "NETSTACK_REFUSED",
    "PROBE_PORT",
    "PROBE_TIMEOUT",
    "NetworkOutcome",
    "check_own_network",
    "cni_hint",
    "missing_cni_plugins",
    "netstack_refused_cause",
    "own_network_check_name",
]

#: runsc's error when it takes the pod's network namespace for the host's.
NETSTACK_REFUSED = "cannot run with network enabled in root network namespace"
#: The TCP port the node connects to on the pod's address (the discard service:
#: nothing listens there in a pause container).
PROBE_PORT = 9
#: Seconds the pod's address may take to answer the node.
PROBE_TIMEOUT = 5.0
#: What to do about missing CNI plugins.
_INSTALL = (
    "install them (Debian: apt-get install containernetworking-plugins, or scripts/setup) "
    "or set [cni] bin_dirs to where they are"
)


@dataclass(frozen=True, slots=True, kw_only=True)
class NetworkOutcome:
    """How the check went: passed, failed (`cause`) or not applicable (`skipped`)."""

    #: The pod's IP address, when it got one.
    address: str = ""
    #: Why the check failed; None when it did not.
    cause: str | None = None
    #: Why the check does not apply here (not a failure); None when it ran.
    skipped: str | None = None


def own_network_check_name(handler: str) -> str:
    """The check's name for `handler`."""
    return f"pod with its own network under {handler} gets an address the node reaches"


def missing_cni_plugins(
    cniconfig: str, is_file: Callable[[Path], bool]
) -> tuple[list[str], list[str]]:
    """The plugins CRI's loaded networks need that none of its plugin directories holds.

    Args:
        cniconfig: CRI's verbose status entry `cniconfig` (go-cni's JSON: `PluginDirs`,
            `Networks[].Config.Plugins[].Network` with `type` and `ipam.type`).
        is_file: whether a path is an executable file.

    Returns:
        The missing plugins in the order the networks name them, and the directories;
        nothing missing when the text is not what go-cni writes.
    """
    try:
        doc = json.loads(cniconfig)
        dirs = [str(d) for d in doc.get("PluginDirs") or []]
        wanted: list[str] = []
        for network in doc.get("Networks") or []:
            for plugin in network["Config"]["Plugins"] or []:
                conf = plugin["Network"]
                for name in (conf.get("type"), (conf.get("ipam") or {}).get("type")):
                    if isinstance(name, str) and name and name not in wanted:
                        wanted.append(name)
    except (ValueError, KeyError, TypeError, AttributeError):
        return [], []
    missing = [name for name in wanted if not any(is_file(Path(d) / name) for d in dirs)]
    return missing, dirs


def cni_hint(error: str, conf_dir: Path, bin_dirs: tuple[Path, ...]) -> str:
    """What to do about a CNI error of CRI's; "" when there is nothing to add.

    Args:
        error: CRI's error text.
        conf_dir: `[cni] conf_dir`.
        bin_dirs: `[cni] bin_dirs`.
    """
    if "failed to find plugin" in error:
        dirs = ", ".join(repr(str(d)) for d in bin_dirs)
        return f"; the CNI plugins are not in [cni] bin_dirs ({dirs}): {_INSTALL}"
    if "cni config" in error or "cni plugin not initialized" in error:
        return (
            f'; no usable CNI config in {str(conf_dir)!r}: leave [cni] conf_dir "" for the '
            "agent's default network, or let the cluster's network add-on write its config there"
        )
    return ""


def netstack_refused_cause(runsc: str | None) -> str:
    """Why a runsc that said `NETSTACK_REFUSED` for a pod with its own namespace did."""
    which = f"runsc {runsc!r}" if runsc else "this runsc"
    return (
        f"{which} refuses gVisor's network stack in every network namespace on Linux "
        f"{platform.release()}, which shows /proc/sys/net/core/rmem_default in every "
        "namespace: it takes each for the host's (gVisor issue #10704 of July 2024, "
        "fixed upstream since); install a newer runsc, or set [runsc] flags = "
        '["--network=host"] to give such pods their namespace through the host kernel\'s '
        "network stack instead of gVisor's"
    )


def _network_unusable(client: CriClient) -> str | None:
    """Why CRI cannot set a pod's network up (not ready, plugins missing); None: it can."""
    status = client.status(verbose=True)
    for condition in status.status.conditions:
        if condition.type == "NetworkReady" and not condition.status:
            why = ": ".join(p for p in (condition.reason, condition.message) if p) or "not ready"
            return f"CRI's network is not ready ({why})"
    missing, dirs = missing_cni_plugins(
        status.info.get("cniconfig", ""), lambda p: p.is_file() and os.access(p, os.X_OK)
    )
    if missing:
        listed = ", ".join(repr(d) for d in dirs)
        return (
            f"CNI plugins {', '.join(missing)} of the networks CRI loaded are not in its "
            f"plugin directories ({listed}): {_INSTALL}"
        )
    return None


def _reach(address: str) -> None:
    """Connects to `address`:`PROBE_PORT`; raises `OSError` when nothing answers.

    A refusal is an answer: the pod's network stack sent it.
    """
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.settimeout(PROBE_TIMEOUT)
        try:
            sock.connect((address, PROBE_PORT))
        except ConnectionRefusedError:
            return


def _run_pod(
    client: CriClient, pod: PodRun, runsc: str | None, conf_dir: Path, bin_dirs: tuple[Path, ...]
) -> NetworkOutcome:
    """Starts `pod`'s sandbox, asks its address and reaches it; does not remove it."""
    address = ""
    try:
        pod.start_sandbox()
        address = client.sandbox_ip(pod.sandbox_id)
        if not address:
            return NetworkOutcome(cause="CRI reports no IP address for the pod")
        _reach(address)
        return NetworkOutcome(address=address)
    except CriError as e:
        text = str(e)
        if pod.handler == "runsc" and NETSTACK_REFUSED in text:
            return NetworkOutcome(skipped=netstack_refused_cause(runsc))
        return NetworkOutcome(cause=text + cni_hint(text, conf_dir, bin_dirs))
    except OSError as e:
        reason = "no answer" if isinstance(e, TimeoutError) else (e.strerror or str(e))
        return NetworkOutcome(
            address=address,
            cause=(
                f"the node does not reach the pod at {address}:{PROBE_PORT} ({reason}): "
                "is the bridge up, or does a firewall drop the traffic?"
            ),
        )


def check_own_network(
    client: CriClient,
    handler: str,
    log_dir: Path,
    *,
    conf_dir: Path,
    bin_dirs: tuple[Path, ...],
    runsc: str | None = None,
) -> NetworkOutcome:
    """Runs one pod with its own network namespace under `handler`; always removes it.

    Args:
        client: CRI on the agent's containerd.
        handler: the runtime handler.
        log_dir: where the pod's log directory is made.
        conf_dir: `[cni] conf_dir`, named in hints.
        bin_dirs: `[cni] bin_dirs`, named in hints.
        runsc: the runsc binary, named when it refuses gVisor's network stack.

    Returns:
        The outcome; a pod that could not be removed makes it a failure that says so.
    """
    try:
        unusable = _network_unusable(client)
    except CriError as e:
        return NetworkOutcome(cause=str(e))
    if unusable is not None:
        return NetworkOutcome(cause=unusable + cni_hint(unusable, conf_dir, bin_dirs))
    pod = PodRun(
        client=client, handler=handler, log_dir=log_dir / f"{handler}-net", own_network=True
    )
    outcome = _run_pod(client, pod, runsc, conf_dir, bin_dirs)
    left = pod.sandbox_id[:12]
    try:
        pod.remove()
    except CriError as e:
        why = f"its sandbox {left} is left behind: {e}"
        cause = f"{outcome.cause}; {why}" if outcome.cause else why
        return dataclasses.replace(outcome, cause=cause, skipped=None)
    return outcome
