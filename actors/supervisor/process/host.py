"""The process host: runs one runnable in a fresh process.

Started by the root as `python -m actors.supervisor.process.host --parent PID --dn DN`
with the root's end of a stream socket on fd 3, stdout and stderr on a pipe the
root reads into the node's raw log, and in a process group of its own.

Life of a host:
    1. ask the kernel for SIGKILL when the root dies (PR_SET_PDEATHSIG), then
       check the root did not die before that (getppid); close every descriptor
       but stdio and the link (whatever the root left inheritable);
    2. send Hello; read Start (DN, generation, target, args, heartbeat);
    3. route `logging` to the node's DN, start the link's reader (which also
       sends the heartbeats);
    4. import the target and call it in the main thread;
    5. report how it ended (Exit ok / canceled / error), flush logs, exit.
"""

from __future__ import annotations

import argparse
import ctypes
import importlib
import logging
import os
import signal
import socket
import sys
import traceback
from typing import Any, NoReturn

from actors.logtree.parse.line import ParseFormat
from actors.supervisor.core.states import ExitKind
from actors.supervisor.process.api import Canceled, Context
from actors.supervisor.process.childlog import LinkLogHandler
from actors.supervisor.process.link import ChildLink
from actors.supervisor.process.protocol import EXIT_ORPHANED, LINK_FD
from messages.wire import PROTOCOL_VERSION, Exit, Hello

__all__ = ["die_with_parent", "load_target", "main", "serve"]

_PR_SET_PDEATHSIG = 1


def die_with_parent(parent: int) -> None:
    """SIGKILL this process when its parent dies; exit now if it already has."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    if os.getppid() != parent:
        os._exit(EXIT_ORPHANED)


def load_target(target: str) -> Any:
    """Import `module:function` and return the function."""
    module_name, _, attr = target.partition(":")
    module = importlib.import_module(module_name)
    fn = getattr(module, attr, None)
    if fn is None or not callable(fn):
        raise ImportError(f"runnable target {target!r}: {module_name} has no function {attr!r}")
    return fn


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def run_host(link: ChildLink, dn: str) -> int:
    """Run the node's runnable over `link`; return the process exit status."""
    link.send(Hello(version=PROTOCOL_VERSION, dn=dn, pid=os.getpid()))
    start = link.read_start()
    ctx = Context(start.dn, start.generation, link, ParseFormat(start.raw_format))
    link.set_cancel_handler(ctx.cancel)
    root_logger = logging.getLogger()
    root_logger.handlers[:] = [LinkLogHandler(link)]
    root_logger.setLevel(logging.INFO)
    interval = start.heartbeat_interval
    link.start_reader(float(interval) if interval else None, ctx.making_progress)
    log = logging.getLogger("nodecontainerd.host")
    try:
        fn = load_target(start.target)
        fn(ctx, **start.args)
    except Canceled:
        kind, error = ExitKind.CANCELED, None
    except BaseException as e:  # noqa: BLE001 - any failure of the runnable is reported
        log.error("runnable %s raised:\n%s", start.target, traceback.format_exc().rstrip())
        kind, error = ExitKind.ERROR, _describe(e)
    else:
        if ctx.cancelled.is_set() and not ctx.signalled_done:
            kind, error = ExitKind.CANCELED, None
        else:
            kind, error = ExitKind.OK, None
    if ctx._raw is not None:
        ctx._raw.close()
    link.send(Exit.of(kind, error))
    link.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of `python -m actors.supervisor.process.host`."""
    parser = argparse.ArgumentParser(prog="node-containerd-host", description=__doc__)
    parser.add_argument("--parent", type=int, required=True, help="pid of the root")
    parser.add_argument("--dn", required=True, help="the DN this process runs")
    args = parser.parse_args(argv)
    die_with_parent(args.parent)
    # posix_spawn passes on every descriptor the root left inheritable: keep only ours.
    os.closerange(LINK_FD + 1, os.sysconf("SC_OPEN_MAX"))
    serve(args.dn)


def serve(dn: str) -> NoReturn:
    """Run node `dn` over the link on `LINK_FD`, then end this process.

    The one way a runnable's process runs, whether it was spawned fresh (`main`)
    or forked by the zygote (`actors.supervisor.process.zygote`).
    """
    link = ChildLink(socket.socket(fileno=LINK_FD))
    try:
        status = run_host(link, dn)
    except BaseException:
        traceback.print_exc()
        status = 70
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)


if __name__ == "__main__":
    sys.exit(main())
