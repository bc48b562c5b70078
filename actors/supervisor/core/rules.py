"""What a runnable may ask for, and what its exit means: the core's decision tables.

These are the Go supervisor's rules, each a pure function of a node and a
request or exit, so `tree.py` only applies their verdicts:

* `run_group_error` — Go's `runGroup` checks: only a NEW node may start
  children; each name valid (whole-name match), not an existing child, not a
  reserved sub-logger name, not twice in one request.
* `sub_logger_error` — Go's `SubLogger` checks: not a child's name, a valid
  name. Reserving a name twice is allowed (Go: it is idempotent).
* `exit_outcome` — Go's `processDied`, one clause per exit kind in
  `EXIT_RULES`: OK after signalling DONE is DONE; CANCELED with a cancelled
  context is CANCELED; everything else is DEAD, with the error text a FATAL
  log line and the node status will show. (A node that was failed by the core
  is DEAD with its fault reason whatever it reports; `tree.py` checks that
  first.)

Error texts are Go's, with `!r` quoting: `runnable name 'Foo' is invalid`.
"""

from __future__ import annotations

from collections.abc import Callable

from actors.supervisor.core.errors import InvalidName
from actors.supervisor.core.events import ExitKind, RunnableSpec
from actors.supervisor.core.names import is_valid_name, validate_name
from actors.supervisor.core.node import Node
from actors.supervisor.core.states import NodeState

__all__ = ["EXIT_RULES", "exit_outcome", "run_group_error", "sub_logger_error"]

#: A node state after an exit, and the error that made it DEAD (None otherwise).
Outcome = tuple[NodeState, str | None]


def run_group_error(node: Node, children: tuple[tuple[str, RunnableSpec], ...]) -> str | None:
    """Why `node` may not start `children` as a group, or None if it may."""
    if node.state is not NodeState.NEW:
        return "cannot run new runnable on non-NEW node"
    seen: set[str] = set()
    for name, _ in children:
        try:
            validate_name(name)
        except InvalidName as e:
            return str(e)
        if name in node.children:
            return f"runnable {name!r} already exists"
        if name in node.reserved:
            return f"runnable {name!r} would shadow reserved name (eg. sub-logger)"
        if name in seen:
            return f"duplicate child name {name!r}"
        seen.add(name)
    return None


def sub_logger_error(node: Node, name: str) -> str | None:
    """Why `node` may not reserve the sub-logger `name`, or None if it may."""
    if name in node.children:
        return f"name {name!r} already in use by child runnable"
    if not is_valid_name(name):
        return f"sub-logger name {name!r} is invalid"
    return None


def _exit_ok(node: Node, error: str | None) -> Outcome:
    if node.signalled_done:
        return NodeState.DONE, None
    return NodeState.DEAD, f"returned nil when {node.state.value}"


def _exit_canceled(node: Node, error: str | None) -> Outcome:
    if node.cancelled:
        return NodeState.CANCELED, None
    return NodeState.DEAD, "returned canceled while its context was live"


def _exit_error(node: Node, error: str | None) -> Outcome:
    return NodeState.DEAD, error or "returned an error"


def _exit_crashed(node: Node, error: str | None) -> Outcome:
    return NodeState.DEAD, error or "crashed"


#: How a process exit turns into a node state (Go's `processDied`), by exit kind.
EXIT_RULES: dict[ExitKind, Callable[[Node, str | None], Outcome]] = {
    ExitKind.OK: _exit_ok,
    ExitKind.CANCELED: _exit_canceled,
    ExitKind.ERROR: _exit_error,
    ExitKind.CRASHED: _exit_crashed,
}


def exit_outcome(node: Node, kind: ExitKind, error: str | None) -> Outcome:
    """The state `node` ends in when its process exits `kind` with `error`."""
    return EXIT_RULES[kind](node, error)
