"""The command line: `bin/node-containerd` (`python -m actors.agent.cli`).

One parser per command, one handler per command. Handlers are imported only when
their command runs, so `--help`, `--version` and `config ...` import neither
grpc nor pykka:

    run           actors.agent.daemon.run_agent(cfg)
    status        actors.agent.control.client.cmd_status(args)
    logs          actors.agent.control.client.cmd_logs(args)
    restart       actors.agent.control.client.cmd_restart(args)
    import        } parsers and handlers from actors.preseed.cli.add_parsers(subparsers);
    preseed       } loaded only when one of them is the command
    config        here: default, check, unit
    check         actors.agent.check.cmd_check(args, cfg)
    image         actors.agent.images.cmd_build_pause(args) (`image build-pause`)
    pods, ps, images, inspect, logs-of, stopp, rmp
                  actors.agent.pods_cli (CRI, like crictl)

Every handler gets the parsed `argparse.Namespace` and returns an exit code. A
subparser names its handler with `set_defaults(handler=...)` (or `func=...`,
as `actors.preseed.cli` does). A command that needs the agent finds it by the one
rule of `actors.agent.locate` (`--socket`, `--config`, `--state`,
`$NODE_CONTAINERD_STATE`, the registry of running agents, `./.node-containerd`);
for `status`, `logs` and `restart`, `args.socket` is then a path string and
`args.where` says where the command looked, for the "not running" message.

Exit codes (`actors.exit_codes.ExitCode`, the one set every command returns):
0 ok; 1 the command failed (the agent could not start, or stopped on an
escalation); 2 bad usage or a bad config (also `run` not as root, several agents
and none chosen); 3 the agent is not running; 4 what answers on the control socket
is not a node-containerd agent; 70 a bug (the only case with a traceback, see
`_report_bug`); 130 interrupted (Ctrl-C; `run` shuts down and `logs -f` stops with
0 instead); 141 stdout was closed early (e.g. piped into `head`).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

from actors.agent.arguments import dn_argument, lines_argument, severity_argument, since_argument
from actors.agent.help_format import HelpFormatter
from actors.exit_codes import ExitCode, exit_codes_help

__all__ = ["build_parser", "main"]

PROG = "node-containerd"


_EXIT_CODES_HELP = exit_codes_help(
    {
        ExitCode.OK: "ok",
        ExitCode.FAILURE: "the command failed: the agent could not start (the cause on "
        "stderr) or stopped on an escalation, an import failed, ...",
        ExitCode.USAGE: "bad usage or a bad config file; nothing was started (also: `run` "
        "not as root, several agents running and none chosen)",
        ExitCode.NOT_RUNNING: "the agent is not running (no control socket, or nobody listens "
        "on it)",
        ExitCode.NOT_OURS: "what answers on the control socket is not a node-containerd agent",
        ExitCode.BUG: "a bug in node-containerd: a traceback and a request to report it",
        ExitCode.INTERRUPTED: "interrupted (Ctrl-C; `run` and `logs -f` exit 0 on it instead)",
        ExitCode.BROKEN_PIPE: "stdout was closed early (e.g. piped into `head`)",
    }
)

_PRESEED_COMMANDS = ("import", "preseed")

Handler = Callable[[argparse.Namespace], int]


def main(argv: Sequence[str] | None = None) -> int:
    """Runs one command.

    Args:
        argv: the arguments after the program name; None for `sys.argv[1:]`.

    Returns:
        The exit code (see `ExitCode`).
    """
    args_list = list(sys.argv[1:] if argv is None else argv)
    command = _command_of(args_list)
    if command in _PRESEED_COMMANDS and _preseed_cli() is None:
        print(f"{PROG}: the {command} command is not available in this build", file=sys.stderr)
        return ExitCode.FAILURE
    parser = build_parser(command)
    try:
        args = parser.parse_args(args_list)
    except SystemExit as e:  # --help, --version, or a usage error (already printed)
        return e.code if isinstance(e.code, int) else ExitCode.USAGE
    handler = getattr(args, "handler", None) or getattr(args, "func", None)
    if handler is None:
        parser.print_usage(sys.stderr)
        print(f"{PROG}: error: a command is required", file=sys.stderr)
        return ExitCode.USAGE
    try:
        return int(handler(args))
    except KeyboardInterrupt:
        print(file=sys.stderr)
        return ExitCode.INTERRUPTED
    except BrokenPipeError:
        # Keep Python from complaining again when it flushes stdout at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return ExitCode.BROKEN_PIPE
    except Exception:  # noqa: BLE001 - the one place a bug is shown, as a bug
        return _report_bug()


def _report_bug() -> int:
    """Prints the traceback of an exception no handler expected, and asks for a report.

    A user's mistake or the machine's state is one or two lines from the handler that
    knows it; only what nobody foresaw gets here.
    """
    import traceback

    from actors.agent import __version__

    traceback.print_exc()
    print(
        f"{PROG}: this is a bug in node-containerd {__version__}, not something you did; "
        "please report it with the traceback above",
        file=sys.stderr,
    )
    return ExitCode.BUG


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser: the whole one, or only the command's when it is one of `_ALONE`.

    Args:
        command: the command about to run, if known. Only when it is `import` or
            `preseed` are the preseed parsers (and their module) loaded; otherwise
            those commands appear in `--help` by name only. A command of `_ALONE`
            gets its own parser and no other: building all of them costs more than
            `status` itself.
    """
    from actors.agent import __version__

    parser = argparse.ArgumentParser(
        prog=PROG,
        formatter_class=HelpFormatter,
        description=(
            "Keep containerd running on this machine, pump gVisor runsc's logs, and\n"
            "import the container images the machine must have from its first second,\n"
            "on a supervision tree of processes."
        ),
        epilog=(
            "Run `node-containerd COMMAND --help` for a command's options.\n\n"
            "finding the agent (status, logs, restart, check, import, preseed, pods, ...):\n"
            "  --socket, --config FILE, --state DIR or NODE_CONTAINERD_STATE choose one;\n"
            "  else the one agent registered in /run/node-containerd (from any directory;\n"
            "  with several, the command lists them); else ./.node-containerd.\n\n"
            "environment:\n"
            "  NODE_CONTAINERD_STATE     the state directory when the config names none\n"
            "                            (default: ./.node-containerd)\n"
            "  NODE_CONTAINERD_REGISTRY  where agents register (default:\n"
            "                            /run/node-containerd)\n"
            "  NO_COLOR                  no colours, even on a terminal\n\n" + _EXIT_CODES_HELP
        ),
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")
    _add_run(commands)
    alone = _ALONE.get(command or "")
    if alone is not None:
        alone(commands)
        return parser
    _add_status(commands)
    _add_logs(commands)
    _add_restart(commands)
    _add_preseed(commands, load=command in _PRESEED_COMMANDS)
    from actors.agent.config_cli import add_parsers as add_config_parsers

    add_config_parsers(commands, _sub, _usage_error, _print_problems)
    _add_check(commands)
    _add_image(commands)
    from actors.agent.pods_cli import add_parsers as add_pod_parsers

    add_pod_parsers(commands, _agent_options)
    return parser


#: Commands whose parser is built alone when they are the command at hand.
_ALONE: dict[str, Callable[[Any], None]] = {
    "status": lambda c: _add_status(c),
    "logs": lambda c: _add_logs(c),
    "restart": lambda c: _add_restart(c),
    "import": lambda c: _add_preseed(c, load=True),
    "preseed": lambda c: _add_preseed(c, load=True),
}


def _command_of(argv: Sequence[str]) -> str | None:
    """The command word: the first argument that is not an option."""
    return next((a for a in argv if not a.startswith("-")), None)


def _sub(
    commands: Any, name: str, summary: str, description: str, epilog: str = _EXIT_CODES_HELP
) -> argparse.ArgumentParser:
    sub: argparse.ArgumentParser = commands.add_parser(
        name,
        help=summary,
        description=description,
        epilog=epilog,
        formatter_class=HelpFormatter,
    )
    return sub


def _add_run(commands: Any) -> None:
    p = _sub(
        commands,
        "run",
        "run the agent in the foreground",
        "Start the supervision tree in the foreground: containerd (root.containerd),\n"
        "the runsc log pump (root.containerd.runsc) and the image preseed\n"
        "(root.containerd.preseed), as root. A bad config is refused before anything\n"
        "starts. One line says when it is up and where its sockets are; containerd's\n"
        "own INFO lines stay in the log tree (`logs root.containerd`), not on stderr.\n"
        "SIGTERM or SIGINT shut the tree down in reverse order and exit 0; a failure\n"
        "that escalates to the root stops the agent with exit 1 and the reason on\n"
        "stderr. SIGHUP reopens the JSON log file and reloads the config file: log\n"
        "settings, restart policies and the metrics address change at once, the\n"
        "rest at the next start (one line per key says which); a config with\n"
        "problems is refused whole and the agent runs on.",
    )
    _config_option(
        p,
        "the config file (default: the built-in default profile, see\n"
        "`node-containerd config default`)",
    )
    p.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="also show containerd's own INFO lines on stderr",
    )
    p.set_defaults(handler=_cmd_run)


