"""Whose is a runsc line? The sandbox and container of each record of runsc's debug log.

Every runsc process of a node (each command the runc shim runs, and the sandbox and
gofer processes they start) opens the one `--debug-log` FIFO itself and writes its
glog lines there; lines of different processes interleave, line by line. A line does
not say whose it is. `RunscAttribution` reads the stream in order, as runsc wrote it,
and learns it from what runsc itself says. Pure: no I/O, no clock.

Theory of operation:

1. **A host process is its pid.** A runsc process that runs in the host's pid
   namespace writes its pid in every glog header, and no two live processes share
   one. Each starts with a banner: a line of stars, then `Args: [...]`, its command
   line, which names the container (`create ... ID`, `kill ID 9`, `boot ... ID`;
   a gofer by its `--bundle`). From then on, the pid's lines are that container's.
   A new banner under the same pid (a pid reused, or runsc's re-exec of itself)
   starts over; `Exiting with status` ends the process.
2. **Which sandbox a container is in** is learned from runsc's own lines:
   `Creating new sandbox for container, cid: X` (X is a sandbox),
   `Creating new container, cid: X, sandbox: S`,
   `Create sub-container "X" in sandbox "S"`, `{SandboxID:S ContainerID:X}`; a
   `boot` is its sandbox's. Lines a process wrote before the sandbox was known
   (its banner) get it afterwards when they are still in the same batch; the
   parser holds a banner back for the next batch to make that likely (`hold_back`).
3. **Namespaced processes all log as pid 1.** gVisor starts each gofer (and, on some
   platforms, the sandbox) in a pid namespace of its own, so "pid 1" may be any of
   them. The host process that starts one says so first (`Starting gofer: ...`,
   `Starting sandbox: ...`, with its `--bundle`), before the child can write. A
   pid-1 line is attributed only when every namespaced process that may have written
   it belongs to one sandbox:

   * its banner's `Args` names its bundle, which says exactly whose it is;
   * a line that names the ID of one of the possible writers' sandboxes (a mount
     source, a spec dump) is that sandbox's;
   * a *startup* line (the banner, the spec dump, capabilities, seccomp filters,
     the re-exec: written only before a process serves, by `STARTUP_FILES`) can
     only come from a process still starting: one whose container has not been
     started yet (`runsc start` of it has not exited 0 — a container cannot start
     before its gofer serves);
   * any other line may come from any live namespaced process; one stops counting
     once its sandbox was deleted (`runsc delete` of it exited 0).

   When the possible writers span two sandboxes, or one is of an unknown sandbox,
   the line stays unattributed.
4. **Lines that are not glog** (continuation lines of a multi-line message, raw lines
   past the parser's bounds) came in the same write as the record before them —
   runsc writes each message, all its lines, with one `write` — and are that
   record's. A Go crash (`panic: ...`) is nobody's: it has no pid.

Nothing is ever guessed: a record runsc did not tie to a container is unattributed
(no fields). The bounds: at most `MAX_KNOWN` processes, containers, bundles and
namespaced processes are remembered; the oldest are forgotten first.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from itertools import chain, compress, repeat
from itertools import count as count_from
from operator import add, getitem, itemgetter, sub
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from actors.logtree.parse.stream import Batch

__all__ = [
    "HOLD",
    "MAX_KNOWN",
    "STARTUP_FILES",
    "Attribution",
    "RunscAttribution",
    "command_container",
]

#: Most processes, containers, bundles and namespaced processes remembered.
MAX_KNOWN = 4096
#: Most entries a batch's end holds back for the next batch, from the banner of a host
#: process that has not said its sandbox yet (`RunscAttribution.hold_back`).
HOLD = 2048
#: Source files of runsc whose lines a process writes only while it starts (its banner
#: and flags, the configuration the banner lists in newer releases, the spec it reads,
#: capabilities, seccomp, the re-exec of itself).
STARTUP_FILES = frozenset(
    {"main.go", "config.go", "specutils.go", "seccomp.go", "capability.go", "cmd.go", "chroot.go"}
)

#: `(sandbox, container)`; `""` for a part not known.
Attribution = tuple[str, str]
_NOBODY: Attribution = ("", "")

#: runsc's global flags that may take their value as the next argument.
_VALUE_FLAGS = frozenset(
    {
        b"--root",
        b"--log",
        b"--log-format",
        b"--debug-log",
        b"--panic-log",
        b"--debug-log-format",
        b"--platform",
        b"--network",
        b"--user-log",
        b"--file-access",
        b"--overlay2",
        b"--log-fd",
        b"--debug-log-fd",
        b"--panic-log-fd",
    }
)
#: Subcommands whose last argument is the container ID.
_LAST_IS_ID = frozenset(
    {
        "create",
        "start",
        "run",
        "state",
        "delete",
        "wait",
        "events",
        "ps",
        "pause",
        "resume",
        "checkpoint",
        "restore",
        "update",
        "boot",
        "debug",
        "port-forward",
    }
)
#: Subcommands that name a container (a gofer by its bundle).
_SUBCOMMANDS = _LAST_IS_ID | {"kill", "exec", "gofer"}
#: A signal as `runsc kill` takes it (`9`, `SIGKILL`, `KILL`).
_SIGNAL = re.compile(rb"(?:SIG)?[A-Z0-9+-]+").fullmatch
#: The patterns of the lines that teach something (the module's points 1 to 3).
_BUNDLE = re.compile(rb" --bundle[= ]([^ \]]+)").search
_IDS = re.compile(rb"\{SandboxID:([^ }]*) ContainerID:([^ }]+)\}").search
_NEW_CONTAINER = re.compile(rb"Creating new container, cid: ([^ ,]+), sandbox: ([^ ,]+)").match
_SUB_CONTAINER = re.compile(rb'Create sub-container "([^"]+)" in sandbox "([^"]+)"').match
_NEW_SANDBOX = re.compile(rb"Creating new sandbox for container, cid: ([^ ,]+)").match
_EXIT = re.compile(rb"Exiting with status: (\d+)").match
_FIRST = itemgetter(0)
#: The first bytes of the messages that teach something, and what they teach.
_KEYS = {
    b"Args: [": "args",
    b"*******": "banner",
    b"Creatin": "creating",
    b"Create ": "sub",
    b"Load co": "load",
    b"Startin": "starting",
    b"Exiting": "exit",
}


def _prefix(head: bytes, text: int | str) -> bytes:
    """The first bytes of a glog entry's message (none for a crash entry)."""
    return head[text : text + 7] if type(text) is int else b""


