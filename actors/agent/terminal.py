"""What `run` shows on its stderr: a calm view of the log tree, and the one line saying it is up.

The log tree keeps everything (`logs`, the JSON file); stderr is for the operator
watching `run` (or the journal reading it), so `TerminalView`, the stderr sink's
`select`, leaves out or rewords a few entries there only:

* containerd's own lines (parsed from its output, on `root.containerd`) below
  WARNING: the 40-odd `loading plugin` INFO lines of every start. `run --verbose`
  shows them; the agent's own lines on that DN are always shown.
* containerd's "failed to load cni during init" ERROR, on a node with no CNI
  network config: expected there, so it becomes one INFO line saying what the node
  can run without CNI (pods on the host's network).

`UpLine` watches the tree's state changes and writes, once, the line saying the
agent is up (the first time `root.containerd` is HEALTHY: containerd answers), with
where everything is.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from dataclasses import dataclass

from actors.containerd.core.dns import CONTAINERD_DN
from actors.logtree import Entry, LeveledEntry, ParsedEntry, Severity
from actors.supervisor.core.events import StateChanged
from actors.supervisor.core.states import NodeState

__all__ = ["CNI_MISSING", "TerminalView", "UpFacts", "UpLine", "cni_note", "up_line"]

#: How containerd's CRI plugin starts the line it logs when it finds no CNI config.
CNI_MISSING = "failed to load cni during init"
#: The directory its error names, e.g. `no network config found in /etc/cni/net.d: …`.
_CNI_DIR = re.compile(r"no network config found in (\S+?):")


def cni_note(entry: ParsedEntry) -> str | None:
    """The line that replaces containerd's missing-CNI error, or None if it is not that."""
    if entry.severity < Severity.ERROR or not entry.text.startswith(CNI_MISSING):
        return None
    error = (entry.fields or {}).get("error", "")
    if "no network config found" not in error:
        return None  # a broken CNI config is a real error
    found = _CNI_DIR.search(error)
    where = f" in {found.group(1)}" if found else ""
    return (
        f"containerd found no CNI network config{where}: pods can run on the host's network "
        "only (hostNetwork, as `node-containerd check` runs them) until one is installed"
    )


class TerminalView:
    """The stderr sink's `select`: which entries the terminal shows, and how.

    Runs in the sink's thread.

    Args:
        verbose: also show containerd's own lines below WARNING.
    """

    def __init__(self, *, verbose: bool = False) -> None:
        #: Show containerd's own INFO and DEBUG lines too.
        self.verbose = verbose

    def __call__(self, entry: Entry) -> Entry | None:
        """The entry to show in place of `entry`, or None to leave it out."""
        if entry.dn != CONTAINERD_DN or not isinstance(entry, ParsedEntry):
            return entry
        note = cni_note(entry)
        if note is not None:
            return LeveledEntry.from_message(
                CONTAINERD_DN, Severity.INFO, note, timestamp=entry.timestamp, file="terminal.py"
            )
        if entry.severity < Severity.WARNING and not self.verbose:
            return None
        return entry


@dataclass(frozen=True, slots=True, kw_only=True)
class UpFacts:
    """Where the running agent's things are, for the up line."""

    #: The agent's version.
    version: str
    #: Its state directory.
    state_dir: str
    #: Its control socket.
    control_socket: str
    #: containerd's gRPC socket.
    containerd_address: str
    #: The metrics page's URL, or None when metrics are off.
    metrics: str | None
    #: containerd's own metrics page's URL, or None when it serves none.
    containerd_metrics: str | None = None


class UpLine:
    """Writes the "is up" line once, when `root.containerd` is first HEALTHY and the
    agent's facts are known, whichever comes last.

    `observe_state` runs on the supervisor actor's thread, `set_facts` on the agent's
    main thread (the tree starts before the agent registers, so either may come
    first); `write` must not block.

    Args:
        write: writes one INFO line of the agent's own (on DN `root`).
    """

    def __init__(self, write: Callable[[str], None]) -> None:
        self._write = write
        self._lock = threading.Lock()
        self._said = False
        self._healthy = False
        self._facts: UpFacts | None = None

    def observe_state(self, change: StateChanged, now: float) -> None:
        """A `StateObserver`: notes when `root.containerd` is first HEALTHY."""
        if change.dn != CONTAINERD_DN or change.new is not NodeState.HEALTHY:
            return
        with self._lock:
            self._healthy = True
            line = self._take()
        if line is not None:
            self._write(line)

    def set_facts(self, facts: UpFacts) -> None:
        """What the line says (the agent's version, where its things are)."""
        with self._lock:
            self._facts = facts
            line = self._take()
        if line is not None:
            self._write(line)

    def _take(self) -> str | None:
        """The line, if it is due now and was not said yet; under the lock."""
        if self._said or not self._healthy or self._facts is None:
            return None
        self._said = True
        return up_line(self._facts)


def up_line(facts: UpFacts) -> str:
    """`node-containerd 0.1.0 is up: state /var/lib/nc, control socket …, containerd …`."""
    text = (
        f"node-containerd {facts.version} is up: state {facts.state_dir}, control socket "
        f"{facts.control_socket}, containerd at {facts.containerd_address}"
    )
    if facts.metrics is not None:
        text += f", metrics at {facts.metrics}"
    if facts.containerd_metrics is not None:
        text += f", containerd's metrics at {facts.containerd_metrics}"
    return text
