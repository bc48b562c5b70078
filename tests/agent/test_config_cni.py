"""The `[cni]` keys, the plugin directories each containerd gets, and the default network."""

from __future__ import annotations

import json
import os
import tomllib
from pathlib import Path

import pytest

from actors.agent.prepare import prepare_network
from actors.config import ConfigError, parse_config
from actors.config.schema import AgentConfig
from actors.containerd.core.version import ContainerdVersion
from actors.containerd.runtimes.cni import (
    DEFAULT_CONFLIST,
    DefaultNetwork,
    cni_search_dirs,
    default_conflist,
    ensure_default_network,
    missing_plugins,
    plan_default_network,
)
from actors.containerd.runtimes.config_file import render_containerd_config
from actors.containerd.runtimes.handlers import pod_runtime_settings

SRC = "/etc/agent.toml"
DEBIAN, CONVENTIONAL = Path("/usr/lib/cni"), Path("/opt/cni/bin")


def config(text: str, state: str | Path = "/s") -> AgentConfig:
    env = {"PATH": os.environ.get("PATH", os.defpath), "NODE_CONTAINERD_STATE": str(state)}
    return parse_config(text, source=SRC, env=env, check_binaries=False)


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as e:
        config(text)
    return e.value.problems


def test_the_defaults_are_debians_plugins_then_the_conventional_dir_and_a_conf_dir_of_our_own() -> (
    None
):
    cni = config("").cni
    assert (cni.bin_dirs, cni.conf_dir, cni.write_default, cni.subnet) == (
        (DEBIAN, CONVENTIONAL),
        Path("/s/cni/net.d"),
        True,
        "10.213.0.0/24",
    )


def test_a_conf_dir_the_operator_names_is_theirs_and_paths_are_made_absolute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    cni = config(
        '[cni]\nconf_dir = "/etc/cni/net.d"\nbin_dirs = ["plugins", "/opt/x", "plugins"]\n'
        'subnet = "172.30.8.0/22"\n'
    ).cni
    assert (cni.bin_dirs, cni.conf_dir, cni.write_default, cni.subnet) == (
        (tmp_path / "plugins", Path("/opt/x")),
        Path("/etc/cni/net.d"),
        False,
        "172.30.8.0/22",
    )


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (
            "24",
            '24 is an integer; use a private IPv4 range in CIDR notation, e.g. "10.213.0.0/24"',
        ),
        (
            '"10.213.0.0/33"',
            "'10.213.0.0/33' is not an IPv4 range in CIDR notation; use e.g. \"10.213.0.0/24\"",
        ),
        ('"10.213.0.0"', "'10.213.0.0' has no prefix length; use e.g. \"10.213.0.0/24\""),
        (
            '"fd00:213::/64"',
            "'fd00:213::/64' is an IPv6 range; the default network is IPv4 only: "
            'use e.g. "10.213.0.0/24"',
        ),
        (
            '"10.213.0.1/24"',
            "'10.213.0.1/24' has host bits set; use its network address, '10.213.0.0/24'",
        ),
        (
            '"8.8.8.0/24"',
            "'8.8.8.0/24' is not a private range; use a range inside 10.0.0.0/8, "
            "172.16.0.0/12, 192.168.0.0/16 (RFC 1918), that no network of this machine uses",
        ),
        (
            '"172.0.0.0/8"',
            "'172.0.0.0/8' is not a private range; use a range inside 10.0.0.0/8, "
            "172.16.0.0/12, 192.168.0.0/16 (RFC 1918), that no network of this machine uses",
        ),
        (
            '"10.213.0.0/31"',
            "'10.213.0.0/31' leaves no address for pods (the bridge takes the first); use a "
            'prefix of /30 or shorter, e.g. "10.213.0.0/24"',
        ),
    ],
)
def test_a_subnet_that_is_not_a_private_ipv4_range_with_room_for_pods_is_refused(
    value: str, message: str
) -> None:
    assert problems(f"[cni]\nsubnet = {value}\n") == [f"key 'cni.subnet' in {SRC}: {message}"]


