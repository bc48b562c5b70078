"""The root's side of the zygote: start it, ask it to fork a host, fall back to exec.

`Zygote` owns the zygote process (`actors.supervisor.process.zygote`): it spawns
it with `posix_spawn` like a host (so nothing forks the threaded root), holds the
request socket, reaps it on a waiter thread and can start it again. A fork
request sends the DN and the host's ends of a fresh link socket and stdio pipe;
the zygote answers with the child's pid. The child is the root's own child
(`clone(CLONE_PARENT)`), so `ChildProcess` waits for it exactly as for a spawned
host: the same waitpid death detection, the same wait status.

`Spawner` is what the supervisor actor calls for every StartNode, on its thread:
a fork from the zygote when it is ready, else a fresh spawn (`spawn.spawn_host`),
as before there was a zygote. A zygote that died is logged at DN `root` and
started again `RESPAWN_DELAY` after its death (on the actor's thread); until it
says it is ready, hosts are spawned fresh.

The zygote's PR_SET_PDEATHSIG names the thread that spawned it, and so does each
forked child's (its parent is that thread): `Zygote.start` must run on a thread
that lives as long as the tree (the agent's main thread, or the actor's).
"""

from __future__ import annotations

import os
import select
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence

from actors.exit_status import describe_wait_status
from actors.supervisor.core.severity import Severity
from actors.supervisor.process.protocol import LINK_FD, ZYGOTE_MODULE, ZYGOTE_READY
from actors.supervisor.runtime.spawn import SpawnedHost, ensure_std_fds, host_env, spawn_host

__all__ = ["Zygote", "ZygoteUnavailable", "Spawner", "RESPAWN_DELAY", "READY_WAIT"]

#: A dead zygote is started again this long after its death.
RESPAWN_DELAY = 1.0
#: How long the first spawn waits for a zygote still loading (the agent's start).
READY_WAIT = 5.0
#: How long a fork request may take before the zygote counts as wedged.
FORK_TIMEOUT = 5.0
_PID_BYTES = 8


class ZygoteUnavailable(Exception):
    """The zygote cannot fork now (not started, still loading, dead, or it refused)."""


