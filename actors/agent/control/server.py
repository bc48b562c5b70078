"""The control socket: gRPC over a unix socket, serving status, logs and restarts.

`ControlServer` serves the `nodecontainerd.control.v1.Control` service
(`messages/control/control.proto`) for a backend: anything with `snapshot()`,
`restart(dn)` and `log_tree` — the running `Supervisor`, or a test double.
The CLI side (`node-containerd status|logs|restart`) is `actors.agent.control.client`.

Rules:
    * The socket file is mode 0600 from its first moment: it is bound inside a fresh
      private (0700) directory next to its final path, chmod-ed, then renamed into
      place, so it never appears at its path with a wider mode and a stale file is
      replaced atomically. Only if that detour would exceed the unix socket path limit
      is it bound in place under `umask 0o177` (the umask is process-wide, so this is
      the fallback, not the rule).
    * A stale socket file (nobody listens: connect is refused) is replaced. A socket
      someone answers on is never taken over: `start` raises `ControlError`, naming
      the other agent's pid when it is one.
    * On `stop`, the socket file is removed only if it is still ours (same inode).
    * A slow Logs reader never slows writers: each follow stream reads the log tree
      through a bounded `LogReader`; entries that do not fit are dropped for that
      reader alone, and an `ENTRY_KIND_MISSED` message with the count is sent
      exactly where they went missing.
    * A follow stream ends cleanly (status OK) when the server stops, and its reader
      is closed when the client goes away.
    * **No client can take the socket from others.** Every Logs call is counted:
      at most `max_followers` follow streams and `max_readers` backlog reads at
      once, each beyond refused at once with RESOURCE_EXHAUSTED saying the limit;
      the worker pool has room for both and `_SPARE_WORKERS` more, so Hello,
      Status and Restart (short unary calls) always find a worker. And every Logs
      call is bounded in time where it can block: a message the client has not
      taken within `stall_timeout` seconds (a client that stopped reading) ends
      the call (CANCELLED) and frees its worker and its slot, found by a watchdog
      thread that wakes about once a second.
    * Monotonic times of the supervisor (`NodeStatus.since`) are sent as wall-clock
      seconds since the epoch, converted once per reply.
    * ReportCheck hands what `node-containerd check` measured to the agent's
      metrics (`observe`; none when metrics are off: `recorded` false). A value the
      histogram refuses (a negative time, a new handler beyond its series bound)
      fails the call with INVALID_ARGUMENT and records nothing of it.
    * Beside the socket, `<socket>.plain` (`plain_server`) answers `status`, `logs`
      without following, `restart` and `import` in plain JSON, through this service's
      own methods (the same data, the same limits), so the CLI need not load grpc. It
      starts and stops with this server, under the same rules (mode 0600, never taking
      over a live socket); it is left out when its path would be too long.

gRPC handlers run on the server's worker threads; `start` and `stop` on the caller's.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent import futures
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, Self

import grpc

from actors.agent.control.wire import (
    PRODUCT,
    PROTOCOL_VERSION,
    NodeStatusLike,
    SocketState,
    agent_version,
    channel_target,
    entry_to_proto,
    hello,
    probe_socket,
    status_to_proto,
)
from actors.agent.histograms import CHECK_SANDBOX_START
from actors.logtree import (
    DEFAULT_STREAM_BUFFER,
    LogReader,
    LogTree,
    LogTreeError,
    Severity,
    in_subtree,
    validate_dn,
)
from actors.supervisor.core.errors import InvalidSeverity, SupervisionError, UnknownNode
from actors.supervisor.runtime import clock
from messages.control import control_pb2 as pb
from messages.control import control_pb2_grpc as pb_grpc

if TYPE_CHECKING:
    from actors.agent.control.plain_server import PlainServer

__all__ = ["UNIX_PATH_MAX", "ControlBackend", "ControlError", "ControlServer"]

#: Longest unix socket path in bytes (`sun_path` is 108 bytes with its NUL).
UNIX_PATH_MAX = 107
#: Entries sent per wake-up of a follow stream.
_BATCH = 256
#: Worker threads kept free for calls other than Logs streams.
_SPARE_WORKERS = 8
#: Seconds between the stall watchdog's looks at the streams.
_WATCHDOG_PERIOD = 1.0

_umask_lock = threading.Lock()


class ControlError(Exception):
    """The control socket cannot be served (path in use, not a socket, bind failed)."""


class ControlBackend(Protocol):
    """What the control server serves; `actors.supervisor.runtime.Supervisor` is one.

    `snapshot` and `restart` are called from gRPC worker threads.
    """

    @property
    def log_tree(self) -> LogTree: ...

    def snapshot(self) -> Sequence[NodeStatusLike]:
        """Every node's status in tree order; `since` in monotonic seconds."""
        ...

    def restart(self, dn: str) -> None:
        """Cancels `dn`'s subtree so it restarts now; raises `SupervisionError`."""
        ...