def test_bad_plugin_and_config_directories_are_refused_naming_the_key() -> None:
    example = '["/usr/lib/cni", "/opt/cni/bin"]'
    assert problems('[cni]\nbin_dirs = "/usr/lib/cni"\n') == [
        f"key 'cni.bin_dirs' in {SRC}: '/usr/lib/cni' is a string; use an array of "
        f"directories, e.g. {example}"
    ]
    assert problems("[cni]\nbin_dirs = []\n") == [
        f"key 'cni.bin_dirs' in {SRC}: [] is empty; list at least one directory, e.g. {example}"
    ]
    assert problems('[cni]\nbin_dirs = ["/usr/lib/cni", ""]\n') == [
        f"key 'cni.bin_dirs' in {SRC}: '' is not a directory; use e.g. {example}"
    ]
    assert problems("[cni]\nconf_dir = 1\n") == [
        f"key 'cni.conf_dir' in {SRC}: 1 is an integer; use a path, or \"\" for the default"
    ]
    assert problems('[cni]\nconf_dir = "/s/preseed"\nbin_dir = "/x"\n') == [
        f"key 'cni.bin_dir' in {SRC}: unknown key; did you mean 'bin_dirs'?",
        f"key 'preseed.dir' in {SRC}: '/s/preseed' is also cni.conf_dir; give each its own path",
    ]


def test_containerd_before_2_1_searches_the_first_plugin_directory_that_exists() -> None:
    dirs = (Path("/a"), DEBIAN, CONVENTIONAL)
    exists = {DEBIAN, CONVENTIONAL}.__contains__
    for version in (ContainerdVersion(1, 6, 20), ContainerdVersion(1, 7, 24), None):
        assert cni_search_dirs(dirs, version, exists) == (DEBIAN,)
    assert cni_search_dirs(dirs, ContainerdVersion(2, 0, 4), exists) == (DEBIAN,)
    assert cni_search_dirs(dirs, ContainerdVersion(1, 6, 20), lambda _: False) == (Path("/a"),)
    assert cni_search_dirs(dirs, ContainerdVersion(2, 1, 9), lambda _: False) == dirs


def test_each_containerd_reads_the_plugin_directories_in_its_own_key() -> None:
    cfg = config('[cni]\nbin_dirs = ["/a", "/b"]\n[runsc]\nbinary = "no-such-runsc"\n')

    def cni_table(version: ContainerdVersion) -> object:
        pods = pod_runtime_settings(cfg, version=version, is_dir=Path("/b").__eq__)
        doc = tomllib.loads(render_containerd_config(cfg, version, pods))["plugins"]
        table = doc.get("io.containerd.cri.v1.runtime") or doc["io.containerd.grpc.v1.cri"]
        assert table["netns_mounts_under_state_dir"] is True
        return table["cni"]

    assert cni_table(ContainerdVersion(1, 6, 20)) == {"bin_dir": "/b", "conf_dir": "/s/cni/net.d"}
    assert cni_table(ContainerdVersion(2, 0, 4)) == {"bin_dir": "/b", "conf_dir": "/s/cni/net.d"}
    assert cni_table(ContainerdVersion(2, 1, 9)) == {
        "bin_dirs": ["/a", "/b"],
        "conf_dir": "/s/cni/net.d",
    }


def test_the_default_network_is_a_masqueraded_bridge_with_leases_under_the_state_dir() -> None:
    assert json.loads(default_conflist("10.213.0.0/24", Path("/s/cni/networks"))) == {
        "cniVersion": "0.4.0",
        "name": "node-containerd",
        "plugins": [
            {
                "type": "bridge",
                "bridge": "nc0",
                "isGateway": True,
                "ipMasq": True,
                "hairpinMode": True,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{"subnet": "10.213.0.0/24"}]],
                    "routes": [{"dst": "0.0.0.0/0"}],
                    "dataDir": "/s/cni/networks",
                },
            },
            {"type": "firewall"},
            {"type": "portmap", "capabilities": {"portMappings": True}},
        ],
    }


