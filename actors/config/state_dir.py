"""Where the agent's state lives when the config does not say: three constants.

The schema (`actors.config.schema`, the one place of defaults) re-exports them; they
live here, standard library only, so that the CLI finds the running agent
(`actors.agent.locate`) without building the schema's dataclasses.
"""

from __future__ import annotations

__all__ = ["CONTROL_SOCKET_NAME", "DEFAULT_STATE_DIR", "STATE_ENV"]

#: The state directory when neither the config nor the environment names one.
#: Relative: resolved against the current directory at load time.
DEFAULT_STATE_DIR = ".node-containerd"

#: The environment variable naming the state directory when the config does not.
STATE_ENV = "NODE_CONTAINERD_STATE"

#: `control.socket` when omitted or `""`: this name under the state directory.
CONTROL_SOCKET_NAME = "control.sock"