def _add_status(commands: Any) -> None:
    p = _sub(
        commands,
        "status",
        "show every node of the running agent",
        "Show every node of the running agent's tree: its DN, state, pid, restarts,\n"
        "last error and time in its state. A tree on a terminal (coloured), or JSON:\n"
        '  {"nodes": [{"dn": ..., "state": "NEW|HEALTHY|DEAD|DONE|CANCELED",\n'
        '              "pid": int|null, "restarts": int, "last_error": str|null,\n'
        '              "since": float}]}',
    )
    p.add_argument("--json", action="store_true", help="print JSON instead of a tree")
    _control_options(p)
    p.set_defaults(handler=_control("cmd_status"))


def _add_logs(commands: Any) -> None:
    from actors.supervisor.core.severity import SEVERITY_NAMES  # here: status needs none

    p = _sub(
        commands,
        "logs",
        "show or follow the log of a node",
        "Show the log of one node of the running agent (or of the whole tree), from\n"
        "the backlog it keeps (the newest 8192 entries per node), and optionally\n"
        "follow new entries as they come (after the last 10, as `tail -f` does).\n"
        "On a terminal, warnings and errors are coloured (not with NO_COLOR).",
    )
    p.add_argument(
        "dn",
        nargs="?",
        type=dn_argument,
        metavar="DN",
        help="the node, e.g. root.containerd (default: the whole tree)",
    )
    p.add_argument(
        "-f", "--follow", action="store_true", help="keep printing new entries until interrupted"
    )
    p.add_argument(
        "--children", action="store_true", help="include the node's descendants (its whole subtree)"
    )
    p.add_argument(
        "-n",
        "--lines",
        type=lines_argument,
        metavar="N",
        default=None,
        help="show at most the last N entries of the backlog, or `all` (default: all; "
        "with -f the last 10; 0 with -f: only new ones)",
    )
    p.add_argument(
        "--severity",
        type=severity_argument,
        metavar="S",
        default=None,
        help="show leveled entries of at least this severity: "
        + ", ".join(SEVERITY_NAMES)
        + " (raw lines are always shown; containerd's and runsc's lines are leveled "
        "entries when parsed, see [log.parse])",
    )
    p.add_argument(
        "--since",
        type=since_argument,
        metavar="WHEN",
        default=None,
        help="show only backlog entries whose own time is at or after WHEN: a duration "
        "before now (90s, 15m, 2h) or a time (2026-12-04T02:36:55Z; no zone: local)",
    )
    p.add_argument(
        "--sandbox",
        metavar="ID",
        default=None,
        help="only runsc's lines of the pod sandbox whose ID starts with ID (lines of "
        "root.containerd.runsc carry the sandbox and container they are about; a line "
        "runsc did not tie to one carries none and is left out)",
    )
    p.add_argument(
        "--container",
        metavar="ID",
        default=None,
        help="only runsc's lines of the container whose ID starts with ID",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object per entry")
    kinds = p.add_mutually_exclusive_group()
    kinds.add_argument(
        "--raw-only",
        action="store_true",
        help="only raw lines (a program's own output, e.g. containerd's)",
    )
    kinds.add_argument(
        "--leveled-only",
        action="store_true",
        help="only leveled entries (INFO ... FATAL with source location)",
    )
    _control_options(p)
    p.set_defaults(handler=_control("cmd_logs"))


def _add_restart(commands: Any) -> None:
    p = _sub(
        commands,
        "restart",
        "restart a node and its subtree now",
        "Cancel a node of the running agent, with its whole subtree, so that the\n"
        "supervisor starts it again at once (no backoff).",
    )
    p.add_argument(
        "dn", type=dn_argument, metavar="DN", help="the node, e.g. root.containerd.runsc"
    )
    _control_options(p)
    p.set_defaults(handler=_control("cmd_restart"))


def _add_preseed(commands: Any, *, load: bool) -> None:
    module = _preseed_cli() if load else None
    if module is not None:
        module.add_parsers(commands, HelpFormatter)
        from actors.agent.locate import into_the_agents_containerd

        for name in _PRESEED_COMMANDS:
            sub = commands.choices[name]
            _agent_options(sub.add_argument_group("agent (without --address)"))
            by_the_agent = name if name == "import" else None
            func = into_the_agents_containerd(sub.get_default("func"), by_the_agent=by_the_agent)
            sub.set_defaults(func=func)
        return
    for name, text in (
        # Their one-line help as actors.preseed.cli gives it, without importing it.
        ("import", "import image archives into a containerd namespace"),
        ("preseed", "import every archive of a preseed directory"),
    ):
        commands.add_parser(name, help=text, description=text)


def _preseed_cli() -> Any:
    """The module `actors.preseed.cli`, or None when this build lacks it."""
    return _optional_module("actors.preseed.cli")


def _optional_module(name: str) -> Any:
    """Imports module `name`; None when it (or its package) does not exist."""
    import importlib

    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as e:
        if e.name is None or not name.startswith(e.name):
            raise
        return None


def _add_check(commands: Any) -> None:
    p = _sub(
        commands,
        "check",
        "preflight: can this node run pods?",
        "Check the running agent's node, one line per check, `ok` or `FAIL: cause`:\n"
        "containerd answers; the sandbox image is present; under every registered\n"
        "runtime handler (runc, runsc) a pod sandbox and a container from --image\n"
        "start and exit 0 (a container still running is stopped with SIGTERM and must\n"
        "exit 0); runsc's debug lines reach root.containerd.runsc. Every pod is\n"
        "removed afterwards, even when a step fails or a signal interrupts it, and\n"
        "the leftovers of an earlier check that was killed are removed first.",
        epilog=exit_codes_help(
            {
                ExitCode.OK: "every check passed",
                ExitCode.FAILURE: "a check failed, or another check is running",
                ExitCode.USAGE: "a bad config file",
                ExitCode.HUNG_UP: "SIGHUP, after removing the check's pods",
                ExitCode.INTERRUPTED: "SIGINT (Ctrl-C), after removing the check's pods",
                ExitCode.TERMINATED: "SIGTERM, after removing the check's pods",
            }
        ),
    )
    _agent_options(p.add_argument_group("agent"))
    p.add_argument(
        "--image",
        metavar="REF",
        default=None,
        help="the container's image (default: the sandbox image)",
    )
    p.add_argument("--json", action="store_true", help='print {"ok": bool, "checks": [...]}')
    p.set_defaults(handler=_cmd_check)


def _add_image(commands: Any) -> None:
    p = _sub(
        commands,
        "image",
        "build the node's own sandbox image as a tarball",
        "Images the node makes itself.",
        epilog="exit codes:\n  0    ok\n  1    the command failed\n  2    bad usage",
    )
    actions = p.add_subparsers(title="actions", metavar="ACTION")
    b = _sub(
        actions,
        "build-pause",
        "write the sandbox image the agent builds, as an OCI tarball",
        'Write the sandbox ("pause") image the agent builds at every start: one layer\n'
        "holding the pause binary (catatonit) as /pause, entrypoint `/pause -P`, named\n"
        "localhost/node-containerd/pause:<its version>. The same binary gives the same\n"
        "bytes on every machine. Copy it into another node's <state>/preseed/k8s.io/ and\n"
        "set that node's [cri] sandbox_image to the name printed.",
        epilog="exit codes:\n  0    ok\n  1    no pause binary, or the file cannot be written",
    )
    b.add_argument(
        "--binary",
        metavar="PATH",
        default=None,
        help="the static pause binary (default: catatonit, looked up on PATH)",
    )
    b.add_argument(
        "--output",
        metavar="FILE",
        default="pause.tar",
        help="where to write the tarball (default: pause.tar; - for stdout)",
    )
    b.set_defaults(handler=_cmd_build_pause)
    p.set_defaults(handler=lambda args: _usage_error(p, "an action is required"))


def _config_option(p: argparse.ArgumentParser, text: str) -> None:
    p.add_argument("--config", metavar="FILE", default=None, help=text)


def _control_options(p: argparse.ArgumentParser) -> None:
    group = p.add_argument_group("agent")
    group.add_argument(
        "--socket",
        metavar="S",
        default=None,
        help="the agent's control socket (default: found as `--help` says)",
    )
    _agent_options(group)


def _agent_options(group: Any, *, config: bool = True) -> None:
    """`--config` and `--state`: which agent, when the one found is not the one meant."""
    if config:
        group.add_argument(
            "--config",
            metavar="FILE",
            default=None,
            help="the agent's config file, to find its control socket",
        )
    group.add_argument(
        "--state",
        metavar="DIR",
        default=None,
        help="the agent's state directory (default: the one agent registered in "
        "/run/node-containerd, else ./.node-containerd)",
    )


# -- handlers -------------------------------------------------------------------


def _print_problems(problems: Sequence[str]) -> None:
    for line in problems:
        print(line, file=sys.stderr)


def _usage_error(parser: argparse.ArgumentParser, message: str) -> int:
    parser.print_usage(sys.stderr)
    print(f"{parser.prog}: error: {message}", file=sys.stderr)
    return ExitCode.USAGE


def _cmd_run(args: argparse.Namespace) -> int:
    if os.geteuid() != 0:
        print(
            f"{PROG}: run needs root (containerd mounts file systems and makes namespaces); "
            f"start it as root, e.g. sudo {PROG} run",
            file=sys.stderr,
        )
        return ExitCode.USAGE
    from actors.agent.preload import spawn_early_zygote
    from actors.config.errors import ConfigError

    # The zygote loads the runnables' modules while this process loads the agent and
    # reads the config: nothing else is imported before it is on its way.
    early = spawn_early_zygote()
    try:
        from actors.agent.daemon import AgentError, run_agent
        from actors.config.load import load_config
        from actors.supervisor.runtime.switching import use_fast_switching

        cfg = load_config(args.config)
    except BaseException as e:
        early.close()
        if not isinstance(e, ConfigError):
            raise
        _print_problems(e.problems)
        return ExitCode.USAGE
    use_fast_switching()  # process-global: set here, at the entry point, not by a library
    try:
        return int(run_agent(cfg, verbose=args.verbose, early=early))
    except AgentError as e:
        print(f"node-containerd: {e}", file=sys.stderr)
        return ExitCode.FAILURE


def _cmd_check(args: argparse.Namespace) -> int:
    from actors.agent.control.client import check_agent
    from actors.agent.locate import find_agent
    from actors.config import ConfigError

    target = find_agent(args)
    if target is None:
        return ExitCode.USAGE

    answered = check_agent(args)
    if answered != ExitCode.OK:
        return answered
    try:
        cfg = target.load_config()
    except ConfigError as e:
        _print_problems(e.problems)
        return ExitCode.USAGE
    from actors.agent.check import cmd_check

    return int(cmd_check(args, cfg))


def _cmd_build_pause(args: argparse.Namespace) -> int:
    from actors.agent.images import cmd_build_pause

    return int(cmd_build_pause(args))


def _control(name: str) -> Handler:
    """A handler that finds the agent, then asks its plain socket, else calls
    control_cli.<name> (gRPC: `logs -f`, or an agent without the plain socket)."""

    def handler(args: argparse.Namespace) -> int:
        from actors.agent.locate import find_agent

        if find_agent(args) is None:
            return ExitCode.USAGE
        plain = _optional_module("actors.agent.control.plain")
        if plain is not None:  # the plain socket first: no grpc to import
            code: int | None = plain.run_command(name.removeprefix("cmd_"), args)
            if code is not None:
                return code
        control_cli = _optional_module("actors.agent.control.client")
        if control_cli is None:
            print(f"{PROG}: the control commands are not available in this build", file=sys.stderr)
            return ExitCode.FAILURE
        command: Handler = getattr(control_cli, name)
        return int(command(args))

    return handler


if __name__ == "__main__":
    sys.exit(main())
