"""The containerd OS process: spawn it, read its output, signal it, see it exit.

`DaemonProcess` is the I/O half of `root.containerd`; the decisions stay in
`ContainerdProcessActor`. Rules:

* The spawn happens in a dedicated thread that then waits for the process. The
  parent-death signal (`setpriv --pdeathsig KILL`, see `spec`) is tied to the
  *thread* that forked, so this thread must live exactly as long as containerd —
  which a thread that spawns and then waits does by construction.
* containerd stays in the caller's process group: when the supervisor SIGKILLs
  the group after the grace period, containerd goes with it.
* stdout and stderr share one pipe (their lines stay in order), read 64 KiB at a
  time straight into the sink; the sink is flushed when the pipe closes.
* Signals go through a pidfd, so a pid recycled after the exit is never hit.
* Every event is reported by a callback, in a helper thread, in this order:
  `on_spawned(pid)` or `on_spawn_failed(reason)`; later `on_exited(returncode)`;
  `on_output_closed()` any time after the process exists (its reader thread
  starts before `on_spawned` is called, so it may even come first).
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import IO

from actors.containerd.node import RawSink

__all__ = ["READ_SIZE", "DaemonProcess"]

#: Bytes per read of containerd's output.
READ_SIZE = 64 * 1024


class DaemonProcess:
    """One spawn of containerd. Thread-safe; callbacks run in helper threads.

    Args:
        argv: the command line.
        env: the whole environment.
        sink: where stdout and stderr go.
        on_spawned: called with the pid once the process exists.
        on_spawn_failed: called with the OS error's text if it could not be started.
        on_exited: called with `Popen.returncode` once it has exited and been reaped.
        on_output_closed: called once its output pipe reached end of file.
    """

    def __init__(
        self,
        argv: Sequence[str],
        env: Mapping[str, str],
        sink: RawSink,
        *,
        on_spawned: Callable[[int], None],
        on_spawn_failed: Callable[[str], None],
        on_exited: Callable[[int], None],
        on_output_closed: Callable[[], None],
    ) -> None:
        self._argv = list(argv)
        self._env = dict(env)
        self._sink = sink
        self._on_spawned = on_spawned
        self._on_spawn_failed = on_spawn_failed
        self._on_exited = on_exited
        self._on_output_closed = on_output_closed
        self._lock = threading.Lock()
        self._pidfd: int | None = None
        self._exited = False

    def start(self) -> None:
        """Spawns the process from a new thread that then waits for it."""
        threading.Thread(target=self._spawn_and_wait, name="nc-containerd", daemon=True).start()

    def send_signal(self, sig: signal.Signals) -> bool:
        """Sends `sig`; False when the process is gone (or was never started)."""
        with self._lock:
            if self._pidfd is None or self._exited:
                return False
            try:
                signal.pidfd_send_signal(self._pidfd, sig)
            except ProcessLookupError:
                return False
            return True

    def close(self) -> None:
        """Releases the pidfd. Call it once the process has exited."""
        with self._lock:
            if self._pidfd is not None:
                os.close(self._pidfd)
                self._pidfd = None

    def _spawn_and_wait(self) -> None:
        try:
            proc = subprocess.Popen(
                self._argv,
                env=self._env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                close_fds=True,
            )
        except OSError as e:
            self._on_spawn_failed(str(e))
            return
        assert proc.stdout is not None
        with self._lock:
            self._pidfd = os.pidfd_open(proc.pid)  # valid: only this thread reaps it
        threading.Thread(
            target=self._read_output, args=(proc.stdout,), name="nc-output", daemon=True
        ).start()
        self._on_spawned(proc.pid)
        returncode = proc.wait()
        with self._lock:
            self._exited = True
        self._on_exited(returncode)

    def _read_output(self, pipe: IO[bytes]) -> None:
        fd = pipe.fileno()
        try:
            while chunk := os.read(fd, READ_SIZE):
                self._sink.write(chunk)
        finally:
            self._sink.flush()
            pipe.close()
            self._on_output_closed()
