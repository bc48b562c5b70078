"""Writes the runsc launcher (`launcher_main`, the script's program) into the state dir.

`render_launcher` is pure: the text of the script, from the config's values.
`write_launcher` writes it atomically, mode 0755 (root-owned, like the directory
it lies in: the shim runs it as root), at every start of the agent, so a change of
`[runsc]` takes effect at the next start and a stale launcher never lingers.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from actors.containerd.runtimes.files import write_atomically

__all__ = ["render_launcher", "write_launcher"]

_BODY = Path(__file__).with_name("launcher_main.py")


def render_launcher(
    *, runsc: str, flags: Sequence[str], tmpdir: Path, python: str = sys.executable
) -> str:
    """The launcher's text.

    Args:
        runsc: the runsc binary, absolute.
        flags: runsc's flags put in front of the shim's own, in order.
        tmpdir: the `TMPDIR` runsc runs with (gVisor's sandbox must reach it).
        python: the interpreter of the `#!` line, absolute.

    Returns:
        The script, ending with a newline.
    """
    head = (
        f"#!{python} -IS\n"
        "# Written by node-containerd at every start: the runsc launcher that\n"
        "# containerd's runc v2 shim runs as its runc. Edit the agent's [runsc] config instead.\n"
    )
    call = (
        '\n\nif __name__ == "__main__":\n'
        f"    raise SystemExit(main({runsc!r}, {list(flags)!r}, {str(tmpdir)!r}))\n"
    )
    return head + _BODY.read_text(encoding="utf-8").rstrip("\n") + call


def write_launcher(path: Path, text: str) -> None:
    """Writes `text` to `path` atomically, mode 0755."""
    write_atomically(path, text, 0o755)
