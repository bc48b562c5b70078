"""A Go-style supervision tree (Monogon's `osbase/supervisor`) for node-containerd.

This facade exports the pure core: states, policies, the events in and actions
out, names, errors, and `Tree`, the state machine that decides. Importing it
pulls in no threads, processes, sockets, clocks, pykka or msgpack; the runtime
that carries the core's actions out lives in its own modules.

The simulation harness for tests is `actors.supervisor.testing.simulation`.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from actors.supervisor.core.errors import (
        IllegalEvent,
        InvalidName,
        SupervisionError,
        UnknownNode,
    )
    from actors.supervisor.core.events import (
        Action,
        CancelNode,
        CancelTimer,
        Event,
        ExitKind,
        HeartbeatReceived,
        KillNode,
        LogNode,
        NodeFaulted,
        ProcessExited,
        ProcessSpawned,
        ReplyRunGroup,
        ReplySubLogger,
        RestartRequested,
        RunGroupRequested,
        RunnableSpec,
        SetTimer,
        ShutdownComplete,
        ShutdownRequested,
        SignalReceived,
        StartNode,
        StateChanged,
        SubLoggerRequested,
        TimerFired,
        TimerKey,
        TreeFailed,
        TreeStarted,
    )
    from actors.supervisor.core.names import (
        ROOT_DN,
        child_dn,
        is_valid_name,
        parent_dn,
        validate_name,
    )
    from actors.supervisor.core.node import NodeStatus
    from actors.supervisor.core.policy import PolicyRule, PolicySet, RestartPolicy
    from actors.supervisor.core.states import EXITED_STATES, SIGNAL_TRANSITIONS, NodeState, Signal
    from actors.supervisor.core.tree import Tree

#: Facade name -> the module that defines it. Loaded on first use (PEP 562), so
#: that a runnable's process, which imports only `actors.supervisor.process.api` and the
#: host, does not pay for the core it never runs (about 60 ms and 6 MB a process).
_EXPORTS = {
    "IllegalEvent": "actors.supervisor.core.errors",
    "InvalidName": "actors.supervisor.core.errors",
    "SupervisionError": "actors.supervisor.core.errors",
    "UnknownNode": "actors.supervisor.core.errors",
    "Action": "actors.supervisor.core.events",
    "CancelNode": "actors.supervisor.core.events",
    "CancelTimer": "actors.supervisor.core.events",
    "Event": "actors.supervisor.core.events",
    "ExitKind": "actors.supervisor.core.events",
    "HeartbeatReceived": "actors.supervisor.core.events",
    "KillNode": "actors.supervisor.core.events",
    "LogNode": "actors.supervisor.core.events",
    "NodeFaulted": "actors.supervisor.core.events",
    "ProcessExited": "actors.supervisor.core.events",
    "ProcessSpawned": "actors.supervisor.core.events",
    "ReplyRunGroup": "actors.supervisor.core.events",
    "ReplySubLogger": "actors.supervisor.core.events",
    "RestartRequested": "actors.supervisor.core.events",
    "RunGroupRequested": "actors.supervisor.core.events",
    "RunnableSpec": "actors.supervisor.core.events",
    "SetTimer": "actors.supervisor.core.events",
    "ShutdownComplete": "actors.supervisor.core.events",
    "ShutdownRequested": "actors.supervisor.core.events",
    "SignalReceived": "actors.supervisor.core.events",
    "StartNode": "actors.supervisor.core.events",
    "StateChanged": "actors.supervisor.core.events",
    "SubLoggerRequested": "actors.supervisor.core.events",
    "TimerFired": "actors.supervisor.core.events",
    "TimerKey": "actors.supervisor.core.events",
    "TreeFailed": "actors.supervisor.core.events",
    "TreeStarted": "actors.supervisor.core.events",
    "ROOT_DN": "actors.supervisor.core.names",
    "child_dn": "actors.supervisor.core.names",
    "is_valid_name": "actors.supervisor.core.names",
    "parent_dn": "actors.supervisor.core.names",
    "validate_name": "actors.supervisor.core.names",
    "NodeStatus": "actors.supervisor.core.node",
    "PolicyRule": "actors.supervisor.core.policy",
    "PolicySet": "actors.supervisor.core.policy",
    "RestartPolicy": "actors.supervisor.core.policy",
    "EXITED_STATES": "actors.supervisor.core.states",
    "SIGNAL_TRANSITIONS": "actors.supervisor.core.states",
    "NodeState": "actors.supervisor.core.states",
    "Signal": "actors.supervisor.core.states",
    "Tree": "actors.supervisor.core.tree",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'actors.supervisor' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__all__ = [
    # states
    "NodeState",
    "Signal",
    "SIGNAL_TRANSITIONS",
    "EXITED_STATES",
    # policy
    "RestartPolicy",
    "PolicyRule",
    "PolicySet",
    # events and actions
    "RunnableSpec",
    "ExitKind",
    "Event",
    "TreeStarted",
    "ProcessSpawned",
    "RunGroupRequested",
    "SubLoggerRequested",
    "SignalReceived",
    "HeartbeatReceived",
    "ProcessExited",
    "NodeFaulted",
    "TimerFired",
    "RestartRequested",
    "ShutdownRequested",
    "Action",
    "StartNode",
    "CancelNode",
    "KillNode",
    "SetTimer",
    "CancelTimer",
    "ReplyRunGroup",
    "ReplySubLogger",
    "LogNode",
    "StateChanged",
    "TreeFailed",
    "ShutdownComplete",
    "TimerKey",
    # errors
    "SupervisionError",
    "InvalidName",
    "UnknownNode",
    "IllegalEvent",
    # names
    "ROOT_DN",
    "is_valid_name",
    "validate_name",
    "child_dn",
    "parent_dn",
    # the core
    "Tree",
    "NodeStatus",
]
