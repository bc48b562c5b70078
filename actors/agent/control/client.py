"""`node-containerd status | logs | restart`: the control socket's client side.

Each command takes the parsed `argparse.Namespace` of `actors.agent.cli` and returns
an exit code. The socket is `args.socket`, or, when that is None, the
`control.socket` of `args.config` (or of the default profile). Before any other
call the client connects once by hand (to tell "nobody there" from "someone else
there") and then calls Hello, so it only ever talks to a node-containerd agent.

Exit codes (`actors.exit_codes.ExitCode`, what each means here):

* `OK` (0): done (`logs -f`: also when stopped with Ctrl-C, or when the agent stops).
* `FAILURE` (1): the command failed: unknown DN, a refused restart, the agent lost
  midway, or the agent is not answering (it listens, but gave no answer in time).
* `USAGE` (2): a bad config file (when the socket is looked up in it).
* `NOT_RUNNING` (3): node-containerd is not running: no socket file, or nobody
  listens on it.
* `NOT_OURS` (4): what answers on the socket is not a node-containerd control socket.

Messages go to stderr, unprefixed, each naming the socket or DN at fault, e.g.
`node-containerd is not running: no control socket at '/run/nc/control.sock'`.

An answer that does not come in time is named as such — `node-containerd at
'…' is not answering: no reply to Hello within 5s` — never taken for "not a
node-containerd control socket" (which only a wrong answer, or no gRPC at all,
means); an agent refusing a call for lack of room (RESOURCE_EXHAUSTED) is quoted.
`logs` without `-f` takes the whole backlog before it prints, so a slow
terminal or a paused pager never holds a stream of the agent's.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, NoReturn, TextIO, assert_never, cast

import grpc

from actors.agent.control.wire import (
    PRODUCT,
    PROTOCOL_VERSION,
    SocketState,
    channel_target,
    entry_from_proto,
    facts_from_proto,
    hello,
    probe_socket,
)
from actors.containerd.core.dns import CONTAINERD_DN
from actors.containerd.runtimes.sandbox_image import SANDBOX_IMAGE_FACT, SandboxImageState
from actors.exit_codes import ExitCode
from actors.logtree import Severity, entry_to_dict, format_entry
from actors.preseed.importing import IMPORTING_FACT, imports_of
from actors.supervisor.core.names import ROOT_DN
from messages.control import control_pb2 as pb
from messages.control import control_pb2_grpc as pb_grpc

__all__ = [
    "check_agent",
    "cmd_logs",
    "cmd_restart",
    "cmd_status",
    "fact_activity",
    "fact_warnings",
    "logs_request",
    "node_notes",
    "print_entry",
    "render_status",
    "restart_text",
    "status_json",
    "status_text",
]

#: Seconds to wait for Hello, and for Status and Restart.
HELLO_TIMEOUT = 5.0
CALL_TIMEOUT = 30.0

#: How many backlog entries `logs -f` shows before following, as `tail -f` does.
FOLLOW_BACKLOG = 10

#: SGR codes of leveled lines by severity on a terminal; INFO stays plain.
_SEVERITY_COLOURS = {
    Severity.DEBUG: "2",  # dim
    Severity.WARNING: "33",  # yellow
    Severity.ERROR: "31",  # red
    Severity.FATAL: "1;31",  # bold red
}

_STATE_COLOURS = {
    "NEW": "33",  # yellow
    "HEALTHY": "32",  # green
    "DONE": "34",  # blue
    "DEAD": "1;31",  # bold red
    "CANCELED": "35",  # magenta
}


class _CommandError(Exception):
    """Ends a command with an exit code and a message for stderr."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


# ---------------------------------------------------------------- commands


def cmd_status(args: argparse.Namespace) -> int:
    """`status [--json]`: every node of the tree, as a tree view or as JSON."""
    return _run(_status, args)


def cmd_logs(args: argparse.Namespace) -> int:
    """`logs [DN] [-f] [--children] [-n N|all] [--severity S] [--since WHEN] [--sandbox ID]
    [--container ID] [--json] [--raw-only]`.

    No DN reads the whole tree. Without `-n`, the whole backlog, or with `-f` its
    newest `FOLLOW_BACKLOG` entries. Leveled lines are coloured by severity on a
    terminal (not with `NO_COLOR`, never when piped). `-f` follows until Ctrl-C (exit 0)
    or until the agent stops; entries the agent had to drop because this reader was too
    slow are reported on stderr where they were dropped.
    """
    return _run(_logs, args)


