"""The command line's argument types: DNs, counts, times, severities.

Each is an argparse `type=`: it returns the value, or raises
`argparse.ArgumentTypeError` with the message argparse prints after
`argument X:` (exit 2). Pure and cheap to import (`--help` loads it).
"""

from __future__ import annotations

import argparse
import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from actors.supervisor.core.severity import Severity

__all__ = ["dn_argument", "lines_argument", "severity_argument", "since_argument"]

#: A DN: names of `[a-z0-9_]` joined by dots.
_DN = re.compile(r"[a-z0-9_]{1,64}(\.[a-z0-9_]{1,64})*")


def dn_argument(text: str) -> str:
    """A DN: names of `[a-z0-9_]` joined by dots."""
    if not _DN.fullmatch(text):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a DN: names of [a-z0-9_] joined by dots, e.g. root.containerd"
        )
    return text


def lines_argument(text: str) -> int | str:
    """`-n`: a count, or `all`."""
    if text == "all":
        return text
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r} is not a count: use an integer >= 0, or all")
    return int(text)


def since_argument(text: str) -> float:
    """`--since`: a duration before now, or an ISO 8601 time; seconds since the epoch."""
    import time

    from actors.config.units import parse_duration

    try:
        return time.time() - parse_duration(text)
    except ValueError:
        pass
    from datetime import datetime

    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is neither a duration nor a time: use e.g. 90s, 15m, 2h, "
            "or 2026-12-04T02:36:55Z"
        ) from None


def severity_argument(text: str) -> Severity:
    """A severity's name, any case."""
    from actors.supervisor.core.severity import SEVERITY_NAMES, Severity  # only `logs` needs it

    if text.upper() not in SEVERITY_NAMES:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a severity: use one of {', '.join(SEVERITY_NAMES)}"
        )
    return Severity[text.upper()]
