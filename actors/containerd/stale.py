"""Stale sockets: what a killed containerd leaves behind must not block the next one.

A containerd that was SIGKILLed (or even one that stopped cleanly: 1.6 does not
unlink them) leaves its gRPC and ttrpc socket files behind. Before the next start we
look at each socket path named in the config:

* nothing there → nothing to do;
* a socket nobody answers on (`ECONNREFUSED`) → stale: remove it;
* a socket somebody answers on → another containerd (an orphan of an earlier start,
  or the system's own) still owns this state; starting a second one on the same
  root would hang on its metadata lock, so refuse with an error naming the socket;
* any other kind of file → refuse: it is not ours to delete.

containerd 1.6 writes no pid file, so there is none to clear. `socket_paths` (pure)
reads the socket paths from the config text; `clear_stale_sockets` reads the config
file, checks that it serves the agent's address, and clears each socket.
"""

from __future__ import annotations

import errno
import os
import socket
import stat
import tomllib

__all__ = [
    "DEFAULT_GRPC_ADDRESS",
    "StaleSocketError",
    "clear_stale_socket",
    "clear_stale_sockets",
    "socket_paths",
]

#: Containerd's gRPC socket when its config names none.
DEFAULT_GRPC_ADDRESS = "/run/containerd/containerd.sock"


class StaleSocketError(Exception):
    """A socket path is in use by a live process or is not a socket, or the config is bad."""


def clear_stale_sockets(config: str, address: str) -> list[str]:
    """Removes the stale sockets of the containerd configured by the file `config`.

    Args:
        config: path of containerd's config file.
        address: the gRPC socket the agent will call; the config must serve it.

    Returns:
        The socket paths removed.

    Raises:
        StaleSocketError: the config cannot be read, is not TOML, serves gRPC
            elsewhere than `address`, or one of its sockets is live or not a socket.
    """
    try:
        with open(config, encoding="utf-8") as f:
            paths = socket_paths(f.read())
    except OSError as e:
        raise StaleSocketError(f"cannot read containerd config {config!r}: {e}") from e
    except ValueError as e:
        raise StaleSocketError(f"cannot use containerd config {config!r}: {e}") from e
    if paths[0] != address:
        raise StaleSocketError(
            f"containerd config {config!r} serves grpc on {paths[0]!r}, not on address {address!r}"
        )
    return [path for path in paths if clear_stale_socket(path)]


def socket_paths(config_text: str) -> list[str]:
    """The unix socket paths containerd will listen on, from its config.

    Args:
        config_text: the containerd config file (TOML).

    Returns:
        The gRPC socket, the ttrpc socket (containerd's default: gRPC + `.ttrpc`)
        and the debug socket if configured, in that order, without duplicates.

    Raises:
        ValueError: the config is not valid TOML.
    """
    try:
        config = tomllib.loads(config_text)
    except tomllib.TOMLDecodeError as e:
        raise ValueError(f"containerd config is not valid toml: {e}") from e
    grpc_address = _address(config, "grpc") or DEFAULT_GRPC_ADDRESS
    paths = [grpc_address, _address(config, "ttrpc") or grpc_address + ".ttrpc"]
    debug = _address(config, "debug")
    if debug:
        paths.append(debug)
    unique: list[str] = []
    for path in paths:
        path = path.removeprefix("unix://")
        if path.startswith("/") and path not in unique:
            unique.append(path)
    return unique


def _address(config: dict[str, object], section: str) -> str:
    table = config.get(section)
    if isinstance(table, dict):
        value = table.get("address")
        if isinstance(value, str):
            return value
    return ""


def clear_stale_socket(path: str, timeout: float = 1.0) -> bool:
    """Removes the socket file at `path` if nobody answers on it.

    Args:
        path: the socket path.
        timeout: how long a connect may take before the socket counts as in use.

    Returns:
        True when a stale socket was removed, False when there was none.

    Raises:
        StaleSocketError: a live process answers on it, or `path` is not a socket.
    """
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return False
    if not stat.S_ISSOCK(st.st_mode):
        raise StaleSocketError(f"socket path {path!r} exists and is not a socket")
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    probe.settimeout(timeout)
    try:
        probe.connect(path)
    except ConnectionRefusedError:
        pass  # nobody listens: stale
    except FileNotFoundError:
        return False  # removed meanwhile
    except OSError as e:
        if e.errno not in (errno.ECONNREFUSED, errno.ENOTSOCK):
            raise StaleSocketError(f"socket {path!r} cannot be checked: {e}") from e
    else:
        raise StaleSocketError(
            f"socket {path!r} is in use: another process (an earlier containerd?) answers on it"
        )
    finally:
        probe.close()
    try:
        os.unlink(path)
    except FileNotFoundError:
        return False
    return True
