"""The ``[containerd] liveness_*`` keys: defaults, "off", errors, and the runnable's spec."""

from __future__ import annotations

from pathlib import Path

import pytest

from actors.agent.root import containerd_spec
from actors.config import ConfigError, load_config


def load(short_dir: Path, env: dict[str, str], text: str) -> dict[str, object]:
    path = short_dir / "agent.toml"
    path.write_text(text)
    spec = containerd_spec(load_config(path, env=env))
    return {
        k: getattr(spec, k) for k in ("liveness_interval", "liveness_timeout", "liveness_failures")
    }


def problems_of(short_dir: Path, env: dict[str, str], text: str) -> list[str]:
    path = short_dir / "agent.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_config(path, env=env)
    return caught.value.problems


def test_the_defaults_probe_every_5s_with_5s_and_fail_after_3(
    short_dir: Path, env: dict[str, str]
) -> None:
    assert load(short_dir, env, "") == {
        "liveness_interval": 5.0,
        "liveness_timeout": 5.0,
        "liveness_failures": 3,
    }


def test_the_keys_reach_root_containerds_spec_and_off_turns_probing_off(
    short_dir: Path, env: dict[str, str]
) -> None:
    text = '[containerd]\nliveness_interval = "off"\nliveness_timeout = "250ms"\nliveness_failures = 1\n'
    args = load(short_dir, env, text)
    assert args == {"liveness_interval": None, "liveness_timeout": 0.25, "liveness_failures": 1}


def test_bad_liveness_values_are_refused_naming_key_value_and_fix(
    short_dir: Path, env: dict[str, str]
) -> None:
    text = '[containerd]\nliveness_interval = "0s"\nliveness_timeout = 5\nliveness_failures = "3"\n'
    f = f"{short_dir}/agent.toml"
    assert problems_of(short_dir, env, text) == [
        f"key 'containerd.liveness_interval' in {f}: '0s' is zero; use a duration > 0, "
        'e.g. "1s", or "off" to turn liveness probing off',
        f"key 'containerd.liveness_timeout' in {f}: 5 is not a duration: a bare number has "
        'no unit; write a string, e.g. "500ms", "5s", "2m" or "1h30m"',
        f"key 'containerd.liveness_failures' in {f}: '3' is a string; use an integer >= 1, e.g. 3",
    ]


def test_zero_liveness_failures_is_refused(short_dir: Path, env: dict[str, str]) -> None:
    f = f"{short_dir}/agent.toml"
    assert problems_of(short_dir, env, "[containerd]\nliveness_failures = 0\n") == [
        f"key 'containerd.liveness_failures' in {f}: 0 is out of range; use an integer from 1 to 1000, e.g. 3"
    ]