# ---------------------------------------------------------------- the service


@dataclass(frozen=True, slots=True)
class _LogsQuery:
    """A validated LogsRequest, as `LogTree.read` arguments."""

    dn: str
    subtree: bool
    backlog: int | None
    follow: bool
    leveled: bool
    raw: bool
    min_severity: Severity
    since: float | None
    fields: dict[str, str] | None


def _logs_query(request: pb.LogsRequest) -> _LogsQuery:
    """Checks a LogsRequest; raises `LogTreeError` or `InvalidSeverity` naming the bad value."""
    which = request.WhichOneof("backlog")
    backlog: int | None = 0
    if which == "backlog_count":
        backlog = request.backlog_count
    elif which == "backlog_all" and request.backlog_all:
        backlog = None
    dn = "" if request.subtree and request.dn == "" else validate_dn(request.dn)
    kinds = request.kinds
    if kinds not in (pb.KIND_FILTER_ALL, pb.KIND_FILTER_LEVELED, pb.KIND_FILTER_RAW):
        raise LogTreeError(f"kind filter {kinds!r} is invalid")
    min_severity = Severity.DEBUG
    if request.HasField("min_severity"):
        min_severity = Severity.from_proto(request.min_severity)
    since = request.since if request.HasField("since") else None
    if since is not None and since != since:
        raise LogTreeError("since nan is invalid")
    return _LogsQuery(
        dn=dn,
        subtree=request.subtree,
        backlog=backlog,
        follow=request.follow,
        leveled=kinds != pb.KIND_FILTER_RAW,
        raw=kinds != pb.KIND_FILTER_LEVELED,
        min_severity=min_severity,
        since=since,
        fields=dict(request.field_prefixes) or None,
    )


class _Stream:
    """One Logs call in progress: since when the message it sent waits for the client."""

    __slots__ = ("context", "waiting_since")

    def __init__(self, context: grpc.ServicerContext) -> None:
        #: The call's context (`cancel` ends it).
        self.context = context
        #: Monotonic seconds since a message was handed to gRPC and not yet taken by the
        #: client; None while the stream waits for entries or computes.
        self.waiting_since: float | None = None


#: Records one observation of a histogram: (name, value, labels); raises ValueError
#: or TypeError for one it refuses.
Observe = Callable[[str, float, Mapping[str, str]], None]


