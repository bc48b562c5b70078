"""Load and check the agent's TOML config; the embedded default profile.

Theory of operation:

1. **Parse.** The file is read as TOML (`tomllib`). A file that cannot be read or
   parsed is one problem, and nothing else is checked.
2. **Check key by key.** Every section and key is read by a `Checker` reader that
   converts it (durations to seconds, sizes to bytes, paths to absolute) or records
   a problem naming the file, the dotted key, the value and what is allowed.
   Unknown keys get a did-you-mean. Checking never stops at the first problem.
   The binary must be found, and a user's containerd config must exist and agree
   with the address, root and state given here.
3. **Cross-check.** Socket paths must fit a unix socket address, no two keys may
   name the same file, and containerd's readiness wait must end before the
   healthy deadline of `root.containerd`.
4. **Raise or return.** Any problem → one `ConfigError` carrying all of them, in
   schema order (top-level keys, the sections as the default profile lists them,
   the policies, the cross-checks). Otherwise a frozen `AgentConfig`.

Layering: a user's file is read on top of the default profile. Keys it omits take
the defaults of `actors.config.schema` (which `default.toml` writes out);
its `[policy."<pattern>"]` rules come *after* the default profile's rules, so
they override them field by field and keep the rest.

Paths: a relative path is made absolute against the current directory at load
time. `state_dir` defaults to `$NODE_CONTAINERD_STATE`, else
`./.node-containerd`; every other path key, when omitted or `""`, lies under it
(`DERIVED_PATHS`). No `~` or `$VAR` expansion.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import sys
import tomllib
from collections.abc import Callable, Mapping
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Any

from actors.config.bounds import LIMITS, check_bounds, locate
from actors.config.log_section import read_log
from actors.config.policy import read_policies
from actors.config.runtimes import read_cri, read_runsc_runtime
from actors.config.schema import (
    DEFAULT_STATE_DIR,
    DERIVED_PATHS,
    SECTION_KEYS,
    SPAWN_MODES,
    STATE_ENV,
    AgentConfig,
    CniSection,
    ConfigError,
    ContainerdSection,
    ControlSection,
    MetricsSection,
    PreseedSection,
    RunscSection,
    SupervisorSection,
)
from actors.config.system_dirs import refused_state_dir
from actors.config.units import format_duration
from actors.config.values import Checker, dotted, toml_type
from actors.containerd.core.dns import CONTAINERD_DN
from actors.supervisor.core.policy import PolicyRule

__all__ = [
    "DEFAULT_SOURCE",
    "AgentConfig",
    "ConfigError",
    "default_toml",
    "load_config",
    "parse_config",
]

#: How problems in the embedded default profile name their "file".
DEFAULT_SOURCE = "<default profile>"

#: Where containerd puts things when its own config file does not say.
_CONTAINERD_DEFAULTS = {
    "address": "/run/containerd/containerd.sock",
    "root": "/var/lib/containerd",
    "state": "/run/containerd",
}
_TOP_KEYS = ("state_dir", *SECTION_KEYS, "policy")
_PIPE_MIN = 4096
_PIPE_MAX_FILE = "/proc/sys/fs/pipe-max-size"
#: The shortest liveness interval, in seconds: each probe is a gRPC call to containerd.
_MIN_LIVENESS_INTERVAL = 0.1
#: The most liveness failures in a row: more would leave a hung containerd for hours.
_MAX_LIVENESS_FAILURES = 1000


def default_toml() -> str:
    """The embedded default profile: a commented, working config of every key."""
    return resources.files("actors.config").joinpath("default.toml").read_text(encoding="utf-8")


def load_config(
    path: str | os.PathLike[str] | None,
    *,
    env: Mapping[str, str] = os.environ,
    check_binaries: bool = True,
) -> AgentConfig:
    """Reads, checks and resolves a config file.

    Args:
        path: the TOML file; None for the embedded default profile.
        env: the environment: `NODE_CONTAINERD_STATE` names the state directory
            when the file does not, `PATH` is where the containerd binary is
            looked up first.
        check_binaries: also require the containerd binary to be found. Off for
            commands that only need the paths (`status`, `logs`).

    Returns:
        The checked config, every path absolute.

    Raises:
        ConfigError: with every problem found, one per line.
    """
    if path is None:
        return _load_text(default_toml(), DEFAULT_SOURCE, env, check_binaries, base_rules=())
    source = os.fspath(path)
    try:
        text = Path(source).read_bytes().decode("utf-8")
    except OSError as e:
        reason = (e.strerror or str(e)).lower()
        raise ConfigError([f"config file {source!r} cannot be read: {reason}"]) from e
    except UnicodeDecodeError as e:
        raise ConfigError([f"config file {source!r} is not UTF-8 text: {e.reason}"]) from e
    return parse_config(text, source=source, env=env, check_binaries=check_binaries)


def parse_config(
    text: str,
    *,
    source: str,
    env: Mapping[str, str] = os.environ,
    check_binaries: bool = True,
) -> AgentConfig:
    """Like `load_config`, for config text already read (e.g. from stdin).

    Args:
        text: the TOML text.
        source: how problems name where it came from (a file name, `<stdin>`).
        env: as for `load_config`.
        check_binaries: as for `load_config`.
    """
    return _load_text(text, source, env, check_binaries, base_rules=_profile_rules())


@functools.cache
def _profile_rules() -> tuple[PolicyRule, ...]:
    doc = tomllib.loads(default_toml())
    chk = Checker(DEFAULT_SOURCE)
    rules = read_policies(chk, doc.get("policy", {}))
    if chk.problems:  # pragma: no cover - a test loads the profile
        raise ConfigError(chk.problems)
    return rules


def _load_text(
    text: str,
    source: str,
    env: Mapping[str, str],
    check_binaries: bool,
    base_rules: tuple[PolicyRule, ...],
) -> AgentConfig:
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        reason = str(e)
        raise ConfigError(
            [f"config file {source!r} is not valid TOML: {reason[:1].lower()}{reason[1:]}"]
        ) from e
    except (RecursionError, ValueError, MemoryError) as e:
        raise ConfigError([_unparsable(text, source)]) from e
    chk = Checker(source)
    doc = check_bounds(doc, chk.problem, _join_key)
    chk.known_keys("", doc, _TOP_KEYS)
    state_dir = _state_dir(chk, doc, env)
    ctx = _Paths(chk, state_dir)
    tables: dict[str, dict[str, Any]] = {}

    def section(name: str) -> dict[str, Any]:
        tables[name] = chk.table(name, doc.get(name, {}))
        chk.known_keys(name, tables[name], SECTION_KEYS[name])
        return tables[name]

    # Read in schema order (the default profile's), so problems come in that order.
    containerd = _containerd(ctx, section("containerd"), env, check_binaries)
    runsc_table = section("runsc")
    runsc = _runsc(ctx, runsc_table)
    search = f"{env.get('PATH', os.defpath)}:{containerd.path}"
    binary, platform, flags = read_runsc_runtime(chk, runsc_table, search)
    runsc = dataclasses.replace(runsc, binary=binary, platform=platform, flags=flags)
    cri = read_cri(chk, section("cri"), runsc.binary, search)
    cni = _cni(ctx, section("cni"))
    preseed = _preseed(ctx, section("preseed"))
    log = read_log(ctx.chk, section("log"))
    control = ControlSection(socket=ctx.path("control.socket", section("control")))
    metrics = _metrics(chk, section("metrics"))
    supervisor = _supervisor(chk, section("supervisor"))
    cfg = AgentConfig(
        source=source,
        state_dir=state_dir,
        containerd=containerd,
        runsc=runsc,
        preseed=preseed,
        log=log,
        control=control,
        metrics=metrics,
        supervisor=supervisor,
        cri=cri,
        cni=cni,
        policies=base_rules + read_policies(chk, doc.get("policy", {})),
    )
    _cross_check(ctx, cfg, tables["containerd"].get("ready_timeout"))
    if chk.problems:
        raise ConfigError(chk.problems)
    return cfg


def _join_key(prefix: str, name: str) -> str:
    return f"{prefix}.{dotted(name)}" if prefix else dotted(name)


def _unparsable(text: str, source: str) -> str:
    """The one problem of text that `tomllib` could not parse without overflowing."""
    digits = sys.get_int_max_str_digits() or 4300
    found = locate(text, LIMITS.depth, digits, _join_key)
    if found is None:
        return (
            f"config file {source!r} cannot be read: its values are nested too deep or its "
            "numbers are too long for a config"
        )
    line, key, what = found
    return f"key {key!r} in {source}: {what} (line {line}); no key takes such a value"


def _state_dir(chk: Checker, doc: Mapping[str, Any], env: Mapping[str, str]) -> Path:
    fallback = Path(os.path.abspath(env.get(STATE_ENV) or DEFAULT_STATE_DIR))
    state_dir = chk.path("state_dir", doc.get("state_dir", ""), fallback) or fallback
    text = os.path.normpath(state_dir)
    what = refused_state_dir(text)
    if what is not None:
        key = "state_dir" if "state_dir" in doc else STATE_ENV
        chk.problem(
            key,
            f"{text!r} {what}: the agent makes its state directory private (mode 0700), "
            "which would lock others out of it; use a directory of its own, e.g. "
            '"/var/lib/node-containerd"',
        )
    return state_dir


class _Paths:
    """Reads path keys, remembering which were derived from the state directory."""

    def __init__(self, chk: Checker, state_dir: Path) -> None:
        self.chk = chk
        self.state_dir = state_dir
        self.derived: set[str] = set()

    def path(self, key: str, table: Mapping[str, Any]) -> Path:
        """The path at dotted `key`; omitted or "" → its place under the state dir."""
        default = self.state_dir / DERIVED_PATHS[key]
        value = self.chk.path(key, table.get(key.rpartition(".")[2], ""), default)
        if value == default:
            self.derived.add(key)
        return value or default


def _static_default(cls: type, name: str) -> Any:
    return cls.__dataclass_fields__[name].default  # type: ignore[attr-defined]


def _containerd(
    ctx: _Paths,
    t: Mapping[str, Any],
    env: Mapping[str, str],
    check_binaries: bool,
) -> ContainerdSection:
    chk = ctx.chk
    d: Callable[[str], Any] = functools.partial(_static_default, ContainerdSection)
    path_list = d("path")
    if "path" in t:
        path_list = _path_list(chk, t["path"], path_list)
    binary = d("binary")
    if "binary" in t:
        binary = chk.string("containerd.binary", t["binary"], binary, "a name or a path")
    search = f"{env.get('PATH', os.defpath)}:{path_list}"
    binary = (chk if check_binaries else Checker("")).binary("containerd.binary", binary, search)
    user_config = chk.path("containerd.config", t.get("config", ""), None)
    from_file = _user_containerd_config(chk, user_config) if user_config else None
    t = dict(t)
    address = t.get("address")
    if isinstance(address, str) and "://" in address:
        chk.problem(
            "containerd.address",
            f"{address!r} is not a path; give the unix socket's path without a scheme",
        )
        t["address"] = ""
    places: dict[str, Path] = {}
    for name in ("address", "root", "state"):
        key = f"containerd.{name}"
        if user_config is None:
            places[name] = ctx.path(key, t)
            continue
        given = chk.path(key, t.get(name, ""), None)
        in_file = (from_file or {}).get(name, Path(_CONTAINERD_DEFAULTS[name]))
        if given is not None and given != in_file and from_file is not None:
            file_key = "grpc.address" if name == "address" else name
            chk.problem(
                key,
                f"{t[name]!r} differs from {file_key} {str(in_file)!r} in containerd.config "
                f'{str(user_config)!r}; leave it "" to use the file\'s',
            )
        places[name] = in_file
    timeout = d("ready_timeout")
    if "ready_timeout" in t:
        timeout = chk.duration("containerd.ready_timeout", t["ready_timeout"], positive=True)
    return ContainerdSection(
        binary=binary,
        config=user_config or ctx.path("containerd.config", {}),
        generate_config=user_config is None,
        address=places["address"],
        root=places["root"],
        state=places["state"],
        path=path_list,
        tmpdir=ctx.path("containerd.tmpdir", t),
        ready_timeout=d("ready_timeout") if timeout is None else timeout,
        metrics_address=_containerd_metrics(chk, t, user_config),
        **_liveness(chk, t),
    )


def _containerd_metrics(chk: Checker, t: Mapping[str, Any], user_config: Path | None) -> str:
    """`containerd.metrics_address`: "" (off), or `host:port` with a port from 1."""
    key, value = "containerd.metrics_address", t.get("metrics_address", "")
    if value == "":
        return ""
    port_text = value.rpartition(":")[2] if isinstance(value, str) else ""
    if port_text.isdigit() and not 1 <= int(port_text) <= 65535:
        chk.problem(
            key,
            f"{value!r} has port {int(port_text)}, out of range; containerd needs a fixed "
            'port from 1 to 65535, e.g. "127.0.0.1:1338"',
        )
        return ""
    host, port = chk.listen(key, value, ("", 0))
    if not host:
        return ""
    if user_config is not None:
        chk.problem(
            key,
            f"{value!r} cannot be set with containerd.config {str(user_config)!r}, which the "
            'agent does not write; set [metrics] address in that file, or leave this ""',
        )
        return ""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _liveness(chk: Checker, t: Mapping[str, Any]) -> dict[str, Any]:
    """The `containerd.liveness_*` keys, as `ContainerdSection` fields."""
    d: Callable[[str], Any] = functools.partial(_static_default, ContainerdSection)
    names = ("liveness_interval", "liveness_timeout", "liveness_failures")
    values = {name: d(name) for name in names}
    if "liveness_interval" in t and t["liveness_interval"] == "off":
        values["liveness_interval"] = None
    elif "liveness_interval" in t:
        interval = chk.duration(
            "containerd.liveness_interval",
            t["liveness_interval"],
            positive=True,
            or_else=', or "off" to turn liveness probing off',
            least=_MIN_LIVENESS_INTERVAL,
        )
        values["liveness_interval"] = d("liveness_interval") if interval is None else interval
    if "liveness_timeout" in t:
        timeout = chk.duration("containerd.liveness_timeout", t["liveness_timeout"], positive=True)
        values["liveness_timeout"] = d("liveness_timeout") if timeout is None else timeout
    if "liveness_failures" in t:
        failures = t["liveness_failures"]
        if isinstance(failures, bool) or not isinstance(failures, int):
            chk.problem(
                "containerd.liveness_failures",
                f"{failures!r} is {toml_type(failures)}; use an integer >= 1, e.g. 3",
            )
        elif not 1 <= failures <= _MAX_LIVENESS_FAILURES:
            chk.problem(
                "containerd.liveness_failures",
                f"{failures!r} is out of range; use an integer from 1 to "
                f"{_MAX_LIVENESS_FAILURES}, e.g. 3",
            )
        else:
            values["liveness_failures"] = failures
    return values


def _path_list(chk: Checker, value: object, fallback: str) -> str:
    example = '"/usr/sbin:/usr/bin:/sbin:/bin"'
    text = chk.string("containerd.path", value, fallback, f"a PATH string, e.g. {example}")
    relative = [p for p in text.split(":") if p and not p.startswith("/")]
    if not text.strip(":"):
        chk.problem(
            "containerd.path",
            f"{text!r} is empty; containerd needs a PATH to find its shims, e.g. {example}",
        )
    elif relative:
        chk.problem(
            "containerd.path",
            f"{text!r} has a relative directory {relative[0]!r}; "
            f"use absolute directories, e.g. {example}",
        )
    else:
        return text
    return fallback


def _user_containerd_config(chk: Checker, path: Path) -> dict[str, Path] | None:
    """The address, root and state that the user's containerd config sets; None if unread."""
    key = "containerd.config"
    fix = 'give an existing containerd config file, or "" to have the agent generate one'
    if not path.exists():
        chk.problem(key, f"{str(path)!r} does not exist; {fix}")
        return None
    try:
        doc = tomllib.loads(path.read_bytes().decode("utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        reason = getattr(e, "strerror", None) or str(e)
        chk.problem(key, f"{str(path)!r} cannot be read as TOML: {reason}; {fix}")
        return None
    grpc = doc.get("grpc")
    found = {
        "address": grpc.get("address") if isinstance(grpc, dict) else None,
        "root": doc.get("root"),
        "state": doc.get("state"),
    }
    return {k: Path(os.path.abspath(v)) for k, v in found.items() if isinstance(v, str) and v}


def _runsc(ctx: _Paths, t: Mapping[str, Any]) -> RunscSection:
    chk = ctx.chk
    mode = _static_default(RunscSection, "mode")
    if "mode" in t:
        mode = chk.mode("runsc.mode", t["mode"], mode)
    size = _static_default(RunscSection, "pipe_size")
    if "pipe_size" in t:
        high, why = _pipe_max_size()
        size = chk.size(
            "runsc.pipe_size", t["pipe_size"], low=_PIPE_MIN, high=high, high_why=why, fallback=size
        )
    return RunscSection(fifo=ctx.path("runsc.fifo", t), mode=mode, pipe_size=size)


def _pipe_max_size() -> tuple[int, str]:
    """The largest pipe buffer an unprivileged F_SETPIPE_SZ may ask for, and why."""
    try:
        with open(_PIPE_MAX_FILE, encoding="ascii") as f:
            return int(f.read().strip()), "this kernel's fs.pipe-max-size"
    except (OSError, ValueError):
        return 1 << 20, "Linux's default fs.pipe-max-size"


def _cni(ctx: _Paths, t: Mapping[str, Any]) -> CniSection:
    """`[cni]`; `conf_dir` left "" is the agent's own directory (`write_default`)."""
    chk = ctx.chk
    bin_dirs: tuple[Path, ...] = _static_default(CniSection, "bin_dirs")
    if "bin_dirs" in t:
        bin_dirs = chk.directories("cni.bin_dirs", t["bin_dirs"], bin_dirs)
    subnet: str = _static_default(CniSection, "subnet")
    if "subnet" in t:
        subnet = chk.private_subnet("cni.subnet", t["subnet"], subnet)
    conf_dir = ctx.path("cni.conf_dir", t)
    return CniSection(
        bin_dirs=bin_dirs,
        conf_dir=conf_dir,
        write_default="cni.conf_dir" in ctx.derived,
        subnet=subnet,
    )


def _preseed(ctx: _Paths, t: Mapping[str, Any]) -> PreseedSection:
    chk = ctx.chk
    flags: dict[str, bool] = {}
    for name in ("enabled", "all_platforms", "skip_missing", "watch", "pin", "unpack"):
        flags[name] = _static_default(PreseedSection, name)
        if name in t:
            flags[name] = chk.boolean(f"preseed.{name}", t[name], flags[name])
    labels = chk.labels("preseed.labels", t["labels"]) if "labels" in t else {}
    parallel = 0
    if "parallel" in t:
        hint = "use 0 for the number of CPUs (at most 4), or a count of imports at once, e.g. 2"
        parallel = chk.integer_in("preseed.parallel", t["parallel"], 0, 64, hint) or 0
    return PreseedSection(
        dir=ctx.path("preseed.dir", t),
        record=ctx.path("preseed.record", t),
        labels=MappingProxyType(labels),
        parallel=parallel,
        **flags,
    )


def _metrics(chk: Checker, t: Mapping[str, Any]) -> MetricsSection:
    enabled = _static_default(MetricsSection, "enabled")
    if "enabled" in t:
        enabled = chk.boolean("metrics.enabled", t["enabled"], enabled)
    host, port = _static_default(MetricsSection, "host"), _static_default(MetricsSection, "port")
    if "listen" in t:
        host, port = chk.listen("metrics.listen", t["listen"], (host, port))
    return MetricsSection(enabled=enabled, host=host, port=port)


def _supervisor(chk: Checker, t: Mapping[str, Any]) -> SupervisorSection:
    spawn = _static_default(SupervisorSection, "spawn")
    if "spawn" in t:
        spawn = chk.choice("supervisor.spawn", t["spawn"], SPAWN_MODES, spawn, "spawn mode")
    return SupervisorSection(spawn=spawn)


def _cross_check(ctx: _Paths, cfg: AgentConfig, raw_ready_timeout: object) -> None:
    """Checks that involve several keys; `raw_ready_timeout` is as written, if it was."""
    chk, ctd = ctx.chk, cfg.containerd
    derived = ctx.derived
    chk.socket_length(
        "containerd.address",
        ctd.address,
        suffix=".ttrpc" if ctd.generate_config else "",
        derived="containerd.address" in derived,
    )
    chk.socket_length("control.socket", cfg.control.socket, derived="control.socket" in derived)
    files = {
        "containerd.config": ctd.config,
        "containerd.address": ctd.address,
        "containerd.root": ctd.root,
        "containerd.state": ctd.state,
        "containerd.tmpdir": ctd.tmpdir,
        "runsc.fifo": cfg.runsc.fifo,
        "cni.conf_dir": cfg.cni.conf_dir,
        "preseed.dir": cfg.preseed.dir,
        "preseed.record": cfg.preseed.record,
        "log.json_file": cfg.log.json_file,
        "control.socket": cfg.control.socket,
    }
    seen: dict[Path, str] = {}
    for key, path in files.items():
        if path is None:
            continue
        if path in seen:
            chk.problem(key, f"{str(path)!r} is also {seen[path]}; give each its own path")
        else:
            seen[path] = key
    policies = cfg.policy_set()
    deadline = policies.for_dn(CONTAINERD_DN).healthy_deadline
    if deadline is not None and ctd.ready_timeout >= deadline:
        shown = raw_ready_timeout if isinstance(raw_ready_timeout, str) else None
        chk.problem(
            "containerd.ready_timeout",
            f"{shown or format_duration(ctd.ready_timeout)!r} is not shorter than the "
            f"healthy_deadline of {CONTAINERD_DN} ({format_duration(deadline)!r}), which would "
            "always fail the node first; use a shorter ready_timeout or a longer "
            "healthy_deadline",
        )
