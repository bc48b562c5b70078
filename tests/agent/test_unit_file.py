"""contrib/node-containerd.service: systemd accepts it, and it says what the agent needs."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

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


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="needs systemd-analyze")
def test_systemd_analyze_verify_accepts_the_unit_without_a_warning(tmp_path):
    # verify checks that ExecStart's program exists: point it at this checkout's script.
    unit = tmp_path / "node-containerd.service"
    script = str(Path(sys.executable).parent / "node-containerd")
    unit.write_text(UNIT.read_text().replace(EXEC, script))
    result = _verify(unit)
    assert (result.returncode, result.stderr) == (0, "")


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="needs systemd-analyze")
def test_systemd_analyze_verify_catches_a_misspelt_key_so_the_test_above_can_fail(tmp_path):
    unit = tmp_path / "node-containerd.service"
    script = str(Path(sys.executable).parent / "node-containerd")
    unit.write_text(UNIT.read_text().replace(EXEC, script).replace("KillMode=", "KillMod="))
    assert "Unknown key 'KillMod' in section [Service], ignoring." in _verify(unit).stderr


def test_the_unit_is_notify_with_a_watchdog_and_keeps_pods_shims_on_stop():
    settings = _service_settings()
    assert settings["Type"] == ["notify"]
    assert settings["NotifyAccess"] == ["main"]
    assert settings["WatchdogSec"] == ["30s"]
    assert settings["Restart"] == ["on-failure"]
    # Not control-group or mixed: those kill containerd's shims, and with them every pod.
    assert settings["KillMode"] == ["process"]
    assert settings["ExecStart"] == [f"{EXEC} run"]
    assert settings["ExecReload"] == ["/bin/kill -HUP $MAINPID"]  # SIGHUP reloads, never stops
    assert settings["Environment"] == ["NODE_CONTAINERD_STATE=/var/lib/node-containerd"]
    assert settings["StateDirectory"] == ["node-containerd"]
