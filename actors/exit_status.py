"""How a process ended, in words: the one wording for exit statuses.

The root says it about a runnable's host process (a raw wait status from
`os.waitpid`), the containerd runnable about containerd (a `Popen.returncode`);
both go through `describe_returncode`, so an operator reads the same words
everywhere: `exit status 1`, `killed by signal SIGKILL`.
"""

from __future__ import annotations

import os
import signal

__all__ = ["describe_returncode", "describe_wait_status"]


def describe_returncode(returncode: int) -> str:
    """Words for a `Popen.returncode`: `exit status 1`, `killed by signal SIGKILL`.

    Args:
        returncode: the exit code, or minus the number of the signal that killed it.

    Returns:
        The words, e.g. `killed by signal 77` for a signal without a name.
    """
    if returncode >= 0:
        return f"exit status {returncode}"
    try:
        return f"killed by signal {signal.Signals(-returncode).name}"
    except ValueError:
        return f"killed by signal {-returncode}"


def describe_wait_status(status: int) -> str:
    """Words for a raw wait status from `os.waitpid` (see `describe_returncode`)."""
    try:
        return describe_returncode(os.waitstatus_to_exitcode(status))
    except ValueError:  # stopped or continued: not an end
        return f"wait status {status}"
