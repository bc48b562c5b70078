"""Restart policies: defaults as data, chosen per DN by glob patterns.

A `RestartPolicy` holds every knob of how one node is supervised. Its defaults
are the Go original's behaviour (exponential backoff 0.5 s × 1.5 ± 50 % up to
60 s, never giving up, backoff reset as soon as the node is HEALTHY), plus the
extensions node-containerd adds (restart intensity, grace period, a deadline to
become HEALTHY, a liveness heartbeat), each off or lenient by default.

A `PolicySet` is an ordered list of `PolicyRule`s. The policy of a DN starts
from the defaults; then every rule whose pattern matches the DN, in order,
overrides the fields it names (a cascade, like CSS). Patterns are globs over
the whole DN: `*` matches any run of characters (dots included), `?` one
character; everything else is literal. `root.containerd` matches only that
DN; `root.containerd.*` matches its descendants; `*` matches all.

An unknown field or a bad value raises `InvalidPolicy` (a `SupervisionError`
and a `ValueError`) naming the field and the value.

This module is pure: no I/O, no clock.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from actors.supervisor.core.errors import InvalidPolicy

__all__ = ["RestartPolicy", "PolicyRule", "PolicySet", "glob_to_regex"]


@dataclass(frozen=True, slots=True, kw_only=True)
class RestartPolicy:
    """How one node is restarted, stopped and watched. Durations in seconds."""

    #: First backoff delay after a node dies (Go: 500 ms).
    backoff_initial: float = 0.5
    #: Each further consecutive death multiplies the delay by this (Go: 1.5).
    backoff_multiplier: float = 1.5
    #: Randomisation factor: the delay is drawn uniformly from
    #: [d × (1 − jitter), d × (1 + jitter)] (Go: 0.5).
    backoff_jitter: float = 0.5
    #: Upper bound of the un-jittered delay (Go: 60 s).
    backoff_max: float = 60.0
    #: A node must stay HEALTHY this long before its backoff resets. 0 (Go's
    #: behaviour) resets it the moment the node signals HEALTHY or DONE.
    min_healthy_uptime: float = 0.0
    #: Restart intensity: at most this many restarts after a death within
    #: `restart_window` seconds; one more escalates the failure to the parent
    #: (at the root, the agent exits non-zero). None: never give up (Go).
    max_restarts: int | None = None
    #: The sliding window of the restart intensity, in seconds.
    restart_window: float = 60.0
    #: After a cancel message, how long the process may take to exit before
    #: its whole process group is SIGKILLed (and the node is then DEAD: it
    #: ignored the cancel). 0: no grace at all.
    grace_period: float = 5.0
    #: If set, a node still NEW this long after it was started fails: it is
    #: taken as hung, so it is SIGKILLed at once, not cancelled.
    healthy_deadline: float | None = None
    #: If set, the node's process sends a heartbeat this often; a node from
    #: which nothing arrives for 3 intervals (stopped, deadlocked) is killed
    #: and fails. Before its hello, a fresh process gets `watch.SPAWN_ALLOWANCE`
    #: (10 s) more. None disables the watch.
    heartbeat_interval: float | None = 1.0

    def __post_init__(self) -> None:
        problems = validate_policy_fields(dataclasses.asdict(self))
        if problems:
            raise InvalidPolicy(problems[0])


def validate_policy_fields(values: Mapping[str, Any]) -> list[str]:
    """Check policy field values; return one message per problem, empty if fine.

    Shared by `RestartPolicy` and the config loader so both say the same thing.
    """
    problems: list[str] = []

    def positive(name: str, allow_zero: bool) -> None:
        if name not in values or values[name] is None:
            return
        v = values[name]
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            problems.append(f"{name} must be a number, not {v!r}")
        elif v < 0 or (v == 0 and not allow_zero):
            allowed = ">= 0" if allow_zero else "> 0"
            problems.append(f"{name} must be {allowed}, not {v!r}")

    for name in ("backoff_initial", "backoff_max", "min_healthy_uptime", "grace_period"):
        positive(name, allow_zero=True)
    for name in ("restart_window", "healthy_deadline", "heartbeat_interval"):
        positive(name, allow_zero=False)
    if "backoff_multiplier" in values:
        m = values["backoff_multiplier"]
        if isinstance(m, bool) or not isinstance(m, (int, float)) or m < 1:
            problems.append(f"backoff_multiplier must be a number >= 1, not {m!r}")
    if "backoff_jitter" in values:
        j = values["backoff_jitter"]
        if isinstance(j, bool) or not isinstance(j, (int, float)) or not 0 <= j < 1:
            problems.append(f"backoff_jitter must be a number in [0, 1), not {j!r}")
    if values.get("max_restarts") is not None:
        n = values["max_restarts"]
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            problems.append(f"max_restarts must be an integer >= 0, not {n!r}")
    return problems


def glob_to_regex(pattern: str) -> re.Pattern[str]:
    """Compile a DN glob (`*` any run, `?` one character) to an anchored regex."""
    parts = []
    for ch in pattern:
        if ch == "*":
            parts.append(".*")
        elif ch == "?":
            parts.append(".")
        else:
            parts.append(re.escape(ch))
    return re.compile("".join(parts))


@dataclass(frozen=True, slots=True)
class PolicyRule:
    """Override some policy fields for every DN matching `pattern`."""

    #: A glob over whole DNs, e.g. `root.containerd` or `root.containerd.*`.
    pattern: str
    #: Field name -> value, each a field of `RestartPolicy`.
    overrides: Mapping[str, Any]
    _regex: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        unknown = sorted(set(self.overrides) - {f.name for f in dataclasses.fields(RestartPolicy)})
        if unknown:
            raise InvalidPolicy(f"unknown restart policy field {unknown[0]!r}")
        problems = validate_policy_fields(self.overrides)
        if problems:
            raise InvalidPolicy(problems[0])
        object.__setattr__(self, "_regex", glob_to_regex(self.pattern))

    def matches(self, dn: str) -> bool:
        """Whether this rule applies to `dn`."""
        return self._regex.fullmatch(dn) is not None


@dataclass(frozen=True, slots=True)
class PolicySet:
    """An ordered cascade of rules over a base policy."""

    rules: Sequence[PolicyRule] = ()
    base: RestartPolicy = RestartPolicy()

    def for_dn(self, dn: str) -> RestartPolicy:
        """The effective policy of `dn`: base, then each matching rule in order."""
        merged: dict[str, Any] = {}
        for rule in self.rules:
            if rule.matches(dn):
                merged.update(rule.overrides)
        return dataclasses.replace(self.base, **merged) if merged else self.base