def command_container(args: bytes) -> tuple[str, str, str] | None:
    """What a runsc `Args: [...]` line runs: `(program, subcommand, container ID)`.

    The ID is `""` for a gofer (it has none: see its `--bundle`). None when the
    command names no container (`runsc list`, `runsc do`), or the line was cut.
    """
    if not (args.startswith(b"[") and args.endswith(b"]")):
        return None
    argv = args[1:-1].split(b" ")
    i = 1
    while i < len(argv):
        arg = argv[i]
        if arg in _VALUE_FLAGS:
            i += 2
        elif arg.startswith(b"-"):
            i += 1
        else:
            break
    if i >= len(argv):
        return None
    sub, tail = argv[i].decode("utf-8", "replace"), argv[i + 1 :]
    program = argv[0].rsplit(b"/", 1)[-1].decode("utf-8", "replace")
    if sub == "gofer":
        return program, sub, ""
    if sub not in _SUBCOMMANDS or not tail:
        return None
    if sub == "kill" and len(tail) >= 2 and _SIGNAL(tail[-1]) and not tail[-2].startswith(b"-"):
        cid = tail[-2]
    elif sub == "exec" and not any(a.startswith(b"--process") for a in tail):
        return None
    else:
        cid = tail[-1]
    if not cid or cid.startswith(b"-"):
        return None
    return program, sub, cid.decode("utf-8", "replace")


