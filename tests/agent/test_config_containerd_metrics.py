"""`[containerd] metrics_address`: off by default, checked, rendered into containerd's config."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path

import pytest

from actors.config import ConfigError, parse_config
from actors.config.schema import AgentConfig
from actors.containerd.core.version import ContainerdVersion
from actors.containerd.runtimes.config_file import render_containerd_config

V17 = ContainerdVersion(1, 7, 24)
V21 = ContainerdVersion(2, 1, 9)
SOURCE = "/etc/agent.toml"


def config(text: str) -> AgentConfig:
    env = {"PATH": os.environ.get("PATH", os.defpath), "NODE_CONTAINERD_STATE": "/s"}
    return parse_config(text, source=SOURCE, env=env, check_binaries=False)


def problems(value: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        config(f"[containerd]\nmetrics_address = {value}\n")
    return caught.value.problems


def test_containerd_serves_no_metrics_by_default() -> None:
    cfg = config("")
    assert cfg.containerd.metrics_address == ""
    for version in (V17, V21):
        assert tomllib.loads(render_containerd_config(cfg, version))["metrics"] == {"address": ""}


@pytest.mark.parametrize(
    "value, rendered",
    [
        ("127.0.0.1:1338", "127.0.0.1:1338"),
        ("[::1]:1338", "[::1]:1338"),
        ("localhost:9", "localhost:9"),
    ],
)
def test_the_address_lands_in_containerds_metrics_table_of_either_layout(
    value: str, rendered: str
) -> None:
    cfg = config(f'[containerd]\nmetrics_address = "{value}"\n')
    assert cfg.containerd.metrics_address == rendered
    for version in (V17, V21):
        assert tomllib.loads(render_containerd_config(cfg, version))["metrics"] == {
            "address": rendered
        }


def test_bad_addresses_are_refused_naming_the_key_the_value_and_the_fix() -> None:
    key = f"key 'containerd.metrics_address' in {SOURCE}"
    fixed = 'containerd needs a fixed port from 1 to 65535, e.g. "127.0.0.1:1338"'
    assert problems('"1338"') == [
        f"{key}: '1338' is not host:port; use an IP address and a port, e.g. "
        '"127.0.0.1:9464" or "[::1]:9464"'
    ]
    assert problems('"127.0.0.1:0"') == [f"{key}: '127.0.0.1:0' has port 0, out of range; {fixed}"]
    assert problems('"127.0.0.1:70000"') == [
        f"{key}: '127.0.0.1:70000' has port 70000, out of range; {fixed}"
    ]
    assert problems("1338") == [f'{key}: 1338 is an integer; use a string "host:port"']


def test_with_the_users_own_containerd_config_the_key_is_refused(tmp_path: Path) -> None:
    own = tmp_path / "containerd.toml"
    own.write_text('version = 2\n[metrics]\naddress = "127.0.0.1:1338"\n')
    with pytest.raises(ConfigError) as caught:
        config(f'[containerd]\nconfig = "{own}"\nmetrics_address = "127.0.0.1:1338"\n')
    assert caught.value.problems == [
        f"key 'containerd.metrics_address' in {SOURCE}: '127.0.0.1:1338' cannot be set with "
        f"containerd.config {str(own)!r}, which the agent does not write; set [metrics] "
        'address in that file, or leave this ""'
    ]
