"""The node agent: its configuration, its command line, and the daemon that runs the tree.

The public face of the configuration lives here; the command line is
`actors.agent.cli` (`bin/node-containerd`). Importing this package is cheap: it
pulls in neither grpc nor pykka, so `--help` and `config check` stay fast.
"""

from __future__ import annotations

from actors.config import (
    AgentConfig,
    ConfigError,
    default_toml,
    load_config,
    parse_config,
)
from actors.containerd.runtimes.config_file import render_containerd_config

__all__ = [
    "AgentConfig",
    "ConfigError",
    "__version__",
    "default_toml",
    "load_config",
    "parse_config",
    "render_containerd_config",
]

#: The agent's version, as in pyproject.toml (a test keeps them equal).
__version__ = "0.1.0"
