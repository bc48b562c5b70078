"""Readers of single config values: each checks one key and records what is wrong.

A `Checker` collects problems instead of raising, so that one load reports every
problem of a file at once. Each reader takes the dotted key and the value the
TOML file holds, returns the value converted (or a fallback when it is bad, so
that checking goes on), and on a bad value records one line:

    key 'runsc.mode' in /etc/agent.toml: '0666' is world-writable; use ...

naming the file, the dotted key, the offending value with `!r`, and what is
allowed. Keys are written as TOML writes them: `policy."root.containerd".grace_period`.

This module reads no files; only `Checker.binary` looks at the filesystem.
"""

from __future__ import annotations

import difflib
import ipaddress
import json
import math
import os
import re
import shutil
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime, time
from pathlib import Path
from typing import Any

from actors.config.bounds import shown
from actors.config.schema import PARSE_FORMATS, UNIX_PATH_MAX
from actors.config.units import format_duration, format_size, parse_duration, parse_size
from actors.logtree.dn import validate_pattern
from actors.logtree.errors import LogTreeError
from actors.supervisor.core.severity import SEVERITY_NAMES, Severity

__all__ = ["MAX_COUNT", "Checker", "dotted", "toml_type"]

#: The largest count a key takes (`max_restarts`): far beyond any useful one.
MAX_COUNT = 1_000_000

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
_MODE = re.compile(r"[0-7]{3,4}")
#: The private IPv4 ranges of RFC 1918, where `private_subnet` accepts a range.
_RFC1918 = tuple(
    ipaddress.IPv4Network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16")
)
_INSTALL_HINT = (
    "install containerd (Debian: apt-get install containerd) or set containerd.binary to its path"
)


def dotted(*parts: str) -> str:
    """Joins key parts as TOML does, quoting those that are not bare keys."""
    return ".".join(p if _BARE_KEY.fullmatch(p) else json.dumps(p) for p in parts)


def toml_type(value: object) -> str:
    """The TOML type of a parsed value, with its article: `a string`, `an integer`."""
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a float"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, (datetime, date, time)):
        return "a date-time"
    return f"a {type(value).__name__}"


