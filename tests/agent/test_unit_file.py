"""contrib/node-containerd.service: systemd accepts it, it says what the agent needs, and
`node-containerd config unit` prints the same unit for the installation it runs from."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from actors.agent.systemd.unit import render_unit
from tests.support.project import CLI

pytestmark = pytest.mark.timeout(60)

UNIT = Path(__file__).resolve().parents[2] / "contrib" / "node-containerd.service"
EXEC = "/opt/node-containerd/bin/node-containerd"


def _service_settings() -> dict[str, list[str]]:
    settings: dict[str, list[str]] = {}
    section = ""
    for line in UNIT.read_text().splitlines():
        if line.startswith("["):
            section = line.strip("[]")
        elif line and not line.startswith("#") and section == "Service":
            key, _, value = line.partition("=")
            settings.setdefault(key, []).append(value)
    return settings


def _verify(unit: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=50
    )


def _runnable_here(text: str) -> str:
    """The unit with programs verify can find on this machine (it checks they exist)."""
    script = str(Path(sys.executable).parent / "node-containerd")
    modprobe = shutil.which("modprobe") or shutil.which("true") or "/bin/true"
    return text.replace(EXEC, script).replace("/sbin/modprobe", modprobe)


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="needs systemd-analyze")
def test_systemd_analyze_verify_accepts_the_unit_without_a_warning(tmp_path):
    # verify checks that ExecStart's program exists: point it at this checkout's script.
    unit = tmp_path / "node-containerd.service"
    unit.write_text(_runnable_here(UNIT.read_text()))
    result = _verify(unit)
    assert (result.returncode, result.stderr) == (0, "")


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="needs systemd-analyze")
def test_systemd_analyze_verify_catches_a_misspelt_key_so_the_test_above_can_fail(tmp_path):
    unit = tmp_path / "node-containerd.service"
    unit.write_text(_runnable_here(UNIT.read_text()).replace("KillMode=", "KillMod="))
    assert "Unknown key 'KillMod' in section [Service], ignoring." in _verify(unit).stderr


def test_the_unit_is_notify_with_a_watchdog_and_keeps_pods_shims_on_stop():
    settings = _service_settings()
    assert settings["Type"] == ["notify"]
    assert settings["NotifyAccess"] == ["main"]
    assert settings["WatchdogSec"] == ["30s"]
    assert settings["Restart"] == ["on-failure"]
    # Not control-group or mixed: those kill containerd's shims, and with them every pod.
    assert settings["KillMode"] == ["process"]
    # Shims' sockets live in the runtime directory: it must outlive a restart of the unit.
    assert settings["RuntimeDirectoryPreserve"] == ["yes"]


def test_the_unit_has_what_debians_containerd_service_has_and_more():
    settings = _service_settings()
    for key, value in {
        "ExecStartPre": "-/sbin/modprobe overlay",
        "Delegate": "yes",
        "OOMScoreAdjust": "-999",
        "LimitNOFILE": "1048576",
        "TasksMax": "infinity",
        "RuntimeDirectory": "node-containerd",
        "StateDirectory": "node-containerd",
        "ConfigurationDirectory": "node-containerd",
        "EnvironmentFile": "-/etc/default/node-containerd",
    }.items():
        assert settings[key] == [value], key
    assert "Conflicts=containerd.service" in UNIT.read_text().splitlines()
    assert settings["ExecReload"] == ["/bin/kill -HUP $MAINPID"]  # SIGHUP reloads, never stops


def test_the_config_file_is_chosen_by_the_environment_not_by_editing_exec_start():
    settings = _service_settings()
    assert settings["ExecStart"] == [f"{EXEC} run --config ${{NODE_CONTAINERD_CONFIG}}"]
    assert settings["Environment"] == [
        "NODE_CONTAINERD_CONFIG=/etc/node-containerd/config.toml",
        "NODE_CONTAINERD_STATE=/var/lib/node-containerd",
    ]


def test_contrib_holds_the_unit_rendered_for_the_documented_prefix():
    assert UNIT.read_text() == render_unit()


def test_config_unit_prints_the_unit_of_the_installation_it_runs_from():
    out = subprocess.run(
        [*CLI, "config", "unit", "--config-file", "/srv/nc.toml"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout
    assert out == render_unit(str(Path(sys.prefix) / "bin" / "node-containerd"), "/srv/nc.toml")


def test_config_unit_refuses_a_path_systemd_would_split():
    result = subprocess.run(
        [*CLI, "config", "unit", "--config-file", "/etc/my config.toml"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == (
        "node-containerd: unit config path '/etc/my config.toml' is invalid: expected an "
        "absolute path without whitespace, quotes, '$' or '%'\n"
    )


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="needs systemd-analyze")
def test_systemd_analyze_security_scores_the_unit_as_the_readme_says(tmp_path):
    unit = tmp_path / "node-containerd.service"
    unit.write_text(_runnable_here(UNIT.read_text()))
    result = subprocess.run(
        ["systemd-analyze", "security", "--offline=true", str(unit)],
        capture_output=True,
        text=True,
        timeout=50,
    )
    last = result.stdout.strip().splitlines()[-1]
    score = last.split(": ", 1)[1].split()[0]
    readme = (UNIT.parents[1] / "README.md").read_text()
    assert f"`systemd-analyze security` scores it {score}" in readme
