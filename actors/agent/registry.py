"""Where running agents say they are: one small file per agent under `/run/node-containerd/`.

The CLI finds "the agent of this machine" from any directory through this registry
(`actors.agent.locate` reads it); the agent writes its entry once its control socket
listens (`register`) and removes it when it stops.

Rules:
    * One file per agent, `<dir>/<key>.json`, `<key>` being the first 16 hex digits of
      the SHA-256 of the agent's state directory (absolute). Two agents never share a
      state directory (its lock, `actors.agent.state_lock`), so never a file.
    * The file is written under a temporary name and renamed into place: a reader
      sees the whole entry or none. It holds paths and a pid, nothing secret (0644).
    * The agent removes its file when it stops, only if the file still names its pid.
      An agent killed with SIGKILL leaves its file behind; readers ignore an entry
      whose pid is gone or whose control socket nobody listens on (`live_agents`).
    * The directory is `/run/node-containerd` (tmpfs: empty after a reboot), or
      `$NODE_CONTAINERD_REGISTRY` when set (tests; agents in separate containers).
    * Registering never stops the agent: a directory it cannot write costs the entry
      (the caller says so in one warning), not the node.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NamedTuple

__all__ = [
    "REGISTRY_DIR",
    "REGISTRY_ENV",
    "AgentEntry",
    "Registration",
    "entry_path",
    "live_agents",
    "read_entries",
    "register",
    "registry_dir",
]

#: Where agents register when `REGISTRY_ENV` is not set.
REGISTRY_DIR = "/run/node-containerd"
#: The environment variable that moves the registry (tests, containers).
REGISTRY_ENV = "NODE_CONTAINERD_REGISTRY"


class AgentEntry(NamedTuple):
    """What one running agent says about itself; every path absolute.

    A named tuple, not a dataclass: the CLI reads entries on its way to an instant
    `status`, and `dataclasses` (with the `inspect` it loads) would cost it about half
    a bare interpreter's start. Build it with keywords.
    """

    #: The agent's process id.
    pid: int
    #: The agent's version, e.g. `0.1.0`.
    version: str
    #: Its state directory.
    state_dir: str
    #: Its control socket.
    control_socket: str
    #: containerd's gRPC socket (CRI's too).
    containerd_address: str
    #: The config file it runs with; None for the built-in default profile.
    config: str | None
    #: Its working directory, against which its config's relative paths were resolved.
    cwd: str
    #: The metrics page's URL, or None when metrics are off.
    metrics: str | None = None

    def to_json(self) -> str:
        """The file's text: one JSON object."""
        return json.dumps(self._asdict(), indent=1) + "\n"

    @classmethod
    def from_json(cls, text: str) -> AgentEntry:
        """Reads a file's text.

        Raises:
            ValueError: not an entry (bad JSON, a missing or mistyped field).
        """
        doc: Any = json.loads(text)
        if not isinstance(doc, dict):
            raise ValueError("not a JSON object")
        doc = {k: v for k, v in doc.items() if k in cls._fields}  # a newer agent's extras
        try:
            entry = cls(**doc)
        except TypeError as e:
            raise ValueError(str(e)) from None
        if not isinstance(entry.pid, int) or not all(
            isinstance(v, str)
            for v in (entry.version, entry.state_dir, entry.control_socket, entry.cwd)
        ):
            raise ValueError("a field has the wrong type")
        return entry


def registry_dir(env: Mapping[str, str] = os.environ) -> Path:
    """The registry directory: `$NODE_CONTAINERD_REGISTRY`, else `/run/node-containerd`."""
    return Path(env.get(REGISTRY_ENV) or REGISTRY_DIR)


def entry_path(directory: Path, state_dir: str | os.PathLike[str]) -> Path:
    """The file of the agent of `state_dir` in `directory`."""
    import hashlib  # here: the CLI reads the registry without hashing anything

    key = hashlib.sha256(os.fsencode(os.path.abspath(state_dir))).hexdigest()[:16]
    return directory / f"{key}.json"


class Registration:
    """This agent's entry in the registry, until `remove`."""

    def __init__(self, path: Path, pid: int) -> None:
        #: The entry's file.
        self.path = path
        self._pid = pid

    def remove(self) -> None:
        """Removes the file if it still names this agent's pid. Idempotent."""
        try:
            entry = AgentEntry.from_json(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return
        if entry.pid == self._pid:
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()


def register(entry: AgentEntry, directory: Path) -> Registration:
    """Writes `entry` into `directory` (created 0755 if missing), atomically.

    Raises:
        OSError: the directory or the file cannot be written.
    """
    import tempfile  # here: it loads shutil and the compressors, which readers never need

    directory.mkdir(mode=0o755, parents=True, exist_ok=True)
    path = entry_path(directory, entry.state_dir)
    fd, tmp = tempfile.mkstemp(prefix=".entry-", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(entry.to_json())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return Registration(path, entry.pid)


def read_entries(directory: Path) -> list[AgentEntry]:
    """Every readable entry of `directory`, live or stale, sorted by state directory."""
    try:
        names = sorted(os.listdir(directory))
    except OSError:
        return []
    entries = []
    for name in names:
        if not name.endswith(".json") or name.startswith("."):
            continue
        try:
            text = (directory / name).read_text(encoding="utf-8")
            entries.append(AgentEntry.from_json(text))
        except (OSError, ValueError, UnicodeDecodeError):
            continue
    return sorted(entries, key=lambda e: e.state_dir)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return pid > 0


def live_agents(directory: Path) -> list[AgentEntry]:
    """The entries of agents still running: their pid exists and their socket listens."""
    from actors.agent.control.probe import SocketState, probe_socket

    return [
        e
        for e in read_entries(directory)
        if _pid_alive(e.pid) and probe_socket(e.control_socket) is SocketState.LISTENING
    ]
