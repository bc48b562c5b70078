"""SIGHUP's reload carried out (`actors.agent.live`) on real sinks, a real metrics server and
config files, with the tree's policies received by a stand-in."""

from __future__ import annotations

import urllib.request
from pathlib import Path

from actors.agent.live import LogSinks, MetricsEndpoint, Reloader
from actors.agent.metrics import Metrics
from actors.agent.terminal import TerminalView
from actors.config import load_config
from actors.logtree import LogTree, Severity
from actors.supervisor.core.policy import PolicySet


class Tree:
    def __init__(self) -> None:
        self.policies: list[PolicySet] = []

    def set_policies(self, policies: PolicySet, timeout: float = 10.0) -> None:
        self.policies.append(policies)


def write(path: Path, text: str) -> Path:
    path.write_text(f'state_dir = "{path.parent}/st"\n{text}')
    return path


def test_a_reload_moves_the_metrics_page_and_hands_the_policies_to_the_tree(
    short_dir: Path,
) -> None:
    config = write(short_dir / "a.toml", '[metrics]\nenabled = true\nlisten = "127.0.0.1:0"\n')
    cfg = load_config(config, check_binaries=False)
    log_tree = LogTree()
    lines: list[tuple[Severity, str]] = []
    sinks = LogSinks(log_tree, cfg.log, TerminalView())
    endpoint = MetricsEndpoint(Metrics(log_tree), "127.0.0.1", 0)
    tree = Tree()
    reloader = Reloader(
        cfg, sinks=sinks, tree=tree, endpoint=endpoint, log=lambda s, m: lines.append((s, m))
    )
    old_url = endpoint.url
    try:
        write(
            config,
            '[metrics]\nenabled = true\nlisten = "127.0.0.2:0"\n'
            '[policy."root.x"]\nmax_restarts = 3\n',
        )
        reloader.reload()
        assert endpoint.url.startswith("http://127.0.0.2:")
        assert urllib.request.urlopen(endpoint.url, timeout=5).status == 200
        assert [p.for_dn("root.x").max_restarts for p in tree.policies] == [3]
        assert lines == [
            (Severity.INFO, f"SIGHUP: reopening the log file and reloading '{config}'"),
            (
                Severity.INFO,
                "config reload: metrics.listen changed from '127.0.0.1:0' to '127.0.0.2:0'",
            ),
            (
                Severity.INFO,
                'config reload: policy."root.x".max_restarts changed from (not set) to 3',
            ),
        ]
        assert old_url != endpoint.url
    finally:
        endpoint.shutdown()
        sinks.stop()
