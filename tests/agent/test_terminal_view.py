"""What `run` shows on its terminal: containerd's INFO lines and its CNI error left to the log
tree, and the one line saying the agent is up."""

from __future__ import annotations

from actors.agent.terminal import TerminalView, UpFacts, UpLine
from actors.logtree import LeveledEntry, ParsedEntry, Severity
from actors.supervisor.core.events import StateChanged
from actors.supervisor.core.states import NodeState

CNI_ERROR = (
    "cni config load failed: no network config found in /etc/cni/net.d: cni plugin not "
    "initialized: failed to load cni config"
)


def parsed(
    text: str, severity: Severity, dn: str = "root.containerd", **fields: str
) -> ParsedEntry:
    return ParsedEntry(
        1, dn, severity, 1.5, "", 0, 0, text, fields or None, text.encode(), len(text), b""
    )


def test_containerds_own_info_lines_are_left_out_unless_verbose() -> None:
    line = parsed("loading plugin", Severity.INFO)
    warning = parsed("failed to load plugin", Severity.WARNING)
    ours = LeveledEntry.from_message("root.containerd", Severity.INFO, "started", timestamp=1.0)
    elsewhere = parsed("a runsc line", Severity.DEBUG, dn="root.containerd.runsc")
    quiet, verbose = TerminalView(), TerminalView(verbose=True)
    assert [quiet(e) for e in (line, warning, ours, elsewhere)] == [None, warning, ours, elsewhere]
    assert verbose(line) is line


def test_the_missing_cni_error_becomes_one_info_line_saying_what_the_node_can_run() -> None:
    error = parsed(
        "failed to load cni during init, please check CRI plugin status before setting up "
        "network for pods",
        Severity.ERROR,
        error=CNI_ERROR,
    )
    assert TerminalView()(error) == LeveledEntry.from_message(
        "root.containerd",
        Severity.INFO,
        "containerd found no CNI network config in /etc/cni/net.d: pods can run on the "
        "host's network only (hostNetwork, as `node-containerd check` runs them) until one "
        "is installed",
        timestamp=1.5,
        file="terminal.py",
    )
    broken = parsed(error.text, Severity.ERROR, error="cni config load failed: bad JSON")
    assert TerminalView()(broken) is broken


#: What the agent knows of itself once registered, and the up line it makes.
FACTS = UpFacts(
    version="0.1.0",
    state_dir="/s",
    control_socket="/s/control.sock",
    containerd_address="/s/c.sock",
    metrics=None,
)
UP_LINE = (
    "node-containerd 0.1.0 is up: state /s, control socket /s/control.sock, containerd at /s/c.sock"
)


def test_the_up_line_is_written_once_when_containerd_is_first_healthy() -> None:
    written: list[str] = []
    up = UpLine(written.append)
    up.set_facts(FACTS)
    healthy = StateChanged(dn="root.containerd", old=NodeState.NEW, new=NodeState.HEALTHY)
    up.observe_state(StateChanged(dn="root", old=None, new=NodeState.NEW), 0.0)
    up.observe_state(healthy, 1.0)
    up.observe_state(healthy, 2.0)
    assert written == [UP_LINE]


def test_the_up_line_waits_for_the_facts_when_containerd_is_healthy_first() -> None:
    written: list[str] = []
    up = UpLine(written.append)
    healthy = StateChanged(dn="root.containerd", old=NodeState.NEW, new=NodeState.HEALTHY)
    up.observe_state(healthy, 1.0)
    assert written == []
    up.set_facts(FACTS)
    up.observe_state(healthy, 2.0)
    assert written == [UP_LINE]
