"""The agent set up for pods: both runtime handlers, and a pause and a busybox image.

`agent_for_pods` is an `AgentUnderTest` (not started) in a base directory gVisor's sandbox
user may search (made 0711; see `actors.containerd.runtimes.runsc.access`), with a
config registering both handlers and the test's own sandbox image, and its CRI client
made up front so that `cleanup` removes every pod, also those a failed `check` left.
`pod_images` builds the pause and busybox images with the real tools (umoci, skopeo,
Debian's static busybox); `start_pod_agent` is an agent with both preseeded, ready.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from actors.agent.check_network import netstack_refused_cause
from tests.support.agent import AgentUnderTest
from tests.support.images.tools import busybox_image

__all__ = [
    "BUSYBOX_REF",
    "PAUSE_ENTRYPOINT",
    "PAUSE_REF",
    "RUNC_NET",
    "RUNSC_NET",
    "agent_for_pods",
    "pause_image",
    "pod_images",
    "runsc_network_line",
    "runsc_refuses_its_network_stack",
    "start_pod_agent",
]

#: The tests' sandbox image.
PAUSE_REF = "example.test/pause:1"
#: The tests' application image.
BUSYBOX_REF = "example.test/busybox:1"
#: A pause that exits 0 on SIGTERM (busybox's sleep as PID 1 would ignore it).
PAUSE_ENTRYPOINT = ("/bin/sh", "-c", "trap 'exit 0' TERM INT; sleep 2147483647 & wait")


def pause_image(work: Path) -> Path:
    """`<work>/pause-1.tar`: the oci-archive of `PAUSE_REF`."""
    return busybox_image(work, PAUSE_REF, entrypoint=PAUSE_ENTRYPOINT, cmd=())


def pod_images(work: Path) -> dict[str, Path]:
    """The pause and busybox images as oci-archive tarballs in `work`, by role."""
    return {"pause": pause_image(work), "busybox": busybox_image(work, BUSYBOX_REF)}


def agent_for_pods(
    base: Path, *, extra_config: str = "", runsc_flags: Sequence[str] = (), **driver: Any
) -> AgentUnderTest:
    """An agent for pods under `base` (not started); its config is `<base>/agent.toml`.

    Args:
        base: the agent's directory (made 0711).
        extra_config: TOML appended to `[runsc]` (a key of it, or whole tables).
        runsc_flags: `[runsc] flags`.
        **driver: more arguments of `AgentUnderTest` (command, cwd, env).
    """
    os.chmod(base, 0o711)
    config = base / "agent.toml"
    state = base / "st"
    flags = ", ".join(json.dumps(f) for f in runsc_flags)
    config.write_text(
        f'state_dir = "{state}"\n'
        f"[runsc]\nflags = [{flags}]\n{extra_config}\n"
        f'[cri]\nsandbox_image = "{PAUSE_REF}"\n'
    )
    agent = AgentUnderTest(base, config=config, state=state, **driver)
    agent.client  # noqa: B018 - made now, so that `cleanup` removes every pod
    return agent


def start_pod_agent(
    images: Mapping[str, Path],
    extra_config: str = "",
    runsc_flags: Sequence[str] = (),
    own_netns: bool = False,
) -> AgentUnderTest:
    """A started agent with both `images` preseeded, ready; in a fresh `/tmp` directory.

    `own_netns`: in a network namespace of its own (see `AgentUnderTest`); every test
    that runs a pod with its own network needs it.
    """
    agent = agent_for_pods(
        Path(tempfile.mkdtemp(prefix="nc-pod-", dir="/tmp")),
        extra_config=extra_config,
        runsc_flags=runsc_flags,
        own_netns=own_netns,
    )
    agent.preseed(images["pause"], images["busybox"])
    agent.start()
    try:
        agent.wait_ready()
    except BaseException:
        agent.cleanup()
        raise
    return agent


#: `check`'s line for a pod with its own network under runc.
RUNC_NET = "pod with its own network under runc gets an address the node reaches"
#: `check`'s line for a pod with its own network under runsc.
RUNSC_NET = "pod with its own network under runsc gets an address the node reaches"


def runsc_refuses_its_network_stack() -> bool:
    """Whether the runsc here predates gVisor issue #10704 (opened 2024-07-30) on a kernel
    that shows `/proc/sys/net/core/rmem_default` in a new network namespace."""
    shown = subprocess.run(
        ["unshare", "--net", "test", "-e", "/proc/sys/net/core/rmem_default"], timeout=30
    )
    version = subprocess.run(
        ["runsc", "--version"], capture_output=True, text=True, timeout=30
    ).stdout
    released = re.search(r"(20\d{6})", version)
    return shown.returncode == 0 and released is not None and released.group(1) < "20240730"


def runsc_network_line() -> str:
    """The line of the runsc network check on this machine: ok, or skipped for #10704."""
    if runsc_refuses_its_network_stack():
        return f"{RUNSC_NET}: skipped: {netstack_refused_cause(shutil.which('runsc'))}"
    return f"{RUNSC_NET}: ok"
