"""`node-containerd run`: the agent in the foreground.

Order of start-up: the zygote the runnables are forked from
(`actors.supervisor.runtime.zygote`), which `run` spawns before it even loads this
module or reads the config (`actors.agent.preload.spawn_early_zygote`) so that it
loads their modules meanwhile, and which is closed at once if `[supervisor] spawn`
is "exec"; the state directory's lock
(`state_lock`); and only then the rest of the agent (`actors.agent.running`,
imported here so that it loads side by side with the zygote): state directories
(0700), the built-in sandbox image's tarball (`actors.agent.sandbox`), the generated
containerd config and the default CNI network (`actors.agent.prepare`); the log tree
and its sinks;
metrics (if enabled); the systemd notifier (if `NOTIFY_SOCKET` is set); the
supervision tree, whose root runnable starts containerd at once; then, while it
starts, the control socket and the registry entry (`actors.agent.registry`, so
the CLI finds the agent from any directory). The metrics endpoint (with
`/healthz`), and the control socket when something is already at its path, come
before the tree starts, so that a refusal leaves nothing running. One `ExitStack`
stops them in reverse order, however the run ends. SIGTERM or SIGINT sends
`STOPPING=1` and shuts the tree down gracefully (every node is cancelled,
children first, each SIGKILLed after its grace period) and the agent exits 0. A
failure that escalates past the root (restart intensity reached at the root)
stops the tree too, and the agent exits 1 with the reason on stderr and in
systemd's status, so the init system sees it. SIGHUP never stops it: it reopens
the JSON log file and reloads the config (`actors.agent.live`). When containerd
first answers, one line says the agent is up and where its things are
(`actors.agent.terminal`).

What the machine refuses (a state directory that cannot be made, a log file or a
metrics port that cannot be had, another agent on the same state) is an
`AgentError`: one line naming the cause and the fix, never a traceback.
"""

from __future__ import annotations

import signal
import threading

from actors.agent.preload import spawn_early_zygote
from actors.agent.state_lock import StateDirLocked, StateLock
from actors.config.schema import AgentConfig
from actors.supervisor.runtime.spawn import ensure_std_fds
from actors.supervisor.runtime.zygote import Zygote

__all__ = ["AgentError", "run_agent"]


class AgentError(Exception):
    """The agent cannot start: the text names the file and the cause."""


def run_agent(cfg: AgentConfig, *, verbose: bool = False, early: Zygote | None = None) -> int:
    """Run the agent until SIGTERM/SIGINT or a failure at the root; return the exit code.

    First of all it takes the state directory's lock (`state_lock`): a second agent
    on the same state directory is refused before it writes anything. What is
    started is stopped in reverse order by one `ExitStack`, whatever way the run
    ends (a signal, a failure at the root, an exception while starting). SIGHUP,
    from the first moment, never stops it: it reopens the JSON log file and reloads
    the config (`actors.agent.live`).

    Args:
        cfg: the checked config.
        verbose: show containerd's own INFO lines on stderr too (`TerminalView`).
        early: the zygote `spawn_early_zygote` started before the config was read;
            used with `[supervisor] spawn = "zygote"`, closed at once otherwise, and
            closed when the run ends however it ends. None: one is spawned here, after
            the lock, when the config asks for it.

    Raises:
        AgentError: the agent cannot start (the state directory is another agent's,
            or cannot be prepared, a log file or the metrics port cannot be had); the
            text names the cause.
    """
    ensure_std_fds()
    if early is not None and cfg.supervisor.spawn != "zygote":
        early.close()
        early = None
    hup = threading.Event()
    previous = signal.signal(signal.SIGHUP, lambda _signum, _frame: hup.set())
    try:
        return _run_unlocked(cfg, verbose, hup, early)
    finally:
        signal.signal(signal.SIGHUP, previous)


def _run_unlocked(
    cfg: AgentConfig, verbose: bool, hup: threading.Event, zygote: Zygote | None
) -> int:
    try:
        try:
            lock = StateLock(cfg.state_dir)
        except StateDirLocked as e:
            raise AgentError(str(e)) from None
        except OSError as e:
            raise AgentError(
                f"cannot lock the state directory {str(cfg.state_dir)!r}: {e.strerror or e}"
            ) from e
        try:
            if zygote is None and cfg.supervisor.spawn == "zygote":
                zygote = spawn_early_zygote()
            # Most of the agent loads here, while the zygote loads the runnables.
            from actors.agent.running import run_locked

            return run_locked(cfg, verbose, hup, zygote)
        finally:
            lock.release()
    finally:
        if zygote is not None:
            zygote.close()
