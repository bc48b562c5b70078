"""The zygote: one preloaded, single-threaded process that forks runnables' hosts.

Started by the root as `python -m actors.supervisor.process.zygote --parent PID
--preload MODULE...` with a SOCK_SEQPACKET socket on `LINK_FD`. It imports the
process host, says `ZYGOTE_READY`, and then serves one request per datagram;
while no request is pending it imports the runnables' modules one by one (grpc
among them: importing it opens no channel and starts no thread). Before each fork,
and once all is loaded, it freezes its heap (`gc.freeze()`, so that a child's
garbage collector never writes to the pages it shares with the zygote):

    root -> zygote   the DN (UTF-8), with two descriptors: the host's end of
                     its link socket and the write end of its stdout/stderr pipe
    zygote -> root   the child's pid (`!q`), or minus an errno if it could not fork

It forks with `clone(CLONE_PARENT)`: the child's parent is the root itself, not
the zygote. So the root reaps it with `waitpid` as it reaps a host it spawned
(the same death detection, the same wait status), `PR_SET_PDEATHSIG` in the child
names the root (the thread that spawned the zygote), and the zygote's own death
takes no runnable with it. The zygote is never threaded, so nothing forks a
threaded process; it checks that before each fork and refuses otherwise.

What a forked child gets is what a spawned host gets (`runtime.spawn`): a
process group of its own, death with the root, stdin on /dev/null, stdout and
stderr on its pipe, its link on `LINK_FD` and no other descriptor, the signal
dispositions and mask the zygote started with (those of a fresh interpreter),
the root's environment as the zygote got it, and a random seed of its own.
Then it runs `host.serve` as a spawned host does. A zygote whose root is gone,
or whose socket closes, exits.
"""

from __future__ import annotations

import argparse
import ctypes
import errno
import gc
import importlib
import os
import platform
import random
import select
import signal
import socket
import struct
import sys
import traceback
from collections.abc import Callable
from types import FrameType
from typing import NoReturn

from actors.supervisor.process.host import die_with_parent, serve
from actors.supervisor.process.protocol import EXIT_FORK_SETUP, LINK_FD, ZYGOTE_READY

__all__ = ["clone_parent", "main", "PID_REPLY"]

#: How the zygote answers a request: the child's pid, or minus an errno.
PID_REPLY = struct.Struct("!q")

_CLONE_PARENT = 0x00008000
#: clone's syscall number where the zygote knows it (its arguments here are all 0
#: but the flags, so their order, which differs between the two, does not matter).
_SYS_CLONE = {"x86_64": 56, "aarch64": 220}
_MAX_REQUEST = 4096

Handler = Callable[[int, FrameType | None], object] | int | None


def clone_parent() -> int:
    """Fork this single-threaded process as a sibling: the child's parent is ours.

    Returns:
        0 in the child, the child's pid in the parent.

    Raises:
        OSError: the machine has no clone this knows, or the kernel refused.
    """
    number = _SYS_CLONE.get(platform.machine())
    if number is None:
        raise OSError(errno.ENOSYS, f"no clone syscall number known for {platform.machine()}")
    libc = ctypes.PyDLL(None, use_errno=True)  # PyDLL: the GIL stays held
    libc.syscall.restype = ctypes.c_long
    api = ctypes.pythonapi
    # What os.fork does around fork(): locks taken, at-fork hooks run (random
    # reseeds in the child), the interpreter's thread state made whole again.
    api.PyOS_BeforeFork()
    pid = libc.syscall(
        ctypes.c_long(number),
        ctypes.c_long(_CLONE_PARENT | signal.SIGCHLD),
        ctypes.c_long(0),
        ctypes.c_long(0),
        ctypes.c_long(0),
        ctypes.c_long(0),
    )
    if pid == 0:
        api.PyOS_AfterFork_Child()
        return 0
    api.PyOS_AfterFork_Parent()
    if pid < 0:
        code = ctypes.get_errno()
        raise OSError(code, f"clone: {os.strerror(code)}")
    return int(pid)


def _needs(preload: list[str], dn: str) -> int:
    """How many entries of `preload` to load before forking `dn`: up to its last own."""
    mine = [i for i, entry in enumerate(preload) if entry.partition("@")[2] == dn]
    return mine[-1] + 1 if mine else 0


def _threads() -> int:
    return len(os.listdir("/proc/self/task"))


