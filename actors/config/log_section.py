"""Reads `[log]`: the sinks, the lowest severity they write, how lines are parsed, and
how many entries the in-memory tree keeps per DN.

Kept apart from `actors.config.load` (which calls `read_log`) so the log keys stay
in one place. `keep` has bounds (`KEEP_MIN`..`KEEP_MAX`): below them `logs` shows
next to nothing; above them one DN could hold gigabytes of the root's memory.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from actors.config.schema import DEFAULT_LOG_PARSE, LogSection
from actors.config.values import Checker

__all__ = ["KEEP_MAX", "KEEP_MIN", "read_log"]

#: Bounds of `[log] keep`: entries kept per DN in memory.
KEEP_MIN, KEEP_MAX = 64, 1_000_000


def _default(name: str) -> Any:
    return LogSection.__dataclass_fields__[name].default


def read_log(chk: Checker, t: Mapping[str, Any]) -> LogSection:
    """The `[log]` table `t`, checked; problems go to `chk` and leave the default."""
    stderr = _default("stderr")
    if "stderr" in t:
        stderr = chk.boolean("log.stderr", t["stderr"], stderr)
    severity = _default("min_severity")
    if "min_severity" in t:
        severity = chk.severity("log.min_severity", t["min_severity"], severity)
    json_file = chk.path("log.json_file", t.get("json_file", ""), None)
    parse = dict(DEFAULT_LOG_PARSE)
    if "parse" in t:
        parse.update(chk.log_parse("log.parse", t["parse"]))
    keep = _default("keep")
    if "keep" in t:
        hint = "it is how many entries the agent keeps in memory per DN for `logs`, e.g. 8192"
        keep = chk.integer_in("log.keep", t["keep"], KEEP_MIN, KEEP_MAX, hint) or keep
    return LogSection(
        stderr=stderr,
        json_file=json_file,
        min_severity=severity,
        parse=MappingProxyType(parse),
        keep=keep,
    )