def test_the_default_network_is_written_kept_or_given_way_to_another_config() -> None:
    ours = DEFAULT_CONFLIST
    assert plan_default_network([], None, "x") is DefaultNetwork.WRITE
    assert plan_default_network([ours], "old", "x") is DefaultNetwork.WRITE
    assert plan_default_network([ours], "x", "x") is DefaultNetwork.KEEP
    assert plan_default_network(["10-flannel.conflist", ours], "x", "x") is DefaultNetwork.REMOVE
    assert plan_default_network(["10-flannel.conflist"], None, "x") is DefaultNetwork.NONE


def test_the_agent_writes_its_network_into_its_own_empty_conf_dir_and_rewrites_it(
    tmp_path: Path,
) -> None:
    cfg = config("", state=tmp_path)
    target = tmp_path / "cni" / "net.d" / DEFAULT_CONFLIST
    assert ensure_default_network(cfg) is DefaultNetwork.WRITE
    assert target.read_text() == default_conflist("10.213.0.0/24", tmp_path / "cni" / "networks")
    assert oct(target.stat().st_mode & 0o777) == "0o644"
    (target.parent / "README").write_text("not a CNI config\n")
    assert ensure_default_network(cfg) is DefaultNetwork.KEEP
    other = config('[cni]\nsubnet = "192.168.213.0/24"\n', state=tmp_path)
    assert ensure_default_network(other) is DefaultNetwork.WRITE
    assert json.loads(target.read_text())["plugins"][0]["ipam"]["ranges"] == [
        [{"subnet": "192.168.213.0/24"}]
    ]
    assert sorted(p.name for p in target.parent.iterdir()) == ["README", DEFAULT_CONFLIST]


def test_an_operators_config_makes_the_agent_remove_its_own(tmp_path: Path) -> None:
    cfg = config("", state=tmp_path)
    ensure_default_network(cfg)
    conf_dir = tmp_path / "cni" / "net.d"
    (conf_dir / "10-mynet.conf").write_text("{}\n")
    assert ensure_default_network(cfg) is DefaultNetwork.REMOVE
    assert [p.name for p in conf_dir.iterdir()] == ["10-mynet.conf"]
    assert ensure_default_network(cfg) is DefaultNetwork.NONE


def test_a_conf_dir_the_operator_named_is_never_written(tmp_path: Path) -> None:
    cfg = config(f'[cni]\nconf_dir = "{tmp_path / "net.d"}"\n', state=tmp_path / "s")
    assert ensure_default_network(cfg) is DefaultNetwork.NONE
    assert not (tmp_path / "net.d").exists()


def test_plugins_missing_from_every_searched_directory_are_named(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    for name in ("bridge", "loopback"):
        (tmp_path / "a" / name).touch()
    (tmp_path / "b" / "portmap").touch()
    dirs = (tmp_path / "a", tmp_path / "b")
    assert missing_plugins(dirs, Path.is_file) == ["host-local", "firewall"]


def test_start_up_warns_when_the_default_networks_plugins_are_missing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    empty = tmp_path / "plugins"
    empty.mkdir()
    cfg = config(f'[cni]\nbin_dirs = ["{empty}"]\n', state=tmp_path / "s")
    prepare_network(cfg, (empty,))
    assert capsys.readouterr().err == (
        "node-containerd: warning: CNI plugins bridge, host-local, firewall, portmap, loopback "
        f"are not in {str(empty)!r}: pods with their own network namespace will not start; "
        "install them (Debian: apt-get install containernetworking-plugins) or set "
        "[cni] bin_dirs\n"
    )
    (tmp_path / "s" / "cni" / "net.d" / "10-mynet.conf").write_text("{}\n")
    prepare_network(cfg, (empty,))
    assert "CNI plugins loopback are not in" in capsys.readouterr().err
