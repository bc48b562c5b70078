"""The default profile, the state directory, path resolution, layering and the policy cascade."""

from __future__ import annotations

import dataclasses
import os
import shutil
import tomllib
from pathlib import Path
from types import MappingProxyType

import pytest

from actors.agent import __version__
from actors.config import DEFAULT_SOURCE, default_toml, load_config, parse_config
from actors.config.schema import (
    DEFAULT_LOG_PARSE,
    DERIVED_PATHS,
    POLICY_KEYS,
    SECTION_KEYS,
    AgentConfig,
    CniSection,
    ContainerdSection,
    ControlSection,
    CriSection,
    LogSection,
    MetricsSection,
    PreseedSection,
    RunscSection,
    SupervisorSection,
)
from actors.supervisor.core.policy import PolicyRule, RestartPolicy
from actors.supervisor.core.severity import Severity

CONTAINERD = shutil.which("containerd") or "containerd"
RUNSC = shutil.which("runsc")
CATATONIT = shutil.which("catatonit")


def profile_rules() -> tuple[PolicyRule, ...]:
    return (
        PolicyRule("*", MappingProxyType({"grace_period": 5.0, "heartbeat_interval": 1.0})),
        PolicyRule("root", MappingProxyType({"max_restarts": 0})),
        PolicyRule(
            "root.containerd",
            MappingProxyType(
                {
                    "min_healthy_uptime": 10.0,
                    "max_restarts": 10,
                    "restart_window": 600.0,
                    "grace_period": 10.0,
                    "healthy_deadline": 60.0,
                }
            ),
        ),
        PolicyRule("root.containerd.runsc", MappingProxyType({"healthy_deadline": 10.0})),
        PolicyRule(
            "root.containerd.preseed",
            MappingProxyType({"healthy_deadline": None, "backoff_max": 300.0}),
        ),
    )


def expected_default(state: Path, source: str = DEFAULT_SOURCE) -> AgentConfig:
    ctd = state / "containerd"
    return AgentConfig(
        source=source,
        state_dir=state,
        containerd=ContainerdSection(
            binary=CONTAINERD,
            config=ctd / "config.toml",
            generate_config=True,
            address=ctd / "containerd.sock",
            root=ctd / "root",
            state=ctd / "state",
            path="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            tmpdir=state / "tmp",
            ready_timeout=30.0,
        ),
        runsc=RunscSection(
            fifo=state / "runsc" / "logs.fifo", mode=0o600, pipe_size=1 << 20, binary=RUNSC
        ),
        preseed=PreseedSection(
            enabled=True,
            dir=state / "preseed",
            record=state / "preseed-record.json",
            all_platforms=False,
            skip_missing=False,
            labels=MappingProxyType({}),
        ),
        log=LogSection(stderr=True, json_file=None, min_severity=Severity.INFO),
        control=ControlSection(socket=state / "control.sock"),
        metrics=MetricsSection(enabled=False, host="127.0.0.1", port=9464),
        cni=CniSection(
            bin_dirs=(Path("/usr/lib/cni"), Path("/opt/cni/bin")),
            conf_dir=state / "cni" / "net.d",
            write_default=True,
            subnet="10.213.0.0/24",
        ),
        cri=CriSection(pause_binary=CATATONIT),
        policies=profile_rules(),
    )


def test_default_profile_puts_every_path_under_the_state_directory(
    short_dir: Path, env: dict[str, str]
) -> None:
    assert load_config(None, env=env) == expected_default(short_dir / "s")