def cmd_restart(args: argparse.Namespace) -> int:
    """`restart DN`: cancels DN's subtree so the supervisor starts it again now."""
    return _run(_restart, args)


def check_agent(args: argparse.Namespace) -> int:
    """Whether a node-containerd agent answers on `args.socket` (Hello), for commands
    that talk to it otherwise (`check`, `import`): `OK`, or the one-line reason printed
    and its exit code (`NOT_RUNNING`, `NOT_OURS`, `FAILURE`)."""

    def hello_only(args: argparse.Namespace) -> int:
        with _connect(args):
            return ExitCode.OK

    return _run(hello_only, args)


def _run(command: Any, args: argparse.Namespace) -> int:
    try:
        code: int = command(args)
    except _CommandError as e:
        sys.stdout.flush()
        print(e, file=sys.stderr)
        return e.code
    return code


def _status(args: argparse.Namespace) -> int:
    with _connect(args) as (stub, path):
        reply = _call(stub.Status, pb.StatusRequest(), path, "status")
    colour = sys.stdout.isatty() and not os.environ.get("NO_COLOR")
    sys.stdout.write(status_text(reply, as_json=args.json, colour=colour))
    return ExitCode.OK


def status_text(reply: pb.StatusReply, *, as_json: bool, colour: bool) -> str:
    """What `status` prints for a reply: the tree view (with `fact_warnings` and
    `node_notes`), or the `status_json` document on one line.

    The one rendering of a status: the gRPC client and the plain socket's server
    (`plain_server`) both print this, so the two cannot drift.
    """
    if as_json:
        return json.dumps(status_json(reply)) + "\n"
    notes = node_notes(reply, _child_named)
    return render_status(
        reply,
        colour=colour,
        warnings=fact_warnings(reply),
        notes=notes,
        activity=fact_activity(reply),
    )


def _sandbox_state(node: pb.NodeStatus) -> SandboxImageState | None:
    """The sandbox image's state a node reported as its fact, if it did."""
    if SANDBOX_IMAGE_FACT not in node.facts:
        return None
    return SandboxImageState.from_fact(facts_from_proto(node).get(SANDBOX_IMAGE_FACT))


def node_notes(
    reply: pb.StatusReply, child_named: Callable[[int, str], int | None]
) -> dict[str, str]:
    """{DN: a word on its line}: what the root's DONE means, containerd's own pid.

    Args:
        reply: the tree's status.
        child_named: (pid, command name) -> the pid of that child of the process, if any.
    """
    notes = {}
    for n in reply.nodes:
        if n.dn == ROOT_DN and n.state == pb.NODE_STATE_DONE:
            notes[n.dn] = "root: started its children, which run on"
        elif n.dn == CONTAINERD_DN and n.HasField("pid"):
            pid = child_named(n.pid, "containerd")
            if pid is not None:
                notes[n.dn] = f"containerd's own pid {pid}"
    return notes


def _child_named(pid: int, name: str) -> int | None:
    """The pid of a child process of `pid` whose command is `name`, read from /proc."""
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return None
    for task in tasks:
        try:
            with open(f"/proc/{pid}/task/{task}/children", encoding="ascii") as f:
                children = f.read().split()
        except OSError:
            continue
        for child in children:
            try:
                with open(f"/proc/{child}/comm", encoding="utf-8") as f:
                    if f.read().strip() == name:
                        return int(child)
            except OSError:
                continue
    return None


def fact_warnings(reply: pb.StatusReply) -> dict[str, str]:
    """{DN: warning} for the facts that call for one: a missing sandbox image."""
    warnings = {}
    for n in reply.nodes:
        state = _sandbox_state(n)
        if state is not None and state.warning is not None:
            warnings[n.dn] = state.warning
    return warnings


