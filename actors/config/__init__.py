"""The agent's configuration: one TOML file on top of the built-in default profile.

- `schema`: the frozen dataclasses of a loaded config, their defaults and the
  keys each section takes (defaults are data, in one place).
- `values`: the checkers that turn one TOML value into a typed one, each naming
  the key and the offending value.
- `units`: durations, sizes and modes as strings with units.
- `bounds`: the bounds of any value whatever its key (depth, size, characters),
  checked before the keys are read, so hostile TOML is a problem, not a traceback.
- `policy`: the `[policy."<pattern>"]` tables, read into the supervisor's rules.
- `load`: reading a file (or text) into an `AgentConfig`, every problem at once.
- `state_dir` and `errors`: the state directory's defaults and `ConfigError`, standard
  library only, so the CLI finds the agent (`actors.agent.locate`) without the rest.
- `default.toml`: the default profile, commented; `config default` prints it.

Importing this package loads nothing: its names load `load` on first use. It never
pulls in grpc or pykka.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from actors.config.load import (
        DEFAULT_SOURCE,
        AgentConfig,
        ConfigError,
        default_toml,
        load_config,
        parse_config,
    )

__all__ = [
    "DEFAULT_SOURCE",
    "AgentConfig",
    "ConfigError",
    "default_toml",
    "load_config",
    "parse_config",
]


def __getattr__(name: str) -> Any:
    """Loads `load` on first use, so `actors.config.locate` alone stays cheap."""
    if name in __all__:
        from actors.config import load

        return getattr(load, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
