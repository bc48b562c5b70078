"""Where the checkout is, and how a child process of a test imports it.

The checkout is the one import root: `actors`, `messages`, `tests.support` and `bench`
are all named from it. A test that starts Python in a child process starts a module
(`python -m tests.support.programs.fifo_writer`), never a file, with the checkout first
on `PYTHONPATH`: `python_module` gives the command and `python_env` the environment, so
no file ever edits the import path. The agent itself runs through `CLI`, the one entrypoint.
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path

__all__ = ["CLI", "REPO", "python_env", "python_module", "short_tmp"]

#: The checkout's root directory.
REPO = Path(__file__).resolve().parents[2]
#: `bin/node-containerd`, the agent's one entrypoint, as a command.
CLI = [str(REPO / "bin" / "node-containerd")]


def python_env(env: Mapping[str, str] | None = None, **extra: str) -> dict[str, str]:
    """`env` (default: this process's environment) with the checkout first on `PYTHONPATH`.

    Args:
        env: the environment to start from.
        **extra: variables to set on top.
    """
    out = dict(os.environ if env is None else env, **extra)
    rest = [p for p in out.get("PYTHONPATH", "").split(os.pathsep) if p and p != str(REPO)]
    out["PYTHONPATH"] = os.pathsep.join([str(REPO), *rest])
    return out


def python_module(module: str, *args: str) -> list[str]:
    """The command that runs `module` (a dotted name from the checkout) with this Python.

    Run it with `python_env()` (or `cwd=REPO`) so that the module and the project import.
    """
    return [sys.executable, "-m", module, *args]


def short_tmp(name: str) -> Path:
    """A fresh directory with a short path: unix socket paths must fit in 107 bytes.

    Under `$NC_TEST_TMP` if set, else `/tmp`; the caller removes it.
    """
    base = Path(os.environ.get("NC_TEST_TMP", "/tmp"))
    return Path(tempfile.mkdtemp(prefix=f"nc-{name}-", dir=base))