def fact_activity(reply: pb.StatusReply) -> dict[str, list[str]]:
    """{DN: lines} of work under way its facts show: the preseed's imports."""
    activity = {}
    for n in reply.nodes:
        if IMPORTING_FACT in n.facts:
            imports = imports_of(facts_from_proto(n).get(IMPORTING_FACT))
            if imports:
                activity[n.dn] = [p.text() for p in imports]
    return activity


def _restart(args: argparse.Namespace) -> int:
    with _connect(args) as (stub, path):
        reply = _call(stub.Restart, pb.RestartRequest(dn=args.dn), path, f"restart {args.dn!r}")
    sys.stdout.write(restart_text(args.dn, reply))
    return ExitCode.OK


def restart_text(dn: str, reply: pb.RestartReply) -> str:
    """What `restart DN` prints once the agent cancelled DN's subtree."""
    others = [d for d in reply.cancelled if d != dn]
    text = f"restarting {dn}: cancelled it"
    if others:
        text += f" and {len(others)} node(s) below it ({', '.join(others)})"
    return text + "; the supervisor starts it again now\n"


def _logs(args: argparse.Namespace) -> int:
    request = logs_request(args)
    follow = bool(getattr(args, "follow", False))
    as_json = bool(getattr(args, "json", False))
    colour = not as_json and sys.stdout.isatty() and not os.environ.get("NO_COLOR")
    with _connect(args) as (stub, path):
        call = stub.Logs(request)
        try:
            # A backlog is taken whole first: the agent's stream never waits for stdout.
            for msg in call if follow else list(call):
                if msg.kind == pb.ENTRY_KIND_MISSED:
                    sys.stdout.flush()
                    print(
                        f"node-containerd: {msg.missed} log entries missed here: this "
                        "reader was too slow and the agent does not wait for readers",
                        file=sys.stderr,
                    )
                    continue
                print_entry(msg, as_json, sys.stdout, colour)
                if follow:
                    sys.stdout.flush()
        except KeyboardInterrupt:
            call.cancel()
            if not follow:
                raise
        except grpc.RpcError as e:
            _fail_rpc(e, path, f"read the logs of {request.dn or 'root'!r}")
        else:
            if follow:
                sys.stdout.flush()
                print("node-containerd: the agent stopped: no more log entries", file=sys.stderr)
    sys.stdout.flush()
    return ExitCode.OK


# ---------------------------------------------------------------- rendering


def status_json(reply: pb.StatusReply) -> dict[str, Any]:
    """The `status --json` document: `{"nodes": [...], "sandbox_image": ...}`.

    Nodes in tree order, each with the facts it reported; `sandbox_image` is the
    sandbox image's state as the node that watches it last reported it (with that
    node's `dn`), null when no node did.
    """
    sandbox = None
    for n in reply.nodes:
        state = _sandbox_state(n)
        if state is not None:
            sandbox = {**state.to_fact(), "dn": n.dn}
    return {
        "nodes": [
            {
                "dn": n.dn,
                "state": _state_name(n.state),
                "pid": n.pid if n.HasField("pid") else None,
                "restarts": n.restarts,
                "last_error": n.last_error if n.HasField("last_error") else None,
                "since": n.since,
                "facts": facts_from_proto(n),
            }
            for n in reply.nodes
        ],
        "sandbox_image": sandbox,
    }


