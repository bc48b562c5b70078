"""A Go-style supervision tree (Monogon's `osbase/supervisor`) for node-containerd.

This facade exports the pure core: every public name (the `__all__`) of the
modules in `_MODULES` -- states, policies, the events in and actions out,
names, errors, severities, and `Tree`, the state machine that decides. Importing it pulls
in no threads, processes, sockets, clocks, pykka or msgpack; the runtime that
carries the core's actions out lives in `runtime/`, the child side in
`process/`, test support in `testing/` (see ARCHITECTURE.md).

The names are written once, in each module's `__all__`: the facade lists only
the modules. They load on first use (PEP 562), so that a runnable's process,
which imports only `actors.supervisor.process.api` and the host, does not pay
for the core it never runs (about 60 ms and 6 MB a process).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from actors.supervisor.core.errors import *  # noqa: F403
    from actors.supervisor.core.events import *  # noqa: F403
    from actors.supervisor.core.names import *  # noqa: F403
    from actors.supervisor.core.node import *  # noqa: F403
    from actors.supervisor.core.policy import *  # noqa: F403
    from actors.supervisor.core.severity import *  # noqa: F403
    from actors.supervisor.core.states import *  # noqa: F403
    from actors.supervisor.core.tree import *  # noqa: F403

#: The core modules whose public names the facade exports, in this order.
_MODULES = (
    "actors.supervisor.core.states",
    "actors.supervisor.core.policy",
    "actors.supervisor.core.events",
    "actors.supervisor.core.errors",
    "actors.supervisor.core.names",
    "actors.supervisor.core.node",
    "actors.supervisor.core.severity",
    "actors.supervisor.core.tree",
)


def _exports() -> dict[str, Any]:
    """Import the core modules; every name of their `__all__` -> its value."""
    exports: dict[str, Any] = {}
    for name in _MODULES:
        module = importlib.import_module(name)
        for attr in module.__all__:
            exports.setdefault(attr, getattr(module, attr))
    return exports


def __getattr__(name: str) -> Any:
    exports = _exports()
    if name == "__all__":
        value: Any = list(exports)
    elif name in exports:
        value = exports[name]
    else:
        raise AttributeError(f"module 'actors.supervisor' has no attribute {name!r}")
    globals()[name] = value
    return value