class Zygote:
    """The root's handle on the zygote process; `start` it, then `fork`.

    Args:
        preload: the modules the zygote imports before it forks (the runnables').
        python: the interpreter to run it with.
        on_exit: told (pid, wait status) on the waiter thread when it ends.
        env: the environment it and every host it forks get (default: this process's
            at each start), as `spawn.host_env` completes it.
    """

    def __init__(
        self,
        preload: Sequence[str] = (),
        *,
        python: str = sys.executable,
        on_exit: Callable[[int, int], None] | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self._env = None if env is None else dict(env)
        self._preload = tuple(preload)
        self._python = python
        self.on_exit = on_exit
        self._lock = threading.Lock()
        self._sock: socket.socket | None = None
        #: The running zygote's pid, or None.
        self.pid: int | None = None
        self._ready = False
        #: Whether `close` was called: it is not started again.
        self.closed = False

    @property
    def ready(self) -> bool:
        """Whether a zygote runs and has said it can fork."""
        return self.pid is not None and self._ready

    def start(self) -> int:
        """Spawn a zygote (if none runs); returns its pid."""
        with self._lock:
            if self.pid is not None:
                return self.pid
            ensure_std_fds()
            ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
            child_fd = theirs.fileno()
            moved = None
            argv = [self._python, "-m", ZYGOTE_MODULE, "--parent", str(os.getpid())]
            for name in self._preload:
                argv += ["--preload", name]
            try:
                if child_fd == LINK_FD:  # dup2(3, 3) would keep O_CLOEXEC set
                    moved = os.dup(child_fd)
                    child_fd = moved
                pid = os.posix_spawn(
                    self._python,
                    argv,
                    host_env(self._env),
                    file_actions=[
                        (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
                        (os.POSIX_SPAWN_DUP2, child_fd, LINK_FD),
                    ],
                    setpgroup=0,
                )
            except BaseException:
                ours.close()
                raise
            finally:
                theirs.close()
                if moved is not None:
                    os.close(moved)
            self._sock, self.pid, self._ready = ours, pid, False
        threading.Thread(target=self._wait, args=(pid, ours), name="nc-zygote", daemon=True).start()
        return pid

    def wait_ready(self, timeout: float) -> bool:
        """Wait up to `timeout` seconds for the running zygote to say it is ready."""
        with self._lock:
            return self._wait_ready_locked(timeout)

    def _wait_ready_locked(self, timeout: float) -> bool:
        if self._ready or self._sock is None:
            return self._ready
        try:
            if not select.select([self._sock], [], [], timeout)[0]:
                return False
            said = self._sock.recv(64)
        except OSError:
            return False
        self._ready = said == ZYGOTE_READY
        return self._ready

    def fork(self, dn: str, *, wait: float = 0.0) -> SpawnedHost:
        """Have the zygote fork a host for node `dn` (waiting up to `wait` for it to load).

        Raises:
            ZygoteUnavailable: no zygote is ready, or it did not fork; the text says why.
        """
        with self._lock:
            sock = self._sock
            if sock is None:
                raise ZygoteUnavailable("the zygote is not running")
            if not self._wait_ready_locked(wait):
                raise ZygoteUnavailable("the zygote is still loading")
            ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
            out_r, out_w = os.pipe()
            try:
                socket.send_fds(sock, [dn.encode("utf-8")], [theirs.fileno(), out_w])
                sock.settimeout(FORK_TIMEOUT)
                try:
                    reply = sock.recv(64)
                finally:
                    sock.settimeout(None)
            except OSError as e:
                ours.close()
                os.close(out_r)
                self._kill_locked()  # wedged or gone: its waiter reports it, it is revived
                raise ZygoteUnavailable(f"the zygote did not answer: {e}") from None
            finally:
                theirs.close()
                os.close(out_w)
        pid = int.from_bytes(reply, "big", signed=True) if len(reply) == _PID_BYTES else 0
        if pid <= 0:
            ours.close()
            os.close(out_r)
            why = os.strerror(-pid) if pid < 0 else "the zygote closed its socket"
            raise ZygoteUnavailable(f"the zygote did not fork: {why}")
        os.set_blocking(out_r, True)
        return SpawnedHost(pid=pid, sock=ours, stdio_fd=out_r)

    def _kill_locked(self) -> None:
        if self.pid is not None:
            try:
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def _wait(self, pid: int, sock: socket.socket) -> None:
        _, status = os.waitpid(pid, 0)
        with self._lock:
            if self._sock is sock:
                self._sock, self.pid, self._ready = None, None, False
            sock.close()
        if self.on_exit is not None and not self.closed:
            self.on_exit(pid, status)

    def close(self, timeout: float = 2.0) -> None:
        """End the zygote: close its socket (it exits), SIGKILL it if it lingers.

        One still loading is SIGKILLed at once: it would only notice at the end of
        its imports, and it holds nothing (its children are the root's).
        """
        self.closed = True
        with self._lock:
            sock, pid, ready = self._sock, self.pid, self._ready
            if sock is not None:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
        if pid is None:
            return
        if not ready:
            timeout = 0.0
        deadline = time.monotonic() + timeout
        while self.pid == pid and time.monotonic() < deadline:
            time.sleep(0.01)
        if self.pid == pid:
            try:
                os.killpg(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass


class Spawner:
    """Starts a node's host: forked by the zygote when it is ready, else spawned fresh.

    `spawn` and `revive` are called on the supervisor actor's thread only.

    Args:
        zygote: the zygote (already started), or None for exec only.
        log: writes one line at DN `root` (any thread).
        post_revive: hands the actor a request to call `revive` (any thread).
    """

    def __init__(
        self,
        zygote: Zygote | None,
        log: Callable[[Severity, str], None],
        post_revive: Callable[[], None],
    ) -> None:
        self.zygote = zygote
        self._log = log
        self._post_revive = post_revive
        self._first = True
        self._falling_back = False
        if zygote is not None:
            zygote.on_exit = self._zygote_ended

    def spawn(self, dn: str) -> SpawnedHost:
        """A host process for node `dn`.

        Raises:
            OSError: not even a fresh spawn was possible.
        """
        zygote = self.zygote
        if zygote is None:
            return spawn_host(dn)
        wait, self._first = (READY_WAIT if self._first else 0.0), False
        try:
            host = zygote.fork(dn, wait=wait)
        except ZygoteUnavailable as e:
            if not self._falling_back:
                self._falling_back = True
                self._log(Severity.WARNING, f"{e}; runnables start with exec until it is back")
            return spawn_host(dn)
        if self._falling_back:
            self._falling_back = False
            self._log(Severity.INFO, f"zygote back (pid {zygote.pid}): runnables are forked again")
        return host

    def revive(self) -> None:
        """Starts the zygote again if it is gone (and was not closed)."""
        zygote = self.zygote
        if zygote is None or zygote.closed or zygote.pid is not None:
            return
        try:
            pid = zygote.start()
        except OSError as e:
            self._log(Severity.ERROR, f"cannot start the zygote again: {e}")
            self._zygote_later()
            return
        self._log(Severity.INFO, f"zygote started again (pid {pid})")

    def _zygote_ended(self, pid: int, status: int) -> None:
        self._log(
            Severity.ERROR,
            f"zygote (pid {pid}) ended: {describe_wait_status(status)}; "
            "runnables start with exec until it is back",
        )
        self._falling_back = True
        self._zygote_later()

    def _zygote_later(self) -> None:
        timer = threading.Timer(RESPAWN_DELAY, self._post_revive)
        timer.daemon = True
        timer.start()
