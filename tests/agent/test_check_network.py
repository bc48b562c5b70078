"""`check`'s pod with its own network: what it reads from CRI, and the causes it names."""

from __future__ import annotations

import json
import platform
from pathlib import Path

from actors.agent.check_network import cni_hint, missing_cni_plugins, netstack_refused_cause


def cniconfig(dirs: list[str]) -> str:
    """CRI's verbose `cniconfig`, as containerd 1.6 gives it (trimmed)."""

    def plugin(conf: dict[str, object]) -> dict[str, object]:
        return {"Network": {"ipam": {}, "dns": {}} | conf, "Source": json.dumps(conf)}

    networks = [
        {"Config": {"Name": "cni-loopback", "Plugins": [plugin({"type": "loopback"})]}},
        {
            "Config": {
                "Name": "node-containerd",
                "Plugins": [
                    plugin({"type": "bridge", "ipam": {"type": "host-local"}}),
                    plugin({"type": "firewall"}),
                    plugin({"type": "portmap", "capabilities": {"portMappings": True}}),
                ],
            }
        },
    ]
    return json.dumps({"PluginDirs": dirs, "PluginConfDir": "/s/cni/net.d", "Networks": networks})


def test_plugins_and_ipam_plugins_of_the_loaded_networks_missing_from_every_dir_are_named() -> None:
    present = {Path("/a/loopback"), Path("/b/bridge"), Path("/b/portmap")}
    assert missing_cni_plugins(cniconfig(["/a", "/b"]), present.__contains__) == (
        ["host-local", "firewall"],
        ["/a", "/b"],
    )
    everything = cniconfig(["/usr/lib/cni"])
    assert missing_cni_plugins(everything, lambda _: True) == ([], ["/usr/lib/cni"])


def test_a_cniconfig_of_another_shape_names_nothing_missing() -> None:
    for text in ("", "not json", "[]", '{"Networks": [{"Config": {}}]}'):
        assert missing_cni_plugins(text, lambda _: False) == ([], [])


def test_cris_cni_errors_get_a_hint_naming_what_to_install_or_set() -> None:
    dirs = (Path("/usr/lib/cni"), Path("/opt/cni/bin"))
    error = 'plugin type="bridge" failed (add): failed to find plugin "bridge" in path [/x]'
    assert cni_hint(error, Path("/s/cni/net.d"), dirs) == (
        "; the CNI plugins are not in [cni] bin_dirs ('/usr/lib/cni', '/opt/cni/bin'): install "
        "them (Debian: apt-get install containernetworking-plugins, or scripts/setup) or set "
        "[cni] bin_dirs to where they are"
    )
    not_ready = "CRI's network is not ready (NetworkPluginNotReady: cni plugin not initialized)"
    assert cni_hint(not_ready, Path("/etc/cni/net.d"), dirs) == (
        "; no usable CNI config in '/etc/cni/net.d': leave [cni] conf_dir \"\" for the agent's "
        "default network, or let the cluster's network add-on write its config there"
    )
    assert cni_hint("context deadline exceeded", Path("/x"), dirs) == ""


def test_a_runsc_refusing_its_network_stack_is_named_with_the_issue_and_the_ways_out() -> None:
    assert netstack_refused_cause("/usr/bin/runsc") == (
        "runsc '/usr/bin/runsc' refuses gVisor's network stack in every network namespace on "
        f"Linux {platform.release()}, which shows /proc/sys/net/core/rmem_default in every "
        "namespace: it takes each for the host's (gVisor issue #10704 of July 2024, fixed "
        'upstream since); install a newer runsc, or set [runsc] flags = ["--network=host"] to '
        "give such pods their namespace through the host kernel's network stack instead of "
        "gVisor's"
    )
