"""The command line's help formatter: argparse's, without what it costs to find the width.

argparse makes a formatter for every argument it adds and asks `shutil` for the
terminal's width; importing `shutil` loads zlib, bz2 and lzma, a tenth of a bare
interpreter's start, for one ioctl. `status` should cost less than twice that start.
"""

from __future__ import annotations

import argparse
import os
import sys

__all__ = ["HelpFormatter", "terminal_columns"]


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """argparse's `RawDescriptionHelpFormatter`, given the width by `terminal_columns`
    (the rule of `shutil.get_terminal_size`) instead of asking `shutil`."""

    def __init__(
        self,
        prog: str,
        indent_increment: int = 2,
        max_help_position: int = 24,
        width: int | None = None,
    ) -> None:
        if width is None:
            width = terminal_columns() - 2
        super().__init__(prog, indent_increment, max_help_position, width)


def terminal_columns() -> int:
    """The terminal's width in columns: `$COLUMNS`, else stdout's terminal, else 80."""
    try:
        columns = int(os.environ.get("COLUMNS", "0"))
    except ValueError:
        columns = 0
    if columns > 0:
        return columns
    stdout = sys.__stdout__
    try:
        return (stdout and os.get_terminal_size(stdout.fileno()).columns) or 80
    except (ValueError, OSError):
        return 80
