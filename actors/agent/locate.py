"""Which agent a command talks to: one rule for every command that needs the agent.

`status`, `logs`, `restart`, `check`, `import`, `preseed` and the pod commands
(`actors.agent.pods_cli`) all call `locate`, which picks the agent in this order:

1. `--socket S`: the control socket S (`status`, `logs`, `restart` only);
2. `--config FILE`: the agent of that config file (its `control.socket`);
3. `--state DIR`, else `$NODE_CONTAINERD_STATE`: the agent of that state directory;
4. the registry (`actors.agent.registry`, `/run/node-containerd/`): the one agent
   running on this machine, whatever the current directory. With several, the
   command lists them and asks for `--state` (exit 2);
5. nobody registered: the default profile's state directory, `./.node-containerd`.

A command needs more than the socket (`check` reads the agent's config, `import`
its containerd address): `AgentTarget.load_config` loads the config the agent runs
with, resolving its relative paths as the agent did (in the agent's working
directory, with its state directory), not as the current directory would.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from actors.agent.registry import AgentEntry, live_agents, registry_dir
from actors.config.errors import ConfigError
from actors.config.state_dir import CONTROL_SOCKET_NAME, DEFAULT_STATE_DIR, STATE_ENV
from actors.exit_codes import ExitCode

if TYPE_CHECKING:
    from actors.config import AgentConfig

__all__ = [
    "AgentTarget",
    "LocateError",
    "agent_containerd",
    "find_agent",
    "into_the_agents_containerd",
    "locate",
]


class LocateError(Exception):
    """No single agent could be chosen; `code` is the command's exit code."""

    def __init__(self, code: ExitCode, message: str) -> None:
        super().__init__(message)
        #: The exit code the command returns.
        self.code = code


class AgentTarget(NamedTuple):
    """The agent a command talks to (a named tuple, as `AgentEntry` is, for the same
    reason: no `dataclasses` on the way to an instant `status`). Build it with keywords."""

    #: Its control socket.
    socket: str
    #: Where the command looked, for "not running": e.g. `no control socket at '…'`.
    where: str
    #: The config file to load for it; None for the default profile.
    config: str | None = None
    #: The state directory the default profile resolves to; None: the environment's.
    state_dir: str | None = None
    #: The directory its config's relative paths are resolved in; None: the current one.
    cwd: str | None = None
    #: Its registry entry, when it was found there.
    entry: AgentEntry | None = None

    def load_config(
        self, *, env: Mapping[str, str] = os.environ, check_binaries: bool = False
    ) -> AgentConfig:
        """The config the agent runs with, as it resolved it.

        Raises:
            ConfigError: the file has problems (it may have changed since the agent read it).
        """
        from actors.config import load_config

        if self.state_dir is not None:
            env = {**env, STATE_ENV: self.state_dir}
        with _working_directory(self.cwd):
            return load_config(self.config, env=env, check_binaries=check_binaries)


@contextlib.contextmanager
def _working_directory(path: str | None) -> Iterator[None]:
    """Runs the block in `path` when it still exists; the CLI is one short process."""
    if path is None or not os.path.isdir(path):
        yield
        return
    before = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(before)


def _from_entry(entry: AgentEntry) -> AgentTarget:
    return AgentTarget(
        socket=entry.control_socket,
        where=f"no control socket at {entry.control_socket!r}",
        config=entry.config,
        state_dir=entry.state_dir,
        cwd=entry.cwd,
        entry=entry,
    )


def _several(entries: list[AgentEntry], directory: Path) -> LocateError:
    width = max(len(e.state_dir) for e in entries)
    lines = [
        f"{len(entries)} node-containerd agents are running on this machine "
        f"(registered in {str(directory)!r}); choose one with --state DIR:"
    ]
    lines += [
        f"  {e.state_dir:<{width}}  pid {e.pid}, config {e.config or 'the default profile'}"
        for e in entries
    ]
    return LocateError(ExitCode.USAGE, "\n".join(lines))


