"""A Go-style supervision tree (Monogon's `osbase/supervisor`) for node-containerd.

This facade exports the pure core: states, policies, the events in and actions
out, names, errors, and `Tree`, the state machine that decides. Importing it
pulls in no threads, processes, sockets, clocks, pykka or msgpack; the runtime
that carries the core's actions out lives in its own modules.

The simulation harness for tests is `actors.supervisor.testing`.
"""

from __future__ import annotations

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