def test_state_directory_defaults_to_dot_node_containerd_in_the_current_directory(
    short_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(short_dir)
    cfg = load_config(None, env={"PATH": os.environ["PATH"]})
    assert cfg == expected_default(short_dir / ".node-containerd")


def test_state_dir_in_the_file_wins_over_the_environment_and_resolves_against_cwd(
    short_dir: Path, env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(short_dir)
    (short_dir / "agent.toml").write_text('state_dir = "here"\n')
    cfg = load_config("agent.toml", env=env)
    assert cfg == expected_default(short_dir / "here", source="agent.toml")


def test_relative_paths_resolve_against_the_current_directory(
    short_dir: Path, env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(short_dir)
    text = (
        '[preseed]\ndir = "images"\nrecord = "../rec.json"\n'
        '[log]\njson_file = "log/agent.jsonl"\n'
        '[runsc]\nfifo = "./f"\n'
    )
    cfg = parse_config(text, source="t", env=env)
    assert (cfg.preseed.dir, cfg.preseed.record, cfg.log.json_file, cfg.runsc.fifo) == (
        short_dir / "images",
        short_dir.parent / "rec.json",
        short_dir / "log" / "agent.jsonl",
        short_dir / "f",
    )


def test_an_empty_file_is_the_default_profile(short_dir: Path, env: dict[str, str]) -> None:
    (short_dir / "agent.toml").write_text("")
    path = str(short_dir / "agent.toml")
    assert load_config(path, env=env) == expected_default(short_dir / "s", source=path)


def test_the_default_profile_round_trips_through_a_file(
    short_dir: Path, env: dict[str, str]
) -> None:
    (short_dir / "agent.toml").write_text(default_toml())
    cfg = load_config(short_dir / "agent.toml", env=env)
    expected = expected_default(short_dir / "s", source=str(short_dir / "agent.toml"))
    # A user file is read on top of the profile: its own rules follow the profile's.
    assert cfg == dataclasses.replace(expected, policies=profile_rules() * 2)
    assert cfg.policy_set().for_dn("root.containerd") == load_config(
        None, env=env
    ).policy_set().for_dn("root.containerd")


def test_default_toml_documents_every_key_with_the_schema_defaults() -> None:
    doc = tomllib.loads(default_toml())
    assert list(doc) == list(SECTION_KEYS) + ["policy"]  # state_dir is commented out
    assert '# state_dir = ".node-containerd"' in default_toml()
    classes = {
        "containerd": ContainerdSection,
        "runsc": RunscSection,
        "cri": CriSection,
        "cni": CniSection,
        "preseed": PreseedSection,
        "log": LogSection,
        "control": ControlSection,
        "metrics": MetricsSection,
        "supervisor": SupervisorSection,
    }
    written = {
        "runsc.mode": "0600",
        "runsc.pipe_size": "1MiB",
        "runsc.binary": "runsc",
        "cri.pause_binary": "catatonit",
        "runsc.flags": [],
        "containerd.ready_timeout": "30s",
        "containerd.liveness_interval": "5s",
        "containerd.liveness_timeout": "5s",
        "metrics.listen": "127.0.0.1:9464",
        "log.json_file": "",
        "preseed.labels": {},
        "log.parse": dict(DEFAULT_LOG_PARSE),
        "cni.bin_dirs": ["/usr/lib/cni", "/opt/cni/bin"],
    }
    for section, keys in SECTION_KEYS.items():
        assert list(doc[section]) == list(keys), section
        for key in keys:
            dotted_key = f"{section}.{key}"
            if dotted_key in DERIVED_PATHS:
                assert doc[section][key] == "", dotted_key
            elif dotted_key in written:
                assert doc[section][key] == written[dotted_key], dotted_key
            else:
                default = classes[section].__dataclass_fields__[key].default
                if isinstance(default, Severity):
                    default = default.name  # the file writes a severity by its name
                assert doc[section][key] == default, dotted_key


def test_policy_keys_are_exactly_the_restart_policy_fields() -> None:
    assert list(POLICY_KEYS) == [f.name for f in dataclasses.fields(RestartPolicy)]


def test_default_profile_policies_for_the_three_nodes() -> None:
    policies = load_config(None, check_binaries=False).policy_set()
    go = RestartPolicy()
    assert policies.for_dn("root") == dataclasses.replace(go, grace_period=5.0, max_restarts=0)
    assert policies.for_dn("root.containerd") == RestartPolicy(
        backoff_initial=0.5,
        backoff_multiplier=1.5,
        backoff_jitter=0.5,
        backoff_max=60.0,
        min_healthy_uptime=10.0,
        max_restarts=10,
        restart_window=600.0,
        grace_period=10.0,
        healthy_deadline=60.0,
        heartbeat_interval=1.0,
    )
    assert policies.for_dn("root.containerd.runsc") == dataclasses.replace(
        go, grace_period=5.0, healthy_deadline=10.0
    )
    assert policies.for_dn("root.containerd.preseed") == dataclasses.replace(
        go, grace_period=5.0, healthy_deadline=None, backoff_max=300.0
    )


def test_user_rules_cascade_after_the_profile_in_file_order(env: dict[str, str]) -> None:
    text = (
        '[policy."root.containerd.*"]\n'
        'grace_period = "1s"\nbackoff_initial = "100ms"\nbackoff_multiplier = 2\n'
        '[policy."root.containerd.pre*"]\n'
        'grace_period = "2m30s"\nmax_restarts = 3\nheartbeat_interval = "off"\n'
        '[policy."root.containerd"]\n'
        'max_restarts = "off"\nbackoff_jitter = 0\nhealthy_deadline = "off"\n'
    )
    policies = parse_config(text, source="t", env=env).policy_set()
    go = RestartPolicy()
    assert policies.for_dn("root.containerd.preseed") == dataclasses.replace(
        go,
        grace_period=150.0,
        backoff_initial=0.1,
        backoff_multiplier=2.0,
        max_restarts=3,
        heartbeat_interval=None,
        healthy_deadline=None,
        backoff_max=300.0,
    )
    assert policies.for_dn("root.containerd.runsc") == dataclasses.replace(
        go, grace_period=1.0, backoff_initial=0.1, backoff_multiplier=2.0, healthy_deadline=10.0
    )
    assert policies.for_dn("root.containerd") == dataclasses.replace(
        go,
        min_healthy_uptime=10.0,
        max_restarts=None,
        restart_window=600.0,
        grace_period=10.0,
        healthy_deadline=None,
        backoff_jitter=0.0,
    )


def test_sections_read_every_kind_of_value(short_dir: Path, env: dict[str, str]) -> None:
    text = (
        '[runsc]\nmode = "0660"\npipe_size = 65536\n'
        "[preseed]\nenabled = false\nall_platforms = true\nskip_missing = true\n"
        'labels = { "io.cri-containerd.pinned" = "pinned" }\n'
        '[log]\nstderr = false\nmin_severity = "warning"\njson_file = "/tmp/a.jsonl"\n'
        '[metrics]\nenabled = true\nlisten = "[::1]:0"\n'
        '[containerd]\nready_timeout = "1.5s"\npath = "/usr/bin:/bin"\ntmpdir = "/var/tmp"\n'
    )
    cfg = parse_config(text, source="t", env=env)
    state = short_dir / "s"
    assert cfg.runsc == RunscSection(
        fifo=state / "runsc/logs.fifo", mode=0o660, pipe_size=65536, binary=RUNSC
    )
    assert cfg.preseed == PreseedSection(
        enabled=False,
        dir=state / "preseed",
        record=state / "preseed-record.json",
        all_platforms=True,
        skip_missing=True,
        labels=MappingProxyType({"io.cri-containerd.pinned": "pinned"}),
    )
    assert cfg.log == LogSection(
        stderr=False, json_file=Path("/tmp/a.jsonl"), min_severity=Severity.WARNING
    )
    assert cfg.metrics == MetricsSection(enabled=True, host="::1", port=0)
    assert (cfg.containerd.ready_timeout, cfg.containerd.path, cfg.containerd.tmpdir) == (
        1.5,
        "/usr/bin:/bin",
        Path("/var/tmp"),
    )
    with pytest.raises(TypeError):
        cfg.preseed.labels["x"] = "y"  # type: ignore[index]


def test_a_user_containerd_config_supplies_address_root_and_state(
    short_dir: Path, env: dict[str, str]
) -> None:
    own = short_dir / "ctd.toml"
    own.write_text('version = 2\nroot = "/r"\n[grpc]\naddress = "/tmp/ctd.sock"\n')
    cfg = parse_config(f'[containerd]\nconfig = "{own}"\n', source="t", env=env)
    assert cfg.containerd == dataclasses.replace(
        expected_default(short_dir / "s").containerd,
        config=own,
        generate_config=False,
        address=Path("/tmp/ctd.sock"),
        root=Path("/r"),
        state=Path("/run/containerd"),  # containerd's own default
    )
    same = f'[containerd]\nconfig = "{own}"\naddress = "/tmp/ctd.sock"\n'
    assert parse_config(same, source="t", env=env).containerd.address == Path("/tmp/ctd.sock")


def test_without_checking_binaries_an_absent_binary_is_kept_as_written(env: dict[str, str]) -> None:
    text = '[containerd]\nbinary = "no-such-containerd"\n'
    cfg = parse_config(text, source="t", env=env, check_binaries=False)
    assert cfg.containerd.binary == "no-such-containerd"


def test_the_version_is_the_package_version() -> None:
    from importlib.metadata import version

    assert __version__ == version("node-containerd") == "0.1.0"
