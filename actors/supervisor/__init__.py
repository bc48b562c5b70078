"""A Go-style supervision tree (Monogon's `osbase/supervisor`) for node-containerd.

This facade exports the pure core: states, policies, the events in and actions
out, names, errors, and `Tree`, the state machine that decides. Importing it
pulls in no threads, processes, sockets, clocks, pykka or msgpack; the runtime
that carries the core's actions out lives in its own modules.

The simulation harness for tests is `actors.supervisor.testing`.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from actors.supervisor.errors import IllegalEvent, InvalidName, SupervisionError, UnknownNode
    from actors.supervisor.events import (
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
    from actors.supervisor.names import ROOT_DN, child_dn, is_valid_name, parent_dn, validate_name
    from actors.supervisor.node import NodeStatus
    from actors.supervisor.policy import PolicyRule, PolicySet, RestartPolicy
    from actors.supervisor.states import EXITED_STATES, SIGNAL_TRANSITIONS, NodeState, Signal
    from actors.supervisor.tree import Tree

#: Facade name -> the module that defines it. Loaded on first use (PEP 562), so
#: that a runnable's process, which imports only `actors.supervisor.api` and the
#: host, does not pay for the core it never runs (about 60 ms and 6 MB a process).
_EXPORTS = {
    "IllegalEvent": "actors.supervisor.errors",
    "InvalidName": "actors.supervisor.errors",
    "SupervisionError": "actors.supervisor.errors",
    "UnknownNode": "actors.supervisor.errors",
    "Action": "actors.supervisor.events",
    "CancelNode": "actors.supervisor.events",
    "CancelTimer": "actors.supervisor.events",
    "Event": "actors.supervisor.events",
    "ExitKind": "actors.supervisor.events",
    "HeartbeatReceived": "actors.supervisor.events",
    "KillNode": "actors.supervisor.events",
    "LogNode": "actors.supervisor.events",
    "NodeFaulted": "actors.supervisor.events",
    "ProcessExited": "actors.supervisor.events",
    "ProcessSpawned": "actors.supervisor.events",
    "ReplyRunGroup": "actors.supervisor.events",
    "ReplySubLogger": "actors.supervisor.events",
    "RestartRequested": "actors.supervisor.events",
    "RunGroupRequested": "actors.supervisor.events",
    "RunnableSpec": "actors.supervisor.events",
    "SetTimer": "actors.supervisor.events",
    "ShutdownComplete": "actors.supervisor.events",
    "ShutdownRequested": "actors.supervisor.events",
    "SignalReceived": "actors.supervisor.events",
    "StartNode": "actors.supervisor.events",
    "StateChanged": "actors.supervisor.events",
    "SubLoggerRequested": "actors.supervisor.events",
    "TimerFired": "actors.supervisor.events",
    "TimerKey": "actors.supervisor.events",
    "TreeFailed": "actors.supervisor.events",
    "TreeStarted": "actors.supervisor.events",
    "ROOT_DN": "actors.supervisor.names",
    "child_dn": "actors.supervisor.names",
    "is_valid_name": "actors.supervisor.names",
    "parent_dn": "actors.supervisor.names",
    "validate_name": "actors.supervisor.names",
    "NodeStatus": "actors.supervisor.node",
    "PolicyRule": "actors.supervisor.policy",
    "PolicySet": "actors.supervisor.policy",
    "RestartPolicy": "actors.supervisor.policy",
    "EXITED_STATES": "actors.supervisor.states",
    "SIGNAL_TRANSITIONS": "actors.supervisor.states",
    "NodeState": "actors.supervisor.states",
    "Signal": "actors.supervisor.states",
    "Tree": "actors.supervisor.tree",
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