def render_status(
    reply: pb.StatusReply,
    *,
    colour: bool = False,
    warnings: Mapping[str, str] | None = None,
    notes: Mapping[str, str] | None = None,
    activity: Mapping[str, list[str]] | None = None,
) -> str:
    """The `status` tree view: one line per node, indented by DN depth.

    Times in state are measured against the agent's clock (`reply.now`).
    `warnings` (DN → text) are shown under their node: `fact_warnings`, e.g. a
    missing sandbox image; `notes` (DN → text, `node_notes`) in parentheses at the end
    of its line; `activity` (DN → lines, `fact_activity`), e.g. imports under way,
    under the node.
    """
    if not reply.nodes:
        return "no nodes: the supervision tree has not started yet\n"
    width = max(2 * n.dn.count(".") + len(n.dn) for n in reply.nodes)
    lines = [f"{'NODE':<{width}}  {'STATE':<8}  {'PID':>7}  {'RESTARTS':>8}  FOR"]
    for n in reply.nodes:
        depth = n.dn.count(".")
        name = f"{'  ' * depth}{n.dn}"
        state = _state_name(n.state)
        shown = f"{state:<8}"
        if colour:
            shown = f"\x1b[{_STATE_COLOURS.get(state, '0')}m{shown}\x1b[0m"
        pid = str(n.pid) if n.HasField("pid") else "-"
        line = f"{name:<{width}}  {shown}  {pid:>7}  {n.restarts:>8}  "
        line += _duration(reply.now - n.since)
        if n.HasField("restart_at"):
            line += f", restarting in {_duration(n.restart_at - reply.now)}"
        if notes and n.dn in notes:
            line += f"  ({notes[n.dn]})"
        lines.append(line)
        if n.HasField("last_error"):
            error = f"{'  ' * (depth + 1)}last error: {n.last_error}"
            lines.append(f"\x1b[31m{error}\x1b[0m" if colour else error)
        if warnings and n.dn in warnings:
            warning = f"{'  ' * (depth + 1)}warning: {warnings[n.dn]}"
            lines.append(f"\x1b[33m{warning}\x1b[0m" if colour else warning)
        for text in (activity or {}).get(n.dn, ()):
            lines.append(f"{'  ' * (depth + 1)}{text}")
    return "\n".join(lines) + "\n"


def _state_name(state: int) -> str:
    name: str = pb.NodeState.Name(state)
    return name.removeprefix("NODE_STATE_")


def _duration(seconds: float) -> str:
    """`"850ms"`, `"42s"`, `"3m07s"`, `"5h02m"`, `"3d04h"`."""
    seconds = max(seconds, 0.0)
    if seconds < 1:
        return f"{int(seconds * 1000)}ms"
    whole = int(seconds)
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    if whole < 86400:
        return f"{whole // 3600}h{whole % 3600 // 60:02d}m"
    return f"{whole // 86400}d{whole % 86400 // 3600:02d}h"


def print_entry(msg: pb.LogEntry, as_json: bool, out: TextIO, colour: bool = False) -> None:
    """Writes one log entry as `logs` prints it: its lines (coloured by severity when
    `colour`, leveled entries only) or one JSON object."""
    entry = entry_from_proto(msg)
    if as_json:
        out.write(json.dumps(entry_to_dict(entry)) + "\n")
        return
    text = format_entry(entry)
    code = _SEVERITY_COLOURS.get(entry.severity) if colour and entry.kind == "leveled" else None
    if code is not None:
        text = "\n".join(f"\x1b[{code}m{line}\x1b[0m" for line in text.split("\n"))
    out.write(text + "\n")


def logs_request(args: argparse.Namespace) -> pb.LogsRequest:
    """The LogsRequest of `logs`' options (`-n`, `--severity`, `--since`, kinds, ...)."""
    dn = getattr(args, "dn", None)
    request = pb.LogsRequest(
        dn=dn or "",
        subtree=bool(getattr(args, "children", False)) or not dn,
        follow=bool(getattr(args, "follow", False)),
    )
    lines = getattr(args, "lines", None)
    if lines == "all" or (lines is None and not request.follow):
        request.backlog_all = True
    else:
        request.backlog_count = FOLLOW_BACKLOG if lines is None else lines
    severity: Severity | None = getattr(args, "severity", None)
    if severity is not None:
        request.min_severity = cast("pb.Severity", severity.proto)
    since = getattr(args, "since", None)
    if since is not None:
        request.since = since
    if getattr(args, "raw_only", False):
        request.kinds = pb.KIND_FILTER_RAW
    elif getattr(args, "leveled_only", False):
        request.kinds = pb.KIND_FILTER_LEVELED
    for key in ("sandbox", "container"):
        prefix = getattr(args, key, None)
        if prefix:
            request.field_prefixes[key] = prefix
    return request


# ---------------------------------------------------------------- connecting


def _socket_path(args: argparse.Namespace) -> str:
    socket_path: str | None = getattr(args, "socket", None)
    if socket_path:
        return socket_path
    from actors.config import ConfigError, load_config

    try:
        cfg = load_config(getattr(args, "config", None), check_binaries=False)
    except ConfigError as e:
        raise _CommandError(ExitCode.USAGE, str(e)) from e
    return str(cfg.control.socket)


