"""What a SIGHUP changes: the reloaded config against the running one, key by key.

`plan_reload(running, loaded)` compares two checked configs and returns a
`ReloadPlan`: one `KeyChange` per dotted key whose value differs, each marked live
or not, and the config the agent runs on from then on. No I/O: `actors.agent.live`
carries the plan out and logs its lines (`KeyChange.line`).

Rules:
    * **Live** (changed at once, in the running agent): `log.stderr`,
      `log.json_file`, `log.min_severity`, `metrics.listen` (while metrics are on)
      and every `policy."<pattern>".<key>` (the tree takes them with
      `PoliciesReplaced`).
    * **Not live**: everything else, because it is built into what already runs
      (containerd's config and command line, the runnables' specs, the sockets).
      Each such key keeps its running value until the agent's next start; the plan
      says so, one line per key, on every reload until then.
    * The effective config is the running one with the live keys of the loaded one,
      so `running` of the next reload is this effective config.
    * A config with problems never gets here: `load_config` refuses it whole.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from actors.config.schema import POLICY_KEYS, AgentConfig
from actors.config.units import format_duration
from actors.supervisor.core.policy import PolicyRule
from actors.supervisor.core.severity import Severity

__all__ = ["LIVE_KEYS", "KeyChange", "ReloadPlan", "plan_reload"]

#: The dotted keys a reload changes in the running agent (and every `policy.` key).
LIVE_KEYS = frozenset({"log.stderr", "log.json_file", "log.min_severity", "metrics.listen"})
#: Sections compared field by field, in the default profile's order.
_SECTIONS = ("containerd", "runsc", "cri", "preseed", "log", "control", "metrics", "supervisor")
#: Fields that follow from another key and are never reported on their own.
_DERIVED = frozenset({"containerd.generate_config", "metrics.host", "metrics.port"})
#: Section fields whose value is seconds (or None for "off").
_DURATIONS = frozenset(
    {
        "containerd.ready_timeout",
        "containerd.liveness_interval",
        "containerd.liveness_timeout",
    }
)


@dataclass(frozen=True, slots=True, kw_only=True)
class KeyChange:
    """One key whose value the reloaded file changes."""

    #: The dotted key, e.g. `log.min_severity` or `policy."root.containerd".max_restarts`.
    key: str
    #: The running value, as the config file spells it.
    old: str
    #: The reloaded value, as the config file spells it.
    new: str
    #: Whether the running agent takes it now (else at its next start).
    live: bool

    @property
    def line(self) -> str:
        """The log line that says what happened to this key."""
        if self.live:
            return f"config reload: {self.key} changed from {self.old} to {self.new}"
        return (
            f"config reload: {self.key} changed from {self.old} to {self.new}, which needs a "
            f"restart of the agent (and so of containerd); it stays {self.old} until then"
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class ReloadPlan:
    """What a reload does."""

    #: Every changed key: the sections' in the default profile's order, then the policies.
    changes: tuple[KeyChange, ...]
    #: The config the agent runs on after the reload.
    effective: AgentConfig

    @property
    def live(self) -> tuple[KeyChange, ...]:
        """The changes taken now."""
        return tuple(c for c in self.changes if c.live)


def plan_reload(running: AgentConfig, loaded: AgentConfig) -> ReloadPlan:
    """Compares the running config with a freshly loaded one (see the module's rules)."""
    metrics_live = running.metrics.enabled and loaded.metrics.enabled
    changes = [
        dataclasses.replace(
            c, live=c.key in LIVE_KEYS and (metrics_live or c.key != "metrics.listen")
        )
        for c in _section_changes(running, loaded)
    ]
    changes += _policy_changes(running.policies, loaded.policies)
    log = running.log
    log = dataclasses.replace(
        log,
        stderr=loaded.log.stderr,
        json_file=loaded.log.json_file,
        min_severity=loaded.log.min_severity,
    )
    metrics = running.metrics
    if metrics_live:
        metrics = dataclasses.replace(metrics, host=loaded.metrics.host, port=loaded.metrics.port)
    effective = dataclasses.replace(running, log=log, metrics=metrics, policies=loaded.policies)
    return ReloadPlan(changes=tuple(changes), effective=effective)


def _section_changes(running: AgentConfig, loaded: AgentConfig) -> Iterator[KeyChange]:
    if running.state_dir != loaded.state_dir:
        yield KeyChange(
            key="state_dir",
            old=_spelled("state_dir", running.state_dir),
            new=_spelled("state_dir", loaded.state_dir),
            live=False,
        )
    for section in _SECTIONS:
        old_section, new_section = getattr(running, section), getattr(loaded, section)
        for f in dataclasses.fields(old_section):
            key = f"{section}.{f.name}"
            old, new = getattr(old_section, f.name), getattr(new_section, f.name)
            if key not in _DERIVED and old != new:
                yield KeyChange(key=key, old=_spelled(key, old), new=_spelled(key, new), live=False)
        if section == "metrics":
            old_listen = _listen(running.metrics.host, running.metrics.port)
            new_listen = _listen(loaded.metrics.host, loaded.metrics.port)
            if old_listen != new_listen:
                yield KeyChange(
                    key="metrics.listen", old=repr(old_listen), new=repr(new_listen), live=False
                )


def _listen(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _spelled(key: str, value: Any) -> str:
    """A value as the config file would write it, quoted like a TOML string."""
    if value is None:
        return '"off"' if key in _DURATIONS else '""'
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Severity):
        return repr(value.name)
    if key in _DURATIONS and isinstance(value, int | float):
        return repr(format_duration(value))
    if isinstance(value, Path):
        return repr(str(value))
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{k!r} = {v!r}" for k, v in value.items()) + "}"
    if isinstance(value, tuple):
        return "[" + ", ".join(repr(v) for v in value) + "]"
    if key == "runsc.mode" and isinstance(value, int):
        return repr(f"{value:04o}")
    return repr(value)


def _merged(rules: tuple[PolicyRule, ...]) -> dict[str, dict[str, Any]]:
    """Pattern -> its fields, later rules of the same pattern over earlier ones."""
    merged: dict[str, dict[str, Any]] = {}
    for rule in rules:
        merged.setdefault(rule.pattern, {}).update(rule.overrides)
    return merged


def _policy_changes(
    running: tuple[PolicyRule, ...], loaded: tuple[PolicyRule, ...]
) -> list[KeyChange]:
    old, new = _merged(running), _merged(loaded)
    changes = []
    for pattern in [*old, *(p for p in new if p not in old)]:
        before, after = old.get(pattern, {}), new.get(pattern, {})
        for name in POLICY_KEYS:
            if name not in before and name not in after:
                continue
            if before.get(name, _UNSET) != after.get(name, _UNSET):
                changes.append(
                    KeyChange(
                        key=f'policy."{pattern}".{name}',
                        old=_policy_value(name, before.get(name, _UNSET)),
                        new=_policy_value(name, after.get(name, _UNSET)),
                        live=True,
                    )
                )
    return changes


#: A policy field a rule does not set.
_UNSET: Any = object()


def _policy_value(name: str, value: Any) -> str:
    if value is _UNSET:
        return "(not set)"
    if value is None:
        return '"off"'
    if POLICY_KEYS[name] in ("duration", "positive", "optional"):
        return repr(format_duration(value))
    return repr(value)