def locate(
    *,
    socket: str | None = None,
    config: str | None = None,
    state: str | None = None,
    env: Mapping[str, str] = os.environ,
) -> AgentTarget:
    """The agent a command talks to (see the module's rule).

    Args:
        socket: `--socket`, if given.
        config: `--config`, if given.
        state: `--state`, if given.
        env: the environment: `NODE_CONTAINERD_STATE`, `NODE_CONTAINERD_REGISTRY`.

    Returns:
        The target; whether it runs is for the caller to find out (it may have stopped
        since it registered).

    Raises:
        LocateError: several agents are registered and nothing chose one.
        ConfigError: `--config` names a file with problems.
    """
    directory = registry_dir(env)
    if socket:
        return AgentTarget(socket=socket, where=f"no control socket at {socket!r}", config=config)
    if config is not None:
        from actors.config import load_config

        cfg = load_config(config, env=env, check_binaries=False)
        path = str(cfg.control.socket)
        return AgentTarget(socket=path, where=f"no control socket at {path!r}", config=config)
    chosen = state or env.get(STATE_ENV)
    if chosen:
        state_dir = os.path.abspath(chosen)
        for entry in live_agents(directory):
            if os.path.abspath(entry.state_dir) == state_dir:
                return _from_entry(entry)
        path = os.path.join(state_dir, CONTROL_SOCKET_NAME)
        return AgentTarget(socket=path, where=f"no control socket at {path!r}", state_dir=state_dir)
    entries = live_agents(directory)
    if len(entries) > 1:
        raise _several(entries, directory)
    if entries:
        return _from_entry(entries[0])
    state_dir = os.path.abspath(DEFAULT_STATE_DIR)
    path = os.path.join(state_dir, CONTROL_SOCKET_NAME)
    return AgentTarget(
        socket=path,
        where=f"no agent registered in {str(directory)!r}, and no control socket at {path!r}",
        state_dir=state_dir,
    )


# ---------------------------------------------------------------- the CLI's side

#: A command's handler: the parsed arguments in, the exit code out.
Handler = Callable[[argparse.Namespace], int]


def find_agent(args: argparse.Namespace) -> AgentTarget | None:
    """Sets `args.socket` and `args.where` to those of the agent `args` chooses.

    Reads `args.socket`, `args.config` and `args.state` when the command has them.

    Returns:
        The target, or None when none could be chosen (the reason is printed: a bad
        `--config`, several agents and none chosen; exit 2).
    """
    try:
        target = locate(
            socket=getattr(args, "socket", None),
            config=getattr(args, "config", None),
            state=getattr(args, "state", None),
        )
    except ConfigError as e:
        for line in e.problems:
            print(line, file=sys.stderr)
        return None
    except LocateError as e:
        print(f"node-containerd: {e}", file=sys.stderr)
        return None
    args.socket = target.socket
    args.where = target.where
    return target


def agent_containerd(
    args: argparse.Namespace, hint: str = "", target: AgentTarget | None = None
) -> str | int:
    """containerd's socket of the running agent `args` chooses, or the exit code.

    The agent must answer on its control socket; if it does not, one line says
    so (with `hint` appended, e.g. how to do without the agent) and the exit code
    is returned. `target`: the agent, when `find_agent` already chose it.
    """
    from actors.agent.control.client import check_agent

    target = target or find_agent(args)
    if target is None:
        return ExitCode.USAGE
    args.where = target.where + hint
    answered = check_agent(args)
    if answered != ExitCode.OK:
        return answered
    if target.entry is not None:
        return target.entry.containerd_address
    try:
        return str(target.load_config().containerd.address)
    except ConfigError as e:
        for line in e.problems:
            print(line, file=sys.stderr)
        return ExitCode.USAGE


def into_the_agents_containerd(run: Handler, *, by_the_agent: str | None = None) -> Handler:
    """`import`/`preseed` without `--address`: into the running agent's containerd.

    With `by_the_agent` (`"import"`), the command asks the agent itself to run it
    first, over its plain socket (`actors.agent.control.plain`): the agent has grpc
    and the importer loaded and warm. Without an answer there (no agent, an older
    one, a lost answer) it is run here, as before.
    """

    def handler(args: argparse.Namespace) -> int:
        if args.address is None:
            target = find_agent(args)
            if target is None:
                return ExitCode.USAGE
            if by_the_agent is not None:
                from actors.agent.control.plain import run_command

                code = run_command(by_the_agent, args)
                if code is not None:
                    return code
            hint = "; or give containerd's socket with --address SOCK"
            found = agent_containerd(args, hint, target)
            if isinstance(found, int):
                return found
            args.address = found
        return int(run(args))

    return handler