def _not_running(path: str, where: str | None = None) -> _CommandError:
    """`where`: where the command looked (`actors.agent.locate`), if not just `path`."""
    return _CommandError(
        ExitCode.NOT_RUNNING,
        f"node-containerd is not running: {where or f'no control socket at {path!r}'}",
    )


def _not_ours(path: str) -> _CommandError:
    return _CommandError(ExitCode.NOT_OURS, f"{path!r} is not a node-containerd control socket")


def _not_answering(path: str, why: str) -> _CommandError:
    return _CommandError(ExitCode.FAILURE, f"node-containerd at {path!r} is not answering: {why}")


def _busy(path: str, error: grpc.Call) -> str:
    return f"node-containerd at {path!r} refused the call: {error.details() or 'no room'}"


@contextmanager
def _connect(args: argparse.Namespace) -> Iterator[tuple[pb_grpc.ControlStub, str]]:
    """Opens a channel to the agent, checked with Hello; yields its stub and the path."""
    path = _socket_path(args)
    where: str | None = getattr(args, "where", None)
    match probe_socket(path):
        case SocketState.MISSING | SocketState.REFUSED:
            raise _not_running(path, where)
        case SocketState.NOT_SOCKET:
            raise _not_ours(path)
        case SocketState.DENIED:
            raise _CommandError(
                ExitCode.FAILURE, f"cannot connect to control socket {path!r}: permission denied"
            )
        case SocketState.LISTENING:
            pass
        case unexpected:
            assert_never(unexpected)
    with grpc.insecure_channel(channel_target(path)) as channel:
        try:
            reply = hello(channel, HELLO_TIMEOUT)
        except grpc.RpcError as e:
            if probe_socket(path) in (SocketState.MISSING, SocketState.REFUSED):
                raise _not_running(path, where) from e
            code = e.code() if isinstance(e, grpc.Call) else None
            if code == grpc.StatusCode.DEADLINE_EXCEEDED:
                raise _not_answering(path, f"no reply to Hello within {HELLO_TIMEOUT:g}s") from e
            if code == grpc.StatusCode.RESOURCE_EXHAUSTED:
                raise _CommandError(ExitCode.FAILURE, _busy(path, e)) from e
            raise _not_ours(path) from e
        if reply.product != PRODUCT:
            raise _not_ours(path)
        if reply.protocol != PROTOCOL_VERSION:
            raise _CommandError(
                ExitCode.FAILURE,
                f"the agent at {path!r} (version {reply.version}) speaks control protocol "
                f"{reply.protocol}, this client {PROTOCOL_VERSION}: use the matching client",
            )
        yield pb_grpc.ControlStub(channel), path


def _call(method: Any, request: Any, path: str, what: str) -> Any:
    try:
        return method(request, timeout=CALL_TIMEOUT)
    except grpc.RpcError as e:
        _fail_rpc(e, path, what)


def _fail_rpc(error: grpc.RpcError, path: str, what: str) -> NoReturn:
    code, details = grpc.StatusCode.UNKNOWN, str(error)
    if isinstance(error, grpc.Call):  # what a failed call raises
        code, details = error.code(), error.details() or error.code().name.lower()
    if code == grpc.StatusCode.UNAVAILABLE and probe_socket(path) in (
        SocketState.MISSING,
        SocketState.REFUSED,
    ):
        raise _CommandError(
            ExitCode.NOT_RUNNING, f"node-containerd stopped: no control socket at {path!r}"
        ) from error
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        raise _not_answering(path, f"no reply to {what} within {CALL_TIMEOUT:g}s") from error
    if code == grpc.StatusCode.CANCELLED and what.startswith("read the logs"):
        raise _CommandError(
            ExitCode.FAILURE,
            f"cannot {what}: the agent ended the stream, which this reader had not read "
            "from for too long",
        ) from error
    if not details.startswith("cannot "):  # the agent's own message may say it already
        details = f"cannot {what}: {details}"
    raise _CommandError(ExitCode.FAILURE, details) from error
