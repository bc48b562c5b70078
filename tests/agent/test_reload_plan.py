"""What a SIGHUP changes (`plan_reload`): every changed key, live or kept until the next start."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from actors.agent.reload import KeyChange, plan_reload
from actors.config import AgentConfig, parse_config
from actors.supervisor.core.severity import Severity


def config(text: str, state: Path = Path("/tmp/nc-reload")) -> AgentConfig:
    return parse_config(
        f'state_dir = "{state}"\n{text}', source="agent.toml", env={}, check_binaries=False
    )


def test_nothing_changed_is_an_empty_plan_on_the_same_config() -> None:
    running = config("[metrics]\nenabled = true\n")
    plan = plan_reload(running, config("[metrics]\nenabled = true\n"))
    assert plan.changes == ()
    assert plan.effective == running


def test_log_metrics_address_and_policies_change_live_and_the_rest_waits_for_the_next_start() -> (
    None
):
    running = config("[metrics]\nenabled = true\n")
    loaded = config(
        '[containerd]\nliveness_interval = "7s"\n'
        "[preseed]\npin = false\n"
        '[log]\nmin_severity = "warning"\njson_file = "/tmp/nc-reload/a.json"\n'
        '[metrics]\nenabled = true\nlisten = "127.0.0.1:9999"\n'
        '[policy."root.containerd.runsc"]\nbackoff_initial = "40s"\nhealthy_deadline = "20s"\n'
    )
    plan = plan_reload(running, loaded)
    assert plan.changes == (
        KeyChange(key="containerd.liveness_interval", old="'5s'", new="'7s'", live=False),
        KeyChange(key="preseed.pin", old="true", new="false", live=False),
        KeyChange(key="log.json_file", old='""', new="'/tmp/nc-reload/a.json'", live=True),
        KeyChange(key="log.min_severity", old="'INFO'", new="'WARNING'", live=True),
        KeyChange(key="metrics.listen", old="'127.0.0.1:9464'", new="'127.0.0.1:9999'", live=True),
        KeyChange(
            key='policy."root.containerd.runsc".backoff_initial',
            old="(not set)",
            new="'40s'",
            live=True,
        ),
        KeyChange(
            key='policy."root.containerd.runsc".healthy_deadline',
            old="'10s'",
            new="'20s'",
            live=True,
        ),
    )
    assert plan.effective == dataclasses.replace(
        running,
        log=dataclasses.replace(
            running.log, min_severity=Severity.WARNING, json_file=Path("/tmp/nc-reload/a.json")
        ),
        metrics=dataclasses.replace(running.metrics, port=9999),
        policies=loaded.policies,
    )


def test_a_metrics_address_is_not_live_while_metrics_are_off() -> None:
    plan = plan_reload(config(""), config('[metrics]\nlisten = "127.0.0.1:9999"\n'))
    assert plan.changes == (
        KeyChange(key="metrics.listen", old="'127.0.0.1:9464'", new="'127.0.0.1:9999'", live=False),
    )


def test_each_line_says_what_happened_to_its_key() -> None:
    live = KeyChange(key="log.stderr", old="true", new="false", live=True)
    kept = KeyChange(key="cri.default_runtime", old="'runc'", new="'runsc'", live=False)
    assert live.line == "config reload: log.stderr changed from true to false"
    assert kept.line == (
        "config reload: cri.default_runtime changed from 'runc' to 'runsc', which needs a "
        "restart of the agent (and so of containerd); it stays 'runc' until then"
    )