@dataclass(slots=True)
class _Process:
    """A host process's stream (see the module's point 1)."""

    #: Its pid.
    pid: int
    #: Its container, `""` until its `Args` line.
    container: str = ""
    #: Its subcommand (`create`, `start`, `delete`, ...), `""` until known.
    command: str = ""
    #: Its sandbox, `""` until known.
    sandbox: str = ""
    #: Whether its banner is open (`Args` seen, the closing stars not yet).
    in_banner: bool = False
    #: Whether its attribution is final (its sandbox known, or nobody's on purpose).
    settled: bool = False
    #: Records of the current batch given a value without the sandbox (to fill in).
    pending: list[int] = field(default_factory=list)

    @property
    def value(self) -> Attribution:
        """Its attribution as far as known."""
        return (self.sandbox, self.container)


@dataclass(slots=True)
class _Namespaced:
    """A gofer or sandbox process that may log as pid 1 (the module's point 3)."""

    #: Its sandbox, `""` when not known.
    sandbox: str
    #: Its container.
    container: str
    #: True until its container was started.
    starting: bool = True


def _bounded(table: dict[object, object]) -> None:
    """Forgets the oldest entries of `table` beyond `MAX_KNOWN`."""
    while len(table) > MAX_KNOWN:
        del table[next(iter(table))]