class _Servicer(pb_grpc.ControlServicer):
    """The Control service over a backend. Methods run on gRPC worker threads."""

    def __init__(
        self,
        backend: ControlBackend,
        max_followers: int,
        max_readers: int,
        buffer: int,
        observe: Observe | None = None,
    ) -> None:
        self._backend = backend
        self._observe = observe
        self._buffer = buffer
        self._max_followers = max_followers
        self._followers = threading.BoundedSemaphore(max_followers)
        self._max_readers = max_readers
        self._backlog_readers = threading.BoundedSemaphore(max_readers)
        self._lock = threading.Lock()
        self._readers: set[LogReader] = set()
        self._streams: set[_Stream] = set()
        self._stopping = False

    def cancel_stalled(self, stall_timeout: float) -> int:
        """Ends every Logs call whose client has not taken a message for `stall_timeout` s.

        Returns:
            How many calls it ended.
        """
        now = clock.monotonic()
        with self._lock:
            stalled = [
                s
                for s in self._streams
                if s.waiting_since is not None and now - s.waiting_since >= stall_timeout
            ]
        for stream in stalled:
            stream.context.cancel()
        return len(stalled)

    @property
    def open_readers(self) -> int:
        """Log readers in use by Logs calls right now."""
        with self._lock:
            return len(self._readers)

    def close_streams(self) -> None:
        """Ends every follow stream (they finish with status OK) and refuses new ones."""
        with self._lock:
            self._stopping = True
            readers = list(self._readers)
        for reader in readers:
            reader.close()

    def Hello(self, request: pb.HelloRequest, context: grpc.ServicerContext) -> pb.HelloReply:
        return pb.HelloReply(
            product=PRODUCT, version=agent_version(), protocol=PROTOCOL_VERSION, pid=os.getpid()
        )

    def Status(self, request: pb.StatusRequest, context: grpc.ServicerContext) -> pb.StatusReply:
        nodes = self._snapshot(context)
        wall = clock.wall()
        offset = wall - clock.monotonic()
        return pb.StatusReply(nodes=[status_to_proto(n, offset) for n in nodes], now=wall)

    def Restart(self, request: pb.RestartRequest, context: grpc.ServicerContext) -> pb.RestartReply:
        dn = request.dn
        try:
            validate_dn(dn)
        except LogTreeError as e:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(e))
        before = [n.dn for n in self._snapshot(context) if in_subtree(n.dn, dn)]
        try:
            self._backend.restart(dn)
        except UnknownNode as e:
            context.abort(grpc.StatusCode.NOT_FOUND, str(e))
        except SupervisionError as e:
            context.abort(grpc.StatusCode.FAILED_PRECONDITION, str(e))
        except Exception as e:  # noqa: BLE001 - the supervisor's failure, told to the client
            context.abort(grpc.StatusCode.UNAVAILABLE, f"supervisor did not restart {dn!r}: {e}")
        return pb.RestartReply(cancelled=before or [dn])

    def ReportCheck(
        self, request: pb.ReportCheckRequest, context: grpc.ServicerContext
    ) -> pb.ReportCheckReply:
        if self._observe is None:
            return pb.ReportCheckReply(recorded=False)
        for start in request.sandbox_starts:
            try:
                self._observe(CHECK_SANDBOX_START, start.seconds, {"handler": start.handler})
            except (ValueError, TypeError) as e:
                context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(e))
        return pb.ReportCheckReply(recorded=True)

    def Logs(self, request: pb.LogsRequest, context: grpc.ServicerContext) -> Iterator[pb.LogEntry]:
        try:
            query = _logs_query(request)
        except (LogTreeError, InvalidSeverity) as e:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(e))
        if query.dn and not self._known(query, context):
            context.abort(grpc.StatusCode.NOT_FOUND, f"no node and no logs at dn {query.dn!r}")
        slots = self._followers if query.follow else self._backlog_readers
        if not slots.acquire(blocking=False):
            what, most = (
                ("followers", self._max_followers)
                if query.follow
                else ("readers", self._max_readers)
            )
            context.abort(
                grpc.StatusCode.RESOURCE_EXHAUSTED, f"too many log {what}: at most {most} at once"
            )
        stream = _Stream(context)
        with self._lock:
            self._streams.add(stream)
        try:
            reader = self._open(query)
            try:
                for message in self._send(reader, context):
                    stream.waiting_since = clock.monotonic()
                    yield message
                    stream.waiting_since = None
            finally:
                reader.close()
                with self._lock:
                    self._readers.discard(reader)
        finally:
            with self._lock:
                self._streams.discard(stream)
            slots.release()

    def _open(self, query: _LogsQuery) -> LogReader:
        reader = self._backend.log_tree.read(
            query.dn,
            subtree=query.subtree,
            backlog=query.backlog,
            stream=query.follow,
            leveled=query.leveled,
            raw=query.raw,
            min_severity=query.min_severity,
            buffer=self._buffer,
            since=query.since,
            fields=query.fields,
        )
        with self._lock:
            self._readers.add(reader)
            if self._stopping:
                reader.close()
        return reader

    def _send(self, reader: LogReader, context: grpc.ServicerContext) -> Iterator[pb.LogEntry]:
        if reader.streaming and not context.add_callback(reader.close):
            reader.close()  # the call already ended
        for entry in reader.backlog:
            yield entry_to_proto(entry)
        if not reader.streaming:
            return
        while batch := reader.get_many(_BATCH):
            for entry in batch:
                yield entry_to_proto(entry)
            # get_many stops a batch at a gap, so the gap lies right after its last entry.
            missed = reader.take_gap()
            if missed:
                yield pb.LogEntry(kind=pb.ENTRY_KIND_MISSED, missed=missed)

    def _known(self, query: _LogsQuery, context: grpc.ServicerContext) -> bool:
        dns = [n.dn for n in self._snapshot(context)] + self._backend.log_tree.dns()
        if query.subtree:
            return any(in_subtree(d, query.dn) for d in dns)
        return query.dn in dns

    def _snapshot(self, context: grpc.ServicerContext) -> Sequence[NodeStatusLike]:
        try:
            return self._backend.snapshot()
        except Exception as e:  # told to the client as UNAVAILABLE
            context.abort(grpc.StatusCode.UNAVAILABLE, f"supervisor did not answer: {e}")
            raise  # unreachable: abort raises


