"""Every config value has bounds, and no input gives a traceback: hostile TOML exits 2 naming the key.

The values an audit fed `config check` (issue 20, item 12), each accepted or crashing
before: a NUL in `[runsc] flags`, a microsecond heartbeat, NaN and infinite
multipliers, a 10 MB sandbox image, `state_dir = "/"`, arrays 5,000 deep and an
integer of 10,000 digits. Then the class: every key of the schema, given each kind
of hostile value, is refused by the real command with exit 2 and a line naming it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from actors.agent.cli import main
from actors.config import ConfigError, parse_config
from actors.config.schema import POLICY_KEYS, SECTION_KEYS
from actors.exit_codes import ExitCode

SRC = "agent.toml"
DURATIONS = 'e.g. "500ms", "5s", "2m" or "1h30m"'


def problems(text: str, env: dict[str, str]) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(text, source=SRC, env=env, check_binaries=False)
    return caught.value.problems


def test_a_nul_byte_in_a_runsc_flag_is_refused(env: dict[str, str]) -> None:
    assert problems('[runsc]\nflags = ["--net\\u0000work=host"]\n', env) == [
        f"key 'runsc.flags[0]' in {SRC}: '--net\\x00work=host' contains the control character "
        "'\\x00'; no key takes control characters (NUL, newline, escape, ...)"
    ]


def test_a_heartbeat_finer_than_100ms_and_a_duration_finer_than_1ms_are_refused(
    env: dict[str, str],
) -> None:
    text = (
        '[policy."root"]\nheartbeat_interval = "0.000001s"\n'
        '[policy."root.containerd"]\nheartbeat_interval = "50ms"\n'
    )
    assert problems(text, env) == [
        f"key 'policy.root.heartbeat_interval' in {SRC}: '0.000001s' is shorter than a "
        f'millisecond; use "0" or at least "1ms", {DURATIONS}, or "off" to turn it off',
        f"key 'policy.\"root.containerd\".heartbeat_interval' in {SRC}: '50ms' is too short; "
        "use at least '100ms', or \"off\" to turn it off",
    ]


def test_nan_and_infinite_multipliers_are_refused(env: dict[str, str]) -> None:
    text = '[policy."root"]\nbackoff_multiplier = nan\n[policy."*"]\nbackoff_multiplier = inf\n'
    assert problems(text, env) == [
        f"key 'policy.root.backoff_multiplier' in {SRC}: nan is not a finite number",
        f"key 'policy.\"*\".backoff_multiplier' in {SRC}: inf is not a finite number",
    ]


def test_a_multiplier_above_10_and_a_count_above_a_million_are_refused(
    env: dict[str, str],
) -> None:
    text = '[policy."root"]\nbackoff_multiplier = 11\nmax_restarts = 1000001\n'
    assert problems(text, env) == [
        f"key 'policy.root.backoff_multiplier' in {SRC}: 11 is out of range; "
        "use a number >= 1 and <= 10, e.g. 1.5",
        f"key 'policy.root.max_restarts' in {SRC}: 1000001 is too large; "
        'use an integer from 0 to 1000000, or "off" to never give up',
    ]


def test_a_sandbox_image_longer_than_255_characters_is_refused(env: dict[str, str]) -> None:
    image = "r.example/" + "a" * 10_000_000
    assert problems(f'[cri]\nsandbox_image = "{image}"\n', env) == [
        f"key 'cri.sandbox_image' in {SRC}: {image[:60]!r}… (10000010 characters) is too "
        "long: 10000010 bytes; a string here may have at most 4095 bytes"
    ]
    image = "r.example/" + "a" * 300
    assert problems(f'[cri]\nsandbox_image = "{image}"\n', env) == [
        f"key 'cri.sandbox_image' in {SRC}: {image[:60]!r}… is 310 characters long; an image "
        "reference has at most 255"
    ]


@pytest.mark.parametrize("state_dir", ["/", "/etc", "/etc/", "/var/lib", "/usr", "/proc/1"])
def test_a_state_dir_that_is_a_directory_of_the_system_is_refused(
    state_dir: str, env: dict[str, str]
) -> None:
    found = problems(f'state_dir = "{state_dir}"\n', env)
    assert len(found) == 1
    assert found[0].startswith(f"key 'state_dir' in {SRC}: '{state_dir.rstrip('/') or '/'}' ")
    assert "the agent makes its state directory private (mode 0700)" in found[0]


def test_a_state_dir_of_its_own_under_a_system_directory_is_fine(env: dict[str, str]) -> None:
    cfg = parse_config('state_dir = "/var/lib/nc"\n', source=SRC, env=env, check_binaries=False)
    assert str(cfg.state_dir) == "/var/lib/nc"


def test_arrays_5000_deep_and_an_integer_of_10000_digits_name_their_key(
    env: dict[str, str],
) -> None:
    deep = "[" * 5000 + "]" * 5000
    assert problems(f'[policy."root.x"]\nmax_restarts = {deep}\n', env) == [
        f"key 'policy.\"root.x\".max_restarts' in {SRC}: nested deeper than 8 levels (line 2); "
        "no key takes such a value"
    ]
    assert problems(f"[runsc]\npipe_size = {'9' * 10_000}\n", env) == [
        f"key 'runsc.pipe_size' in {SRC}: a number of more than 4300 digits (line 2); "
        "no key takes such a value"
    ]


def test_a_bad_value_deep_in_a_table_is_reported_once(env: dict[str, str]) -> None:
    deep = "{a=" * 20 + "1" + "}" * 20
    assert problems(f"[preseed]\nlabels = {deep}\n", env) == [
        f"key 'preseed.labels.a.a.a.a.a.a.a' in {SRC}: tables and arrays nested deeper than "
        "8 levels; no key takes values nested this deep"
    ]


#: Hostile values as TOML text: (what, text).
HOSTILE = [
    ("arrays 5000 deep", "[" * 5000 + "]" * 5000),
    ("inline tables 3000 deep", "{a=" * 3000 + "1" + "}" * 3000),
    ("arrays 20 deep", "[" * 20 + "]" * 20),
    ("an integer of 10000 digits", "9" * 10_000),
    ("an integer of 65 bits", str(2**64)),
    ("a NUL", '"a\\u0000b"'),
    ("an escape", '"a\\u001b[2Jb"'),
    ("a newline", '"a\\nb"'),
    ("a C1 control", '"a\\u009bb"'),
    ("a 1 MB string", '"' + "x" * 1_000_000 + '"'),
    ("NaN", "nan"),
    ("inf", "inf"),
    ("-inf", "-inf"),
    ("an array of 1000 items", "[" + ", ".join(["1"] * 1000) + "]"),
]


def _keys() -> list[tuple[str, str, str]]:
    """(table header or "", key name, its dotted key) of every key of the schema."""
    keys = [("", "state_dir", "state_dir")]
    for section, names in SECTION_KEYS.items():
        keys += [(f"[{section}]", name, f"{section}.{name}") for name in names]
    keys += [('[policy."root"]', name, f"policy.root.{name}") for name in POLICY_KEYS]
    return keys


@pytest.mark.parametrize(("what", "value"), HOSTILE, ids=[w for w, _ in HOSTILE])
def test_every_key_given_a_hostile_value_exits_2_naming_the_key(
    what: str,
    value: str,
    tmp_path: Path,
    env: dict[str, str],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name, text in env.items():
        monkeypatch.setenv(name, text)
    path = tmp_path / "hostile.toml"
    for header, name, key in _keys():
        path.write_text(f"{header}\n{name} = {value}\n")
        code = main(["config", "check", str(path)])
        out, err = capsys.readouterr()
        assert code == ExitCode.USAGE, (key, out, err[:300])
        assert "Traceback" not in err, (key, err[:2000])
        lines = err.splitlines()
        assert any(line.startswith(f"key '{key}") for line in lines), (key, err[:300])
        assert all(len(line) < 1000 for line in lines), (key, err[:300])