class Checker:
    """Collects the problems of one config source.

    Args:
        source: the file name as the user gave it, or `<default profile>`.
    """

    def __init__(self, source: str) -> None:
        self.source = source
        self.problems: list[str] = []

    def problem(self, key: str, text: str) -> None:
        """Records `key '<key>' in <source>: <text>`."""
        self.problems.append(f"key {key!r} in {self.source}: {text}")

    def wrong_type(self, key: str, value: object, allowed: str) -> None:
        """Records that `value` has the wrong TOML type; `allowed` says what to use."""
        self.problem(key, f"{shown(value)} is {toml_type(value)}; use {allowed}")

    # -- structure -------------------------------------------------------------

    def table(self, key: str, value: object) -> dict[str, Any]:
        """A TOML table, or {} (after a problem) when `value` is something else."""
        if isinstance(value, dict):
            return value
        self.wrong_type(key, value, "a table")
        return {}

    def known_keys(self, prefix: str, table: Mapping[str, Any], allowed: Iterable[str]) -> None:
        """Records every key of `table` not in `allowed`, with a did-you-mean."""
        allowed = list(allowed)
        for name in table:
            if name in allowed:
                continue
            key = f"{prefix}.{dotted(name)}" if prefix else dotted(name)
            close = (
                difflib.get_close_matches(name, allowed, n=1, cutoff=0.6)
                or [a for a in allowed if name and (a.startswith(name) or name in a)][:1]
            )
            if close:
                self.problem(key, f"unknown key; did you mean {close[0]!r}?")
            else:
                listed = ", ".join(repr(a) for a in allowed)
                self.problem(key, f"unknown key; allowed here: {listed}")

    # -- scalars ---------------------------------------------------------------

    def boolean(self, key: str, value: object, fallback: bool) -> bool:
        """true or false."""
        if isinstance(value, bool):
            return value
        self.wrong_type(key, value, "true or false")
        return fallback

    def string(self, key: str, value: object, fallback: str, allowed: str) -> str:
        """Any string; `allowed` describes it for the error."""
        if isinstance(value, str):
            return value
        self.wrong_type(key, value, allowed)
        return fallback

    def choice(
        self, key: str, value: object, allowed: Sequence[str], fallback: str, what: str
    ) -> str:
        """One of the strings `allowed`; `what` names them for the error ("spawn mode")."""
        listed = ", ".join(json.dumps(a) for a in allowed)
        if isinstance(value, str) and value in allowed:
            return value
        if isinstance(value, str):
            self.problem(key, f"{value!r} is not a {what}; use one of {listed}")
        else:
            self.wrong_type(key, value, f"one of {listed}")
        return fallback

    def duration(
        self,
        key: str,
        value: object,
        *,
        positive: bool = False,
        or_else: str = "",
        least: float = 0.0,
    ) -> float | None:
        """A duration in seconds (see `actors.config.units`), or None after a problem.

        Args:
            key: the dotted key.
            value: the TOML value.
            positive: refuse zero too.
            or_else: appended to the error, for keys that take another word too
                (e.g. `', or "off" to turn it off'`).
            least: the shortest non-zero duration the key takes, in seconds (a
                heartbeat every microsecond would only load the supervisor).
        """
        try:
            seconds = parse_duration(value)
        except ValueError as e:
            self.problem(key, f"{e}{or_else}")
            return None
        if positive and seconds == 0:
            self.problem(key, f'{value!r} is zero; use a duration > 0, e.g. "1s"{or_else}')
            return None
        if 0 < seconds < least:
            self.problem(
                key,
                f"{value!r} is too short; use at least {format_duration(least)!r}{or_else}",
            )
            return None
        return seconds

    def number(
        self,
        key: str,
        value: object,
        *,
        low: float,
        high: float,
        example: str,
        high_included: bool = False,
    ) -> float | None:
        """A finite number with `low <= value < high` (`<= high` if `high_included`), or None."""
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            self.wrong_type(key, value, f"a number, e.g. {example}")
            return None
        above = value > high if high_included else value >= high
        if not math.isfinite(value) or value < low or above:
            allowed = f">= {low:g} and {'<=' if high_included else '<'} {high:g}"
            what = "is negative" if value < 0 else "is out of range"
            self.problem(key, f"{value!r} {what}; use a number {allowed}, e.g. {example}")
            return None
        return float(value)

    def integer_in(self, key: str, value: object, low: int, high: int, hint: str) -> int | None:
        """An integer from `low` to `high` (a boolean is none); None after a problem.

        The problem reads "<value> is not an integer from <low> to <high>; <hint>".
        """
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            self.problem(key, f"{value!r} is not an integer from {low} to {high}; {hint}")
            return None
        return value

    def count_or_off(self, key: str, value: object, what_off_means: str) -> int | None | bool:
        """An integer from 0 to `MAX_COUNT`, or `"off"` (as None); False after a problem."""
        if value == "off":
            return None
        allowed = f'an integer from 0 to {MAX_COUNT}, or "off" to {what_off_means}'
        if isinstance(value, bool) or not isinstance(value, int):
            self.problem(key, f"{shown(value)} is {toml_type(value)}; use {allowed}")
            return False
        if value < 0:
            self.problem(key, f"{value!r} is negative; use {allowed}")
            return False
        if value > MAX_COUNT:
            self.problem(key, f"{value!r} is too large; use {allowed}")
            return False
        return value

    def mode(self, key: str, value: object, fallback: int) -> int:
        """Permission bits as an octal string: never world-writable, owner rw."""
        if not isinstance(value, str):
            self.problem(
                key,
                f"{value!r} is {toml_type(value)}; write the mode as an octal string, "
                'e.g. "0600" (TOML integers are decimal)',
            )
            return fallback
        if not _MODE.fullmatch(value):
            self.problem(key, f'{value!r} is not an octal mode; use e.g. "0600" or "0660"')
            return fallback
        mode = int(value, 8)
        if mode > 0o777:
            self.problem(
                key, f'{value!r} has bits besides the permissions; use e.g. "0600" or "0660"'
            )
        elif mode & 0o002:
            self.problem(
                key, f'{value!r} is world-writable; use a mode without the 0002 bit, e.g. "0600"'
            )
        elif mode & 0o600 != 0o600:
            self.problem(
                key,
                f"{value!r} does not let the owner read and write it (the agent reads it "
                'and holds a write end open); use e.g. "0600" or "0660"',
            )
        else:
            return mode
        return fallback

    def size(
        self, key: str, value: object, *, low: int, high: int, high_why: str, fallback: int
    ) -> int:
        """A byte size within [low, high]; `high_why` says where `high` comes from."""
        try:
            size = parse_size(value)
        except ValueError as e:
            self.problem(key, str(e))
            return fallback
        if low <= size <= high:
            return size
        self.problem(
            key,
            f"{value!r} is out of range; use a size from {format_size(low)} to "
            f"{format_size(high)} ({high_why})",
        )
        return fallback

    def severity(self, key: str, value: object, fallback: Severity) -> Severity:
        """A leveled log severity, its name in any case."""
        if isinstance(value, str) and value.upper() in SEVERITY_NAMES:
            return Severity[value.upper()]
        listed = ", ".join(json.dumps(s) for s in SEVERITY_NAMES)
        if isinstance(value, str):
            self.problem(key, f"{value!r} is not a severity; use one of {listed}")
        else:
            self.wrong_type(key, value, f"one of {listed}")
        return fallback

    def log_parse(self, key: str, value: object) -> dict[str, str]:
        """The `[log] parse` table: DN pattern -> one of `PARSE_FORMATS`."""
        table = self.table(key, value)
        parse: dict[str, str] = {}
        listed = ", ".join(json.dumps(f) for f in PARSE_FORMATS)
        for pattern, fmt in table.items():
            sub = f"{key}.{dotted(pattern)}"
            try:
                validate_pattern(pattern)
            except LogTreeError:
                self.problem(
                    sub,
                    f"{pattern!r} is not a DN pattern; use a DN such as "
                    '"root.containerd" (it and its subtree), or "" for every DN',
                )
                continue
            if not isinstance(fmt, str):
                self.wrong_type(sub, fmt, f"one of {listed}")
            elif fmt not in PARSE_FORMATS:
                self.problem(sub, f"{fmt!r} is not a log format; use one of {listed}")
            else:
                parse[pattern] = fmt
        return parse

    def listen(self, key: str, value: object, fallback: tuple[str, int]) -> tuple[str, int]:
        """`host:port` with an IP literal (IPv6 in brackets) or `localhost`."""
        hint = 'use an IP address and a port, e.g. "127.0.0.1:9464" or "[::1]:9464"'
        if not isinstance(value, str):
            self.wrong_type(key, value, 'a string "host:port"')
            return fallback
        host, sep, port = value.rpartition(":")
        if host.startswith("[") and host.endswith("]"):
            host, ok_host = host[1:-1], _is_ip(host[1:-1], 6)
        else:
            ok_host = host == "localhost" or _is_ip(host, 4)
        if not sep or not ok_host or not port.isdigit() or int(port) > 65535:
            self.problem(key, f"{value!r} is not host:port; {hint}")
            return fallback
        return host, int(port)

    def labels(self, key: str, value: object) -> dict[str, str]:
        """A table of string labels, each name + value at most 4096 bytes (containerd)."""
        table = self.table(key, value)
        labels: dict[str, str] = {}
        for name, text in table.items():
            sub = f"{key}.{dotted(name)}"
            if not isinstance(text, str):
                self.wrong_type(sub, text, "a string")
            elif not name:
                self.problem(sub, 'the label name is empty; use e.g. "io.cri-containerd.pinned"')
            elif len(name.encode()) + len(text.encode()) > 4096:
                self.problem(
                    sub, f"{text!r} is too long; a label's name and value may have 4096 bytes"
                )
            else:
                labels[name] = text
        return labels

    def private_subnet(self, key: str, value: object, fallback: str) -> str:
        """A private IPv4 range (RFC 1918) in CIDR notation, with room for pods; normalised."""
        example = f'e.g. "{fallback}"'
        if not isinstance(value, str):
            self.wrong_type(key, value, f"a private IPv4 range in CIDR notation, {example}")
            return fallback
        try:
            net = ipaddress.ip_network(value, strict=False)
        except ValueError:
            self.problem(key, f"{value!r} is not an IPv4 range in CIDR notation; use {example}")
            return fallback
        if "/" not in value:
            self.problem(key, f"{value!r} has no prefix length; use {example}")
        elif not isinstance(net, ipaddress.IPv4Network):
            self.problem(
                key, f"{value!r} is an IPv6 range; the default network is IPv4 only: use {example}"
            )
        elif net.network_address != ipaddress.ip_interface(value).ip:
            self.problem(key, f"{value!r} has host bits set; use its network address, {str(net)!r}")
        elif not any(net.subnet_of(private) for private in _RFC1918):
            listed = ", ".join(str(p) for p in _RFC1918)
            self.problem(
                key,
                f"{value!r} is not a private range; use a range inside {listed} (RFC 1918), "
                "that no network of this machine uses",
            )
        elif net.prefixlen > 30:
            self.problem(
                key,
                f"{value!r} leaves no address for pods (the bridge takes the first); "
                f"use a prefix of /30 or shorter, {example}",
            )
        else:
            return str(net)
        return fallback

    def directories(self, key: str, value: object, fallback: tuple[Path, ...]) -> tuple[Path, ...]:
        """A non-empty array of directories, each made absolute; duplicates dropped."""
        example = ", ".join(json.dumps(str(d)) for d in fallback)
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            self.wrong_type(key, value, f"an array of directories, e.g. [{example}]")
            return fallback
        if not value:
            self.problem(key, f"[] is empty; list at least one directory, e.g. [{example}]")
            return fallback
        dirs: list[Path] = []
        for entry in value:
            if not entry or "\0" in entry:
                self.problem(key, f"{entry!r} is not a directory; use e.g. [{example}]")
                return fallback
            path = Path(os.path.abspath(entry))
            if path not in dirs:
                dirs.append(path)
        return tuple(dirs)

    # -- paths -----------------------------------------------------------------

    def path(self, key: str, value: object, default: Path | None) -> Path | None:
        """A path made absolute against the current directory; `""` → `default`."""
        if value == "":
            return default
        if not isinstance(value, str):
            self.wrong_type(key, value, 'a path, or "" for the default')
            return default
        if "\0" in value:
            self.problem(key, f"{value!r} is not a path: it contains a NUL byte")
            return default
        return Path(os.path.abspath(value))

    def socket_length(self, key: str, path: Path, *, suffix: str = "", derived: bool) -> None:
        """Checks that `path` (plus `suffix`, e.g. `.ttrpc`) fits a unix socket address."""
        full = f"{path}{suffix}"
        length = len(os.fsencode(full))
        if length <= UNIX_PATH_MAX:
            return
        fix = "use a shorter state_dir or set " + key if derived else "use a shorter path"
        extra = f" with {suffix!r} appended ({full!r})" if suffix else ""
        self.problem(
            key,
            f"{str(path)!r} is too long for a unix socket: {length} bytes{extra}, "
            f"and at most {UNIX_PATH_MAX} are allowed; {fix}",
        )

    def binary(self, key: str, name: str, search_path: str) -> str:
        """Finds an executable: a name with no `/` on `search_path`, else a path."""
        if "/" not in name:
            found = shutil.which(name, path=search_path)
            if found is None:
                self.problem(key, f"{name!r} is not on PATH; {_INSTALL_HINT}")
                return name
            return os.path.abspath(found)
        path = os.path.abspath(name)
        if not os.path.exists(path):
            self.problem(key, f"{name!r} does not exist; {_INSTALL_HINT}")
        elif not os.path.isfile(path) or not os.access(path, os.X_OK):
            self.problem(key, f"{name!r} is not an executable file; {_INSTALL_HINT}")
        return path


def _is_ip(text: str, version: int) -> bool:
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        return False
    return ip.version == version
