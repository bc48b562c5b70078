"""Property tests of the config parser: any input is a config or a ConfigError, never a crash."""

from __future__ import annotations

import json
import math

from hypothesis import given, settings
from hypothesis import strategies as st

from actors.config import parse_config
from actors.config.schema import POLICY_KEYS, SECTION_KEYS, AgentConfig, ConfigError

ENV = {"NODE_CONTAINERD_STATE": "/tmp/nc-fuzz-state"}

_scalars = st.one_of(
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
    st.sampled_from(
        [
            "0",
            "5s",
            "500ms",
            "1m30s",
            "off",
            "-5s",
            "1MiB",
            "64KiB",
            "0600",
            "0666",
            "127.0.0.1:0",
            "[::1]:9464",
            "INFO",
            "fatal",
            "",
            "/",
            "relative/path",
        ]
    ),
)
_values = st.recursive(
    _scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=6,
)


def _toml_value(v: object) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return repr(v) if math.isfinite(v) else "0.0"
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    assert isinstance(v, dict)
    return "{" + ", ".join(f"{json.dumps(k)} = {_toml_value(x)}" for k, x in v.items()) + "}"


def _document(
    sections: dict[str, dict[str, object]], policies: dict[str, dict[str, object]]
) -> str:
    lines = []
    for section, keys in sections.items():
        lines.append(f"[{section}]")
        lines.extend(f"{k} = {_toml_value(v)}" for k, v in keys.items())
    for pattern, keys in policies.items():
        lines.append(f"[policy.{json.dumps(pattern)}]")
        lines.extend(f"{k} = {_toml_value(v)}" for k, v in keys.items())
    return "\n".join(lines) + "\n"


def _parse(text: str) -> None:
    try:
        cfg = parse_config(text, source="fuzz.toml", env=ENV, check_binaries=False)
    except ConfigError as e:
        assert e.problems and all(p.strip() for p in e.problems)
        assert all("fuzz.toml" in p for p in e.problems), e.problems
    else:
        assert isinstance(cfg, AgentConfig)


@settings(max_examples=300, deadline=None, derandomize=True, database=None)
@given(st.text(max_size=200))
def test_any_text_is_a_config_or_a_config_error_naming_the_file(text: str) -> None:
    _parse(text)


@settings(max_examples=300, deadline=None, derandomize=True, database=None)
@given(
    st.dictionaries(
        st.sampled_from(sorted(SECTION_KEYS)),
        st.dictionaries(
            st.sampled_from(
                sorted({k for keys in SECTION_KEYS.values() for k in keys} | {"bogus"})
            ),
            _values,
            max_size=4,
        ),
        max_size=4,
    ),
    st.dictionaries(
        st.sampled_from(["root", "root.containerd", "root.*", "*", "nothing.here", "root..x", ""]),
        st.dictionaries(st.sampled_from(sorted(set(POLICY_KEYS) | {"bogus"})), _values, max_size=4),
        max_size=3,
    ),
)
def test_schema_shaped_documents_with_random_values_are_a_config_or_a_config_error(
    sections: dict[str, dict[str, object]], policies: dict[str, dict[str, object]]
) -> None:
    _parse(_document(sections, policies))
