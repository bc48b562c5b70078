"""The exit codes of every `node-containerd` command, spelled once.

`node-containerd` and its commands (`run`, `status`, `logs`, `restart`, `import`,
`preseed`, `config`, `check`) each return one of `ExitCode`, so a script reads the
same number for the same thing whichever command it ran. The `exit codes:` block
of a command's `--help` is rendered from it by `exit_codes_help`.

This is what our commands return; how a *child* process ended, in words, is
`actors.exit_status`. A leaf: it imports nothing of the project, so the agent's
CLI, the control client and the preseed's one-shot CLI all may use it.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping

__all__ = ["ExitCode", "exit_codes_help"]


class ExitCode(enum.IntEnum):
    """The exit status of every command."""

    #: Done, or (`config check`) every file is fine.
    OK = 0
    #: The command ran and failed: the agent stopped on an escalation, an import
    #: failed, a restart was refused, a check failed.
    FAILURE = 1
    #: Bad arguments or a bad config file; nothing was started.
    USAGE = 2
    #: The agent is not running: no control socket, or nobody listens on it.
    NOT_RUNNING = 3
    #: What answers on the control socket is not a node-containerd agent.
    NOT_OURS = 4
    #: Hung up: SIGHUP (128 + 1), as shells report it (`check`, after its cleanup).
    HUNG_UP = 129
    #: A bug in node-containerd: a traceback was printed, with a request to report it
    #: (`EX_SOFTWARE` of sysexits.h).
    BUG = 70
    #: Interrupted by SIGINT (128 + 2), as shells report it.
    INTERRUPTED = 130
    #: stdout was closed before all was written (128 + SIGPIPE).
    BROKEN_PIPE = 141
    #: Terminated: SIGTERM (128 + 15), as shells report it (`check`, after its cleanup).
    TERMINATED = 143


def exit_codes_help(meanings: Mapping[ExitCode, str]) -> str:
    """The `exit codes:` block of a `--help` text, one line per code, in `meanings`' order.

    Args:
        meanings: each code the command may return -> what it means there.

    Returns:
        The block, e.g. `"exit codes:\\n  0    ok\\n  2    a file has problems"`.
    """
    return "exit codes:\n" + "\n".join(
        f"  {code.value:<5}{text}" for code, text in meanings.items()
    )
