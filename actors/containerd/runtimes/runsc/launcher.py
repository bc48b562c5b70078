"""Writes the runsc launcher and its Python helper into the state dir.

The launcher (`launcher_sh`, a POSIX shell script) is what the shim runs as its
runc; the helper (`launcher_main`, Python) is what the launcher hands the few cases
a shell cannot read. `render_launcher` and `render_helper` are pure: the text of
each, from the config's values. `write_launcher` writes one atomically, mode 0755
(root-owned, like the directory it lies in: the shim runs it as root), at every
start of the agent, so a change of `[runsc]` takes effect at the next start and a
stale launcher never lingers. `helper_path` is where the helper lies: beside the
launcher, as `launcher.py`.
"""

from __future__ import annotations

import shlex
import sys
from collections.abc import Sequence
from pathlib import Path

from actors.containerd.runtimes.files import write_atomically
from actors.containerd.runtimes.runsc.launcher_sh import TEMPLATE

__all__ = ["helper_path", "render_helper", "render_launcher", "write_launcher"]

_BODY = Path(__file__).with_name("launcher_main.py")
#: runsc's flag for a host-network pod (the launcher adds it unless the flags choose one).
_HOST_NETWORK = "--network=host"


def helper_path(launcher: Path) -> Path:
    """The helper's path for the launcher at `launcher`: `launcher.py` beside it."""
    return launcher.with_name(launcher.name + ".py")


def render_launcher(
    *,
    runsc: str,
    flags: Sequence[str],
    tmpdir: Path,
    helper: Path,
    python: str = sys.executable,
) -> str:
    """The launcher's text: the shell script, its values filled in and quoted.

    Args:
        runsc: the runsc binary, absolute.
        flags: runsc's flags put in front of the shim's own, in order.
        tmpdir: the `TMPDIR` runsc runs with (gVisor's sandbox must reach it).
        helper: the Python helper's path (`helper_path`).
        python: the interpreter that runs the helper, absolute.

    Returns:
        The script, ending with a newline.
    """
    chooses = any(f == "--network" or f.startswith("--network=") for f in flags)
    values = {
        "@RUNSC@": " ".join(shlex.quote(a) for a in [runsc, *flags]),
        "@TMPDIR@": shlex.quote(str(tmpdir)),
        "@HOSTNET@": shlex.quote("" if chooses else _HOST_NETWORK),
        "@PYTHON@": shlex.quote(python),
        "@HELPER@": shlex.quote(str(helper)),
    }
    text = TEMPLATE
    for key, value in values.items():
        text = text.replace(key, value)
    return text


def render_helper(
    *, runsc: str, flags: Sequence[str], tmpdir: Path, python: str = sys.executable
) -> str:
    """The helper's text: `launcher_main`'s source with a `#!` line and a call of `main`.

    Args:
        runsc: the runsc binary, absolute.
        flags: runsc's flags put in front of the shim's own, in order.
        tmpdir: the `TMPDIR` runsc runs with.
        python: the interpreter of the `#!` line, absolute.

    Returns:
        The script, ending with a newline.
    """
    head = (
        f"#!{python} -IS\n"
        "# Written by node-containerd at every start: the runsc launcher's Python helper.\n"
        "# Edit the agent's [runsc] config instead.\n"
    )
    call = (
        '\n\nif __name__ == "__main__":\n'
        f"    raise SystemExit(main({runsc!r}, {list(flags)!r}, {str(tmpdir)!r}))\n"
    )
    return head + _BODY.read_text(encoding="utf-8").rstrip("\n") + call


def write_launcher(path: Path, text: str) -> None:
    """Writes `text` to `path` atomically, mode 0755."""
    write_atomically(path, text, 0o755)
