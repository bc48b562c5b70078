"""`node-containerd config`: print the default profile or the systemd unit, check files.

Its parsers are added by `cli.build_parser`; each action imports what it needs only
when it runs, so `--help` stays cheap.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from actors.exit_codes import ExitCode, exit_codes_help

__all__ = ["Subcommand", "add_parsers"]


class Subcommand(Protocol):
    """Adds one subcommand to `commands` (`cli._sub`)."""

    def __call__(
        self, commands: Any, name: str, summary: str, description: str, epilog: str = ...
    ) -> argparse.ArgumentParser:
        """The subcommand's parser."""
        ...


def add_parsers(
    commands: Any,
    sub: Subcommand,
    usage_error: Callable[[argparse.ArgumentParser, str], int],
    print_problems: Callable[[Sequence[str]], None],
) -> None:
    """Adds `config` and its actions to the command line's `commands`.

    Args:
        commands: the subparsers of `node-containerd`.
        sub: adds one subcommand (`cli._sub`: help, description, exit codes).
        usage_error: prints a usage error of a parser; its exit code.
        print_problems: prints a config's problems on stderr.
    """
    p = sub(
        commands,
        "config",
        "print the default config, or check a config file",
        "Print the built-in default profile, or check config files.",
        epilog=exit_codes_help(
            {ExitCode.OK: "ok", ExitCode.USAGE: "bad usage, or a config file has problems"}
        ),
    )
    actions = p.add_subparsers(title="actions", metavar="ACTION")
    d = sub(
        actions,
        "default",
        "print the default profile as TOML",
        "Print the built-in default profile: a commented, working config that\n"
        "documents every key. Save it, edit it, pass it to `run --config`.",
        epilog=exit_codes_help({ExitCode.OK: "ok"}),
    )
    d.set_defaults(handler=_cmd_config_default)
    c = sub(
        actions,
        "check",
        "check config files",
        "Check config files as `run` would, without starting anything: unknown keys,\n"
        "wrong types, bad durations and sizes, impossible values, socket paths too\n"
        "long, a missing containerd binary or config file. Prints `FILE: ok`, or\n"
        "every problem on stderr, one per line, each naming the file, the key, the\n"
        "value and what is allowed.",
        epilog=exit_codes_help(
            {ExitCode.OK: "every file is fine", ExitCode.USAGE: "a file has problems"}
        ),
    )
    c.add_argument("files", nargs="+", metavar="FILE", help="a config file; - for stdin")
    c.set_defaults(handler=lambda args: _cmd_config_check(args, print_problems))
    u = sub(
        actions,
        "unit",
        "print the systemd unit for this installation",
        "Print the systemd unit (node-containerd.service) whose ExecStart= is this\n"
        "installation's node-containerd and whose config is --config-file.",
        epilog=exit_codes_help({ExitCode.OK: "ok", ExitCode.USAGE: "a path is invalid"}),
    )
    u.add_argument(
        "--executable",
        metavar="PATH",
        default=None,
        help="the agent's executable (default: this installation's bin/node-containerd)",
    )
    u.add_argument(
        "--config-file",
        metavar="FILE",
        default="/etc/node-containerd/config.toml",
        help="the config file the unit runs the agent with (default: %(default)s)",
    )
    u.set_defaults(handler=_cmd_config_unit)
    p.set_defaults(handler=lambda args: usage_error(p, "an action is required"))


def _cmd_config_default(args: argparse.Namespace) -> int:
    from actors.config import default_toml

    sys.stdout.write(default_toml())
    sys.stdout.flush()
    return ExitCode.OK


def _cmd_config_unit(args: argparse.Namespace) -> int:
    from actors.agent.systemd.unit import installed_executable, render_unit

    try:
        text = render_unit(args.executable or installed_executable(), args.config_file)
    except ValueError as e:
        print(f"node-containerd: {e}", file=sys.stderr)
        return ExitCode.USAGE
    sys.stdout.write(text)
    sys.stdout.flush()
    return ExitCode.OK


def _cmd_config_check(
    args: argparse.Namespace, print_problems: Callable[[Sequence[str]], None]
) -> int:
    from actors.config import ConfigError, load_config, parse_config

    status = ExitCode.OK
    for name in args.files:
        try:
            if name == "-":
                name = "<stdin>"
                parse_config(sys.stdin.read(), source=name)
            else:
                load_config(name)
        except ConfigError as e:
            print_problems(e.problems)
            status = ExitCode.USAGE
        else:
            print(f"{name}: ok")
    return status
