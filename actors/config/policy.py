"""The `[policy."<pattern>"]` tables of the config: restart policy rules per DN glob.

Each table becomes one `PolicyRule` (see `actors.supervisor.core.policy`), in file
order, so that later rules override earlier ones field by field. Durations are
converted to seconds; `"off"` turns an optional knob off (None). A pattern must
be able to match a DN: names of `[a-z0-9_]` joined by dots, with `*` and `?`
wildcards, starting at `root` unless its first part has a `*`.
"""

from __future__ import annotations

import json
import re
from types import MappingProxyType
from typing import Any

from actors.config.schema import POLICY_KEYS
from actors.config.values import Checker, dotted
from actors.supervisor.core.policy import PolicyRule, glob_to_regex

__all__ = ["MAX_MULTIPLIER", "MIN_HEARTBEAT", "read_policies"]

_PATTERN_PART = re.compile(r"[a-z0-9_*?]+")
_BAD = object()
#: The shortest heartbeat interval, in seconds: a node's process sends one per interval
#: and the root reads each, so a finer one only loads the supervisor.
MIN_HEARTBEAT = 0.1
#: The largest backoff multiplier: 10 reaches a one-hour backoff in five deaths.
MAX_MULTIPLIER = 10.0


def read_policies(chk: Checker, value: object) -> tuple[PolicyRule, ...]:
    """Reads the `policy` table; records problems in `chk`; returns the good rules."""
    rules: list[PolicyRule] = []
    for pattern, body in chk.table("policy", value).items():
        key = dotted("policy", pattern)
        before = len(chk.problems)
        _check_pattern(chk, key, pattern)
        table = chk.table(key, body)
        chk.known_keys(key, table, POLICY_KEYS)
        overrides: dict[str, Any] = {}
        for name, kind in POLICY_KEYS.items():
            if name in table:
                converted = _policy_value(chk, f"{key}.{name}", kind, table[name])
                if converted is not _BAD:
                    overrides[name] = converted
        if len(chk.problems) > before:
            continue
        try:
            rules.append(PolicyRule(pattern, MappingProxyType(overrides)))
        except ValueError as e:  # the policy's own checks, should ours miss one
            chk.problem(key, str(e))
    return tuple(rules)


def _check_pattern(chk: Checker, key: str, pattern: str) -> None:
    parts = pattern.split(".")
    if not all(_PATTERN_PART.fullmatch(p) for p in parts):
        chk.problem(
            key,
            f"{pattern!r} is not a DN pattern; use names of [a-z0-9_] joined by dots, with "
            'the wildcards * and ?, e.g. "root.containerd" or "root.containerd.*"',
        )
    elif "*" not in parts[0] and not glob_to_regex(parts[0]).fullmatch("root"):
        chk.problem(
            key,
            f"{pattern!r} matches no node: every DN starts with 'root'; "
            f"use e.g. {json.dumps('root.' + pattern)}",
        )


def _policy_value(chk: Checker, key: str, kind: str, value: object) -> object:
    """One restart policy value in the policy's units, or `_BAD` after a problem."""
    result: object
    if kind in ("duration", "positive"):
        result = chk.duration(key, value, positive=kind == "positive")
    elif kind == "optional":
        if value == "off":
            return None
        least = MIN_HEARTBEAT if key.endswith(".heartbeat_interval") else 0.0
        result = chk.duration(
            key, value, positive=True, or_else=', or "off" to turn it off', least=least
        )
    elif kind == "multiplier":
        result = chk.number(
            key, value, low=1, high=MAX_MULTIPLIER, high_included=True, example="1.5"
        )
    elif kind == "jitter":
        result = chk.number(key, value, low=0, high=1, example="0.5")
    else:  # "count"
        count = chk.count_or_off(key, value, "never give up")
        return _BAD if count is False else count
    return _BAD if result is None else result