class _Zygote:
    """The serving loop and what each child must get back."""

    def __init__(self, parent: int, sock: socket.socket) -> None:
        self._parent = parent
        self._sock = sock
        # A fresh interpreter's dispositions and mask, before any module loaded.
        self._dispositions: dict[int, Handler] = {}
        for signum in signal.valid_signals():
            if signum in (signal.SIGKILL, signal.SIGSTOP):
                continue
            self._dispositions[signum] = signal.getsignal(signum)
        self._mask = signal.pthread_sigmask(signal.SIG_BLOCK, [])

    def serve(self, preload: list[str]) -> int:
        """Fork on request; load `preload` one module at a time while none is pending.

        A host forked before its modules were loaded here imports them itself, as a
        spawned one does: the zygote is ready as soon as the host can run, and the
        agent's first starts never wait for modules they do not need yet. An entry
        `MODULE@DN` is one that node needs: a request for DN first loads the list up
        to its last such entry, so that its host shares them instead of loading them
        again on its own (`_needs`). Once all are loaded the heap is frozen.
        """
        while True:
            if preload and not select.select([self._sock], [], [], 0)[0]:
                if not self._load(preload):
                    return 1
                continue
            try:
                data, fds, _flags, _addr = socket.recv_fds(self._sock, _MAX_REQUEST, 2)
            except InterruptedError:
                continue
            if not data:
                return 0  # the root closed its end: nothing more to fork
            if len(fds) != 2:
                for fd in fds:
                    os.close(fd)
                self._sock.send(PID_REPLY.pack(-errno.EINVAL))
                continue
            link_fd, out_fd = fds
            dn = data.decode("utf-8", "replace")
            for _ in range(_needs(preload, dn)):
                if not self._load(preload):
                    os.close(link_fd)
                    os.close(out_fd)
                    return 1
            try:
                pid = self._fork(dn, link_fd, out_fd)
            except OSError as e:
                pid = -(e.errno or errno.EIO)
                print(f"node-containerd zygote: cannot fork: {e}", file=sys.stderr)
            finally:
                os.close(link_fd)
                os.close(out_fd)
            self._sock.send(PID_REPLY.pack(pid))

    def _load(self, preload: list[str]) -> bool:
        """Import the next entry of `preload`; False if it started a thread (stop)."""
        importlib.import_module(preload.pop(0).partition("@")[0])
        if _threads() != 1:
            print(
                f"node-containerd zygote: a preloaded module started a thread "
                f"({_threads()} threads): not forking",
                file=sys.stderr,
            )
            return False
        if not preload:
            gc.collect()
            gc.freeze()
        return True

    def _fork(self, dn: str, link_fd: int, out_fd: int) -> int:
        if _threads() != 1:
            raise OSError(errno.EDEADLK, "the zygote has more than one thread: forking is unsafe")
        # What is loaded so far is the child's to share: its collector must not write
        # to it (the whole preload is frozen again, after a collection, once it is in).
        gc.freeze()
        settled_r, settled_w = os.pipe()
        try:
            pid = clone_parent()
            if pid == 0:
                os.close(settled_r)
                self._become_host(dn, link_fd, out_fd, settled_w)
            os.close(settled_w)
            settled_w = -1
            # Answer once the child has its process group (or has died): the root may
            # kill that group the moment it has the pid.
            os.read(settled_r, 1)
        finally:
            os.close(settled_r)
            if settled_w >= 0:
                os.close(settled_w)
        return pid

    def _become_host(self, dn: str, link_fd: int, out_fd: int, settled: int) -> NoReturn:
        """In the child: become what `runtime.spawn` makes, then run the node."""
        try:
            os.setpgid(0, 0)
            die_with_parent(self._parent)
            os.write(settled, b"s")
            self._sock.detach()  # its fd, LINK_FD, is replaced by the link below
            null = os.open(os.devnull, os.O_RDONLY)
            os.dup2(null, 0)
            os.dup2(out_fd, 1)
            os.dup2(out_fd, 2)
            os.dup2(link_fd, LINK_FD)
            os.closerange(LINK_FD + 1, os.sysconf("SC_OPEN_MAX"))
            for signum, handler in self._dispositions.items():
                if handler is not None and signal.getsignal(signum) != handler:
                    signal.signal(signum, handler)
            signal.pthread_sigmask(signal.SIG_SETMASK, self._mask)
            random.seed()
            sys.argv = [sys.argv[0], "--dn", dn]
        except BaseException:  # noqa: BLE001 - whatever it was, this child cannot run
            traceback.print_exc()
            sys.stderr.flush()
            os._exit(EXIT_FORK_SETUP)
        serve(dn)


def main(argv: list[str] | None = None) -> int:
    """Entry point of `python -m actors.supervisor.process.zygote`."""
    parser = argparse.ArgumentParser(prog="node-containerd-zygote", description=__doc__)
    parser.add_argument("--parent", type=int, required=True, help="pid of the root")
    parser.add_argument(
        "--preload",
        action="append",
        default=[],
        help="a module the runnables need; MODULE@DN: node DN's fork waits for it",
    )
    args = parser.parse_args(argv)
    die_with_parent(args.parent)
    sock = socket.socket(fileno=LINK_FD)
    zygote = _Zygote(args.parent, sock)
    try:
        sock.send(ZYGOTE_READY)
        return zygote.serve(list(args.preload))
    except (BrokenPipeError, ConnectionResetError):
        return 0  # the root closed its end: nothing more to fork


if __name__ == "__main__":
    sys.exit(main())