# ---------------------------------------------------------------- the server


class ControlServer:
    """Serves the control service on a unix socket.

    Args:
        socket_path: where the socket file goes; its directory is created (0700)
            if missing.
        backend: what to serve (see `ControlBackend`).
        max_followers: most Logs follow streams at once; more are refused with
            RESOURCE_EXHAUSTED.
        max_readers: most Logs backlog reads (not following) at once; more are
            refused with RESOURCE_EXHAUSTED.
        stream_buffer: entries a follow stream may have queued before it misses some.
        stall_timeout: seconds a Logs call may wait for its client to take a message
            before it is ended.
        observe: records a histogram observation (`Metrics.observe`) for ReportCheck;
            None when metrics are off.
        containerd_address: the agent's containerd, into which the plain socket's
            `import` imports; None: the CLI imports by itself.
    """

    def __init__(
        self,
        socket_path: str | os.PathLike[str],
        backend: ControlBackend,
        *,
        max_followers: int = 16,
        max_readers: int = 16,
        stream_buffer: int = DEFAULT_STREAM_BUFFER,
        stall_timeout: float = 60.0,
        observe: Observe | None = None,
        containerd_address: str | None = None,
    ) -> None:
        self.path = Path(os.path.abspath(os.fspath(socket_path)))
        self._servicer = _Servicer(backend, max_followers, max_readers, stream_buffer, observe)
        self._workers = max_followers + max_readers + _SPARE_WORKERS
        self._stall_timeout = stall_timeout
        self._watchdog: threading.Thread | None = None
        self._stop_watchdog = threading.Event()
        self._server: grpc.Server | None = None
        self._inode: tuple[int, int] | None = None
        self._plain: PlainServer | None = None
        self._containerd_address = containerd_address

    def start(self) -> None:
        """Binds the socket (mode 0600) and starts serving.

        Raises:
            ControlError: another program (or agent) answers on the path, the path is
                not a socket, or binding failed.
        """
        if self._server is not None:
            raise ControlError(f"control socket {str(self.path)!r} is already served")
        self._check_free()
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        server = grpc.server(
            futures.ThreadPoolExecutor(self._workers, thread_name_prefix="nc-control")
        )
        pb_grpc.add_ControlServicer_to_server(self._servicer, server)
        try:
            self._bind(server)
        except BaseException:
            server.stop(None)
            raise
        self._server = server
        try:
            self._start_plain()
        except BaseException:
            self.stop(None)
            raise
        self._stop_watchdog.clear()
        self._watchdog = threading.Thread(
            target=self._watch_stalls, name="nc-control-stalls", daemon=True
        )
        self._watchdog.start()

    def _watch_stalls(self) -> None:
        """The watchdog's thread: ends Logs calls whose client stopped reading."""
        period = min(_WATCHDOG_PERIOD, self._stall_timeout / 2)
        while not self._stop_watchdog.wait(period):
            self._servicer.cancel_stalled(self._stall_timeout)

    def _start_plain(self) -> None:
        """Serves the plain socket too (`actors.agent.control.plain`), if its path fits."""
        from actors.agent.control.plain import plain_path
        from actors.agent.control.plain_server import PlainServer

        path = plain_path(os.fspath(self.path))
        # Bound as `<dir>/.XXXXXXXX/s`, then renamed: both names must fit.
        detour = len(os.fsencode(os.fspath(self.path.parent))) + len("/.XXXXXXXX/s")
        if max(len(os.fsencode(path)), detour) > UNIX_PATH_MAX:
            return  # the CLI then speaks gRPC
        plain = PlainServer(path, self._servicer, containerd_address=self._containerd_address)
        plain.start()
        self._plain = plain

    def stop(self, grace: float | None = 1.0) -> None:
        """Ends follow streams, stops serving and removes the socket file if ours.

        Args:
            grace: seconds in-flight calls get to finish; None waits for them.

        Raises:
            ControlError: the socket file could not be removed (serving has stopped).
        """
        server, self._server = self._server, None
        if server is None:
            return
        self._stop_watchdog.set()
        if self._watchdog is not None:
            self._watchdog.join()
            self._watchdog = None
        plain, self._plain = self._plain, None
        if plain is not None:
            plain.stop()
        self._servicer.close_streams()
        server.stop(grace).wait()
        inode, self._inode = self._inode, None
        if inode is not None:
            try:
                st = os.stat(self.path)
                if (st.st_dev, st.st_ino) == inode:
                    os.unlink(self.path)
            except FileNotFoundError:
                pass
            except OSError as e:  # a read-only state dir: serving stopped all the same
                raise ControlError(
                    f"cannot remove the control socket {str(self.path)!r}: {e.strerror or e}"
                ) from e

    @property
    def open_readers(self) -> int:
        """Log readers in use by Logs calls right now (each follow stream holds one)."""
        return self._servicer.open_readers

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _check_free(self) -> None:
        state = probe_socket(self.path)
        where = str(self.path)
        if state is SocketState.NOT_SOCKET:
            raise ControlError(f"control socket path {where!r} exists and is not a socket")
        if state is SocketState.DENIED:
            raise ControlError(f"control socket {where!r} exists and cannot be accessed")
        if state is not SocketState.LISTENING:
            return  # missing, or stale: replaced when bound
        try:
            with grpc.insecure_channel(channel_target(self.path)) as channel:
                reply = hello(channel, timeout=2.0)
        except grpc.RpcError:
            reply = None
        if reply is not None and reply.product == PRODUCT:
            raise ControlError(
                f"another node-containerd agent (pid {reply.pid}) is already serving "
                f"control socket {where!r}"
            )
        raise ControlError(f"control socket {where!r} is in use by another program")

    def _bind(self, server: grpc.Server) -> None:
        final = os.fspath(self.path)
        private = tempfile.mkdtemp(prefix=".", dir=self.path.parent)  # mode 0700
        temp = os.path.join(private, "s")
        try:
            if len(os.fsencode(temp)) > UNIX_PATH_MAX:
                self._bind_in_place(server, final)
            else:
                _add_port(server, temp)
                os.chmod(temp, 0o600)
                server.start()
                os.rename(temp, final)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp)
            os.rmdir(private)
        st = os.stat(final)
        self._inode = (st.st_dev, st.st_ino)

    def _bind_in_place(self, server: grpc.Server, final: str) -> None:
        if len(os.fsencode(final)) > UNIX_PATH_MAX:
            raise ControlError(
                f"control socket path {final!r} is too long: at most {UNIX_PATH_MAX} bytes"
            )
        with _umask_lock:
            old = os.umask(0o177)
            try:
                _add_port(server, final)  # gRPC unlinks the stale file first
            finally:
                os.umask(old)
        os.chmod(final, 0o600)
        server.start()


def _add_port(server: grpc.Server, path: str) -> None:
    try:
        bound = server.add_insecure_port("unix:" + path)
    except RuntimeError as e:
        raise ControlError(f"cannot bind control socket {path!r}: {e}") from e
    if not bound:
        raise ControlError(f"cannot bind control socket {path!r}")
