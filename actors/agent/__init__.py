"""The node agent: its configuration, its command line, and the daemon that runs the tree.

The public face of the configuration lives here; the command line is
`actors.agent.cli` (`bin/node-containerd`). Importing this package is cheap: it
loads what it re-exports on first use, so `status` and `--help` stay fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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


def __getattr__(name: str) -> Any:
    """Loads the re-exported names on first use, so `import actors.agent.cli` stays cheap."""
    if name == "render_containerd_config":
        from actors.containerd.runtimes import config_file

        return config_file.render_containerd_config
    if name in __all__:
        import actors.config

        return getattr(actors.config, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