class RunscAttribution:
    """Attributes the records of a runsc debug log, batch after batch. Not thread-safe.

    `annotate` is the `StreamParser`'s `attribute` hook: it sees each record once,
    in stream order, with its continuation lines complete; `hold_back` its `hold`
    hook.
    """

    def __init__(self) -> None:
        #: pid -> the host process that has it now (point 1).
        self._processes: dict[int, _Process] = {}
        #: container -> its sandbox, as runsc said (point 2).
        self._sandbox_of: dict[str, str] = {}
        #: bundle directory -> `(sandbox, container, role)` of the namespaced process
        #: started for it (`Starting gofer: ... --bundle ...`, point 3).
        self._bundles: dict[str, tuple[str, str, str]] = {}
        #: `(role, container)` -> a namespaced process that may write pid-1 lines.
        self._namespaced: dict[tuple[str, str], _Namespaced] = {}
        #: pid -> the attribution number of a host process whose lines are all alike.
        self._settled: dict[int, int] = {}
        #: Attribution -> its number; `_rows` the other way round.
        self._numbers: dict[Attribution, int] = {_NOBODY: 0}
        self._rows: list[Attribution] = [_NOBODY]
        #: The attribution number of the last record (for raw records after it).
        self._last = 0
        #: startup? -> the one writer of such pid-1 lines (see `_writers`), while
        #: `_namespaced` is unchanged.
        self._sole: dict[bool, tuple[Attribution, bool]] = {}
        #: The processes with records of the current batch waiting for their sandbox.
        self._waiting: list[_Process] = []
        #: The current batch's entries' attribution numbers.
        self._values: list[int] = []

    def hold_back(self, batch: Batch, kept: int = 0) -> int:
        """How many of `batch`'s last records to keep for the next batch (`StreamParser`).

        A host process's banner comes before the line that says its sandbox (runsc
        20240729 lists its whole configuration there, some 85 lines). When a process
        that began its banner in this batch has not said its sandbox by the batch's
        end, the records from that banner on wait for the next batch, so that they
        get the sandbox too; not when that is more than `HOLD` entries back. The next
        batch, or a pause in the stream (`close_entry`), sends them. Reads the state,
        changes nothing. `kept`: the last entries stay for the next batch anyway.
        """
        count = len(batch.codes) - kept
        heads, texts, table, origins = batch.heads, batch.texts, batch.origin_table, batch.origins
        waiting: dict[int, int] = {}  # pid -> the entry its banner began at
        for e in range(max(0, count - HOLD), count):
            text = texts[e]
            if type(text) is not int:
                continue
            key = _KEYS.get(heads[e][text : text + 7])
            pid = table[origins[e]][2]
            if key is None or pid < 2:
                continue
            if key == "banner":
                if pid not in waiting and not self._in_banner(pid):
                    waiting[pid] = e
            elif pid in waiting and self._says_sandbox(key, heads[e][text:]):
                del waiting[pid]
        if not waiting:
            return 0
        first = min(waiting.values())
        raws_before = sum(1 for i, raw in enumerate(batch.raws) if raw[0] - i <= first)
        return len(batch) - first - raws_before

    def _in_banner(self, pid: int) -> bool:
        process = self._processes.get(pid)
        return process is not None and process.in_banner

    def _says_sandbox(self, key: str, message: bytes) -> bool:
        """Whether a line ends a process's wait for its sandbox (`hold_back`)."""
        if key == "exit":
            return True
        if key == "args":
            command = command_container(message[6:])
            return command is None or command[1] == "boot" or command[2] in self._sandbox_of
        if key == "creating":
            return bool(_NEW_CONTAINER(message) or _NEW_SANDBOX(message))
        if key == "sub":
            return _SUB_CONTAINER(message) is not None
        return key == "load" and bool((m := _IDS(message)) and m.group(1))

    def annotate(self, batch: Batch) -> None:
        """Sets `batch.attributions`, `raw_attributions` and `attribution_table`.

        Speed: lines of a known host process that teach nothing (most lines) are
        looked up a run at a time with C-level calls; only the others take a Python
        step each. Attributions are numbered (`_number`) so that a batch's table is
        made from small integers.
        """
        if len(self._numbers) > MAX_KNOWN:
            self._numbers, self._rows = {_NOBODY: 0}, [_NOBODY]
            self._settled.clear()
            self._sole.clear()
        count = len(batch.codes)
        before = self._last
        heads, texts = batch.heads, batch.texts
        pids = list(map([row[2] for row in batch.origin_table].__getitem__, batch.origins))
        if all(map(int.__instancecheck__, texts)):
            ends = map(add, texts, repeat(7))
            prefixes: Iterable[bytes] = map(getitem, heads, map(slice, texts, ends))  # type: ignore[arg-type]
            keys = list(map(_KEYS.get, prefixes))
        else:
            keys = list(map(_KEYS.get, map(_prefix, heads, texts)))
        values = self._values = [0] * count
        settled = self._settled
        start = 0
        # Lines with a key teach something; the others between them are looked up a run
        # at a time (a run with a line of an unsettled pid, or of pid 0, goes line by line).
        for e in chain(compress(range(count), keys), (count,)):
            if start < e:
                run = list(map(settled.get, pids[start:e]))
                if None in run:
                    for i in range(start, e):
                        number = run[i - start]
                        if number is None:
                            self._line(batch, pids, keys, i)
                        else:
                            values[i] = self._last = number
                else:
                    values[start:e] = run  # type: ignore[assignment]
                    self._last = run[-1]  # type: ignore[assignment]
            start = e + 1
            if e == count:
                break
            self._line(batch, pids, keys, e)
        for process in self._waiting:
            process.pending.clear()
        self._waiting.clear()
        # A raw record is the entry's before it (or the last record's of the last batch).
        before_raws = [before, *values]
        positions = map(sub, map(_FIRST, batch.raws), count_from())
        raw_values = list(map(before_raws.__getitem__, positions))
        used = dict.fromkeys(chain((0,), values, raw_values))
        index = dict(zip(used, range(len(used)), strict=True))
        batch.attribution_table = [list(self._rows[n]) for n in used]
        batch.attributions = list(map(index.__getitem__, values))
        batch.raw_attributions = list(map(index.__getitem__, raw_values))

    def _line(self, batch: Batch, pids: list[int], keys: list[str | None], e: int) -> None:
        """Attributes entry `e` of `batch` on its own, learning from it."""
        pid, text = pids[e], batch.texts[e]
        if pid == 0 or type(text) is not int:  # a Go crash: nobody's
            self._last = 0
        elif pid == 1:
            file = batch.origin_table[batch.origins[e]][0]
            value = self._namespaced_line(file, batch.heads[e], text, batch.mores[e], keys[e])
            self._values[e] = self._last = self._number(value)
        else:
            self._host_line(pid, batch.heads[e], text, keys[e], e)

    def _number(self, value: Attribution) -> int:
        """The number of an attribution (0 is nobody's)."""
        number = self._numbers.get(value)
        if number is None:
            number = self._numbers[value] = len(self._rows)
            self._rows.append(value)
        return number

    # ------------------------------------------------------------ host processes

    def _host_line(self, pid: int, head: bytes, text: int, key: str | None, e: int) -> None:
        """Attributes entry `e`, a line of host process `pid` (point 1), learning from it."""
        process = self._processes.get(pid)
        if key == "banner" and not (process is not None and process.in_banner):
            process = self._processes[pid] = _Process(pid)  # a new process under this pid
            self._settled.pop(pid, None)
            _bounded(self._processes)  # type: ignore[arg-type]
        elif key == "banner" and process is not None:
            process.in_banner = False
        if process is None:
            self._last = 0
            return
        number = self._number(process.value)
        self._values[e] = self._last = number
        if process.settled:
            self._settled[pid] = number
        else:
            if not process.pending:
                self._waiting.append(process)
            process.pending.append(e)
        if key is not None and key != "banner":
            self._learn_host(pid, process, head[text:], key)

    def _learn_host(self, pid: int, process: _Process, message: bytes, key: str) -> None:
        if key == "args":
            command = command_container(message[6:])
            process.in_banner = True
            if command is None:
                self._settle(process, _NOBODY, "")
                return
            program, sub, cid = command
            if sub == "gofer":
                bundle = _BUNDLE(message)
                known = self._bundles.get(bundle.group(1).decode()) if bundle else None
                self._settle(process, known[:2] if known else _NOBODY, sub)
                return
            sandbox = cid if sub == "boot" else self._sandbox_of.get(cid, "")
            self._settle(process, (sandbox, cid), sub)
        elif key == "exit":
            status = _EXIT(message)
            if status is not None and status.group(1) == b"0":
                self._ended(process)
            del self._processes[pid]
            self._settled.pop(pid, None)
        elif key == "starting":
            self._starting(process, message)
        else:
            self._learn_sandbox(message, key)
            if not process.sandbox and process.container in self._sandbox_of:
                self._settle(process, (self._sandbox_of[process.container], process.container))

    def _settle(self, process: _Process, value: Attribution, command: str | None = None) -> None:
        """Sets a process's attribution, and fills it into its pending records."""
        if command is not None:
            process.command = command
        process.sandbox, process.container = value
        number = self._number(value)
        values = self._values
        for e in process.pending:
            values[e] = number
        self._last = number
        if value[0] or value == _NOBODY:
            process.settled = True
            process.pending.clear()
            self._settled[process.pid] = number
            _bounded(self._settled)  # type: ignore[arg-type]

    def _learn_sandbox(self, message: bytes, key: str) -> None:
        """Learns which sandbox a container is in from a line that says so (point 2)."""
        if key == "creating":
            m = _NEW_CONTAINER(message)
            if m is not None:
                self._remember(m.group(1), m.group(2))
                return
            m = _NEW_SANDBOX(message)
            if m is not None:
                self._remember(m.group(1), m.group(1))
        elif key == "sub":
            m = _SUB_CONTAINER(message)
            if m is not None:
                self._remember(m.group(1), m.group(2))
        elif key == "load":
            m = _IDS(message)
            if m is not None and m.group(1):
                self._remember(m.group(2), m.group(1))

    def _remember(self, container: bytes, sandbox: bytes) -> None:
        self._sandbox_of[container.decode("utf-8", "replace")] = sandbox.decode("utf-8", "replace")
        _bounded(self._sandbox_of)  # type: ignore[arg-type]

    def _starting(self, process: _Process, message: bytes) -> None:
        """`Starting gofer: ...` / `Starting sandbox: ...`: a namespaced child comes."""
        bundle = _BUNDLE(message)
        if bundle is None:
            return
        role = "gofer" if message.startswith(b"Starting gofer") else "sandbox"
        sandbox, container = process.value
        if role == "sandbox":
            sandbox = sandbox or container
        self._bundles[bundle.group(1).decode("utf-8", "replace")] = (sandbox, container, role)
        _bounded(self._bundles)  # type: ignore[arg-type]
        self._namespaced[(role, container)] = _Namespaced(sandbox, container)
        _bounded(self._namespaced)  # type: ignore[arg-type]
        self._forget_pid1()

    def _ended(self, process: _Process) -> None:
        """A command exited 0: a started container's processes serve, a deleted one's end."""
        container = process.container
        if process.command == "start":
            for role in ("gofer", "sandbox"):
                child = self._namespaced.get((role, container))
                if child is not None:
                    child.starting = False
                    self._forget_pid1()
        elif process.command == "delete":
            gone = [
                k
                for k, child in self._namespaced.items()
                if child.container == container or child.sandbox == container
            ]
            for k in gone:
                del self._namespaced[k]
            self._forget_pid1()

    # ------------------------------------------------------------ pid 1

    def _namespaced_line(
        self, file: str, head: bytes, text: int, more: bytes, key: str | None
    ) -> Attribution:
        """Attributes a pid-1 line (point 3)."""
        if key == "args":
            bundle = _BUNDLE(head, text)
            path = bundle.group(1).decode("utf-8", "replace") if bundle else ""
            known = self._bundles.get(path)
            if known is None:  # a writer nobody announced: every pid-1 line is in doubt
                guess = path.rstrip("/").rsplit("/", 1)[-1]  # cleared by `delete` of it
                self._namespaced[("unknown", path)] = _Namespaced("", guess)
                _bounded(self._namespaced)  # type: ignore[arg-type]
                self._forget_pid1()
                return _NOBODY
            sandbox, container, role = known
            child = self._namespaced.get((role, container))
            if child is None:
                self._namespaced[(role, container)] = _Namespaced(sandbox, container)
                self._forget_pid1()
            return (sandbox, container)
        startup = file in STARTUP_FILES and key != "exit"
        cached = self._sole.get(startup)
        if cached is None:
            cached = self._sole[startup] = self._writers(startup, b"", b"")
            other = self._sole[not startup] = self._writers(not startup, b"", b"")
            if cached == other and not cached[1]:  # every pid-1 line alike: a fast run
                self._settled[1] = self._number(cached[0])
        sole, named = cached
        return self._writers(startup, head, more)[0] if named else sole

    def _forget_pid1(self) -> None:
        """The namespaced processes changed: what pid-1 lines mean is to be worked out anew."""
        self._sole.clear()
        self._settled.pop(1, None)

    def _writers(self, startup: bool, head: bytes, more: bytes) -> tuple[Attribution, bool]:
        """The one sandbox (and container) of the processes that may write a pid-1 line.

        Args:
            startup: the line is one only a starting process writes.
            head: the line, to look for a writer's sandbox ID in (`b""`: do not).
            more: its continuation lines.

        Returns:
            The attribution, and whether the line's text could narrow it down (two or
            more known sandboxes may have written it).
        """
        writers = [c for c in self._namespaced.values() if c.starting or not startup]
        sandboxes = {c.sandbox for c in writers}
        could = len(sandboxes) > 1 and "" not in sandboxes
        if head and could:
            named = {s for s in sandboxes if s.encode() in head or (more and s.encode() in more)}
            if len(named) == 1:
                writers = [c for c in writers if c.sandbox in named]
                sandboxes = named
        if len(sandboxes) != 1 or "" in sandboxes:
            return _NOBODY, could
        containers = {c.container for c in writers}
        [sandbox] = sandboxes
        return (sandbox, containers.pop() if len(containers) == 1 else ""), could
