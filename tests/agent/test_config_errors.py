"""Every kind of bad config is refused with exact messages naming file, key, value and fix."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from actors.config import ConfigError, load_config

INSTALL = (
    "install containerd (Debian: apt-get install containerd) or set containerd.binary to its path"
)
DURATIONS = 'e.g. "500ms", "5s", "2m" or "1h30m"'


def problems_of(short_dir: Path, env: dict[str, str], text: str) -> list[str]:
    """Loads `text` as <short_dir>/agent.toml; returns the problems it must have."""
    path = short_dir / "agent.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_config(path, env=env)
    assert str(caught.value) == "\n".join(caught.value.problems)
    return caught.value.problems


def test_unknown_key_is_refused_with_a_did_you_mean(short_dir: Path, env: dict[str, str]) -> None:
    text = '[contianerd]\n[containerd]\nadress = "/tmp/x.sock"\n[policy."root"]\ngrace = "5s"\n'
    assert problems_of(short_dir, env, text) == [
        f"key 'contianerd' in {short_dir}/agent.toml: unknown key; did you mean 'containerd'?",
        f"key 'containerd.adress' in {short_dir}/agent.toml: unknown key; did you mean 'address'?",
        f"key 'policy.root.grace' in {short_dir}/agent.toml: unknown key; "
        "did you mean 'grace_period'?",
    ]


def test_unknown_key_with_no_close_match_lists_the_allowed_keys(
    short_dir: Path, env: dict[str, str]
) -> None:
    assert problems_of(short_dir, env, "[runsc]\nzzz = 1\n") == [
        f"key 'runsc.zzz' in {short_dir}/agent.toml: unknown key; "
        "allowed here: 'fifo', 'mode', 'pipe_size', 'binary', 'platform', 'flags'"
    ]


def test_wrong_types_name_the_toml_type_and_what_to_use(
    short_dir: Path, env: dict[str, str]
) -> None:
    text = (
        'log = "stderr"\n'
        '[preseed]\nenabled = "yes"\nlabels = { a = 1 }\n'
        "[metrics]\nlisten = 9464\n"
        "[containerd]\nroot = 5\n"
    )
    f = f"{short_dir}/agent.toml"
    assert problems_of(short_dir, env, text) == [
        f"key 'containerd.root' in {f}: 5 is an integer; use a path, or \"\" for the default",
        f"key 'preseed.enabled' in {f}: 'yes' is a string; use true or false",
        f"key 'preseed.labels.a' in {f}: 1 is an integer; use a string",
        f"key 'log' in {f}: 'stderr' is a string; use a table",
        f"key 'metrics.listen' in {f}: 9464 is an integer; use a string \"host:port\"",
    ]


def test_bad_durations_are_refused_saying_how_to_write_one(
    short_dir: Path, env: dict[str, str]
) -> None:
    text = (
        '[policy."root.containerd"]\n'
        'grace_period = "5 s"\n'
        "backoff_initial = 5\n"
        'backoff_max = "-5s"\n'
        'restart_window = "0s"\n'
        'heartbeat_interval = "never"\n'
        'healthy_deadline = "9000h"\n'
    )
    k = 'key \'policy."root.containerd".'
    f = f"in {short_dir}/agent.toml"
    assert problems_of(short_dir, env, text) == [
        f"{k}backoff_initial' {f}: 5 is not a duration: a bare number has no unit; "
        f"write a string, {DURATIONS}",
        f"{k}backoff_max' {f}: '-5s' is negative; use a duration >= 0, {DURATIONS}",
        f"{k}restart_window' {f}: '0s' is zero; use a duration > 0, e.g. \"1s\"",
        f"{k}grace_period' {f}: '5 s' is not a duration; use {DURATIONS}",
        f"{k}healthy_deadline' {f}: '9000h' is longer than a year; use {DURATIONS}, "
        'or "off" to turn it off',
        f"{k}heartbeat_interval' {f}: 'never' is not a duration; use {DURATIONS}, "
        'or "off" to turn it off',
    ]


def test_impossible_policy_numbers_are_refused(short_dir: Path, env: dict[str, str]) -> None:
    text = (
        '[policy."root.*"]\n'
        "backoff_multiplier = 0.5\n"
        "backoff_jitter = 1.0\n"
        "max_restarts = -1\n"
        '[policy."root"]\n'
        "backoff_jitter = -0.1\n"
        'max_restarts = "many"\n'
    )
    k = 'key \'policy."root.*".'
    f = f"in {short_dir}/agent.toml"
    assert problems_of(short_dir, env, text) == [
        f"{k}backoff_multiplier' {f}: 0.5 is out of range; use a number >= 1 and <= 10, e.g. 1.5",
        f"{k}backoff_jitter' {f}: 1.0 is out of range; use a number >= 0 and < 1, e.g. 0.5",
        f"{k}max_restarts' {f}: -1 is negative; use an integer from 0 to 1000000, "
        'or "off" to never give up',
        f"key 'policy.root.backoff_jitter' {f}: -0.1 is negative; "
        "use a number >= 0 and < 1, e.g. 0.5",
        f"key 'policy.root.max_restarts' {f}: 'many' is a string; "
        'use an integer from 0 to 1000000, or "off" to never give up',
    ]


def test_patterns_that_can_match_no_dn_are_refused(short_dir: Path, env: dict[str, str]) -> None:
    text = '[policy."Root.X"]\n[policy."containerd.*"]\n[policy."root..x"]\n[policy."*.preseed"]\n'
    f = f"in {short_dir}/agent.toml"
    hint = (
        "use names of [a-z0-9_] joined by dots, with the wildcards * and ?, "
        'e.g. "root.containerd" or "root.containerd.*"'
    )
    assert problems_of(short_dir, env, text) == [
        f"key 'policy.\"Root.X\"' {f}: 'Root.X' is not a DN pattern; {hint}",
        f"key 'policy.\"containerd.*\"' {f}: 'containerd.*' matches no node: every DN starts "
        "with 'root'; use e.g. \"root.containerd.*\"",
        f"key 'policy.\"root..x\"' {f}: 'root..x' is not a DN pattern; {hint}",
    ]


def test_a_world_writable_or_unusable_fifo_mode_is_refused(
    short_dir: Path, env: dict[str, str]
) -> None:
    f = f"key 'runsc.mode' in {short_dir}/agent.toml"
    assert problems_of(short_dir, env, '[runsc]\nmode = "0666"\n') == [
        f"{f}: '0666' is world-writable; use a mode without the 0002 bit, e.g. \"0600\""
    ]
    assert problems_of(short_dir, env, "[runsc]\nmode = 0o600\n") == [
        f'{f}: 384 is an integer; write the mode as an octal string, e.g. "0600" '
        "(TOML integers are decimal)"
    ]
    assert problems_of(short_dir, env, '[runsc]\nmode = "0400"\n') == [
        f"{f}: '0400' does not let the owner read and write it (the agent reads it and holds "
        'a write end open); use e.g. "0600" or "0660"'
    ]
    assert problems_of(short_dir, env, '[runsc]\nmode = "4600"\n') == [
        f'{f}: \'4600\' has bits besides the permissions; use e.g. "0600" or "0660"'
    ]
    assert problems_of(short_dir, env, '[runsc]\nmode = "rw"\n') == [
        f'{f}: \'rw\' is not an octal mode; use e.g. "0600" or "0660"'
    ]


def test_pipe_sizes_outside_what_the_kernel_allows_are_refused(
    short_dir: Path, env: dict[str, str]
) -> None:
    pipe_max = int(Path("/proc/sys/fs/pipe-max-size").read_text())
    max_text = f"{pipe_max // 1048576}MiB" if pipe_max % 1048576 == 0 else f"{pipe_max}B"
    text = '[runsc]\npipe_size = "2GiB"\n'
    f = f"key 'runsc.pipe_size' in {short_dir}/agent.toml"
    assert problems_of(short_dir, env, text) == [
        f"{f}: '2GiB' is out of range; use a size from 4KiB to {max_text} "
        "(this kernel's fs.pipe-max-size)"
    ]
    assert problems_of(short_dir, env, "[runsc]\npipe_size = 100\n") == [
        f"{f}: 100 is out of range; use a size from 4KiB to {max_text} "
        "(this kernel's fs.pipe-max-size)"
    ]
    assert problems_of(short_dir, env, '[runsc]\npipe_size = "1 MB"\n') == [
        f'{f}: \'1 MB\' is not a size; use a number of bytes or e.g. "64KiB", "1MiB"'
    ]


def test_a_socket_path_too_long_for_a_unix_socket_is_refused(
    short_dir: Path, env: dict[str, str]
) -> None:
    long_socket = "/tmp/" + "x" * 100 + ".sock"
    assert problems_of(short_dir, env, f'[control]\nsocket = "{long_socket}"\n') == [
        f"key 'control.socket' in {short_dir}/agent.toml: {long_socket!r} is too long for a "
        "unix socket: 110 bytes, and at most 107 are allowed; use a shorter path"
    ]


def test_a_long_state_dir_is_refused_for_the_sockets_it_would_hold(
    short_dir: Path, env: dict[str, str]
) -> None:
    state = "/tmp/" + "y" * 70
    address = f"{state}/containerd/containerd.sock"
    f = f"in {short_dir}/agent.toml"
    assert problems_of(short_dir, env, f'state_dir = "{state}"\n') == [
        f"key 'containerd.address' {f}: {address!r} is too long for a unix socket: 108 bytes "
        f"with '.ttrpc' appended ({address + '.ttrpc'!r}), and at most 107 are allowed; "
        "use a shorter state_dir or set containerd.address",
    ]
    state = "/tmp/" + "y" * 100
    address = f"{state}/containerd/containerd.sock"
    assert problems_of(short_dir, env, f'state_dir = "{state}"\n') == [
        f"key 'containerd.address' {f}: {address!r} is too long for a unix socket: 138 bytes "
        f"with '.ttrpc' appended ({address + '.ttrpc'!r}), and at most 107 are allowed; "
        "use a shorter state_dir or set containerd.address",
        f"key 'control.socket' {f}: '{state}/control.sock' is too long for a unix socket: "
        "118 bytes, and at most 107 are allowed; use a shorter state_dir or set control.socket",
    ]


def test_a_missing_containerd_binary_says_how_to_install_it(
    short_dir: Path, env: dict[str, str]
) -> None:
    f = f"key 'containerd.binary' in {short_dir}/agent.toml"
    text = '[containerd]\nbinary = "no-such-containerd"\n'
    assert problems_of(short_dir, env, text) == [
        f"{f}: 'no-such-containerd' is not on PATH; {INSTALL}"
    ]
    text = '[containerd]\nbinary = "/nonexistent/containerd"\n'
    assert problems_of(short_dir, env, text) == [
        f"{f}: '/nonexistent/containerd' does not exist; {INSTALL}"
    ]
    text = f'[containerd]\nbinary = "{short_dir}/agent.toml"\n'
    assert problems_of(short_dir, env, text) == [
        f"{f}: '{short_dir}/agent.toml' is not an executable file; {INSTALL}"
    ]


def test_containerd_missing_from_path_is_found_on_containerd_path_else_refused(
    short_dir: Path, env: dict[str, str]
) -> None:
    env = {**env, "PATH": str(short_dir)}
    assert load_config(None, env=env).containerd.binary == shutil.which("containerd")
    text = '[containerd]\npath = "/nonexistent"\n'
    assert problems_of(short_dir, env, text) == [
        f"key 'containerd.binary' in {short_dir}/agent.toml: 'containerd' is not on PATH; {INSTALL}"
    ]


def test_a_missing_or_unreadable_user_containerd_config_is_refused(
    short_dir: Path, env: dict[str, str]
) -> None:
    f = f"key 'containerd.config' in {short_dir}/agent.toml"
    fix = 'give an existing containerd config file, or "" to have the agent generate one'
    text = '[containerd]\nconfig = "/nonexistent/ctd.toml"\n'
    assert problems_of(short_dir, env, text) == [
        f"{f}: '/nonexistent/ctd.toml' does not exist; {fix}"
    ]
    (short_dir / "ctd.toml").write_text("version = = 2\n")
    text = f'[containerd]\nconfig = "{short_dir}/ctd.toml"\n'
    assert problems_of(short_dir, env, text) == [
        f"{f}: '{short_dir}/ctd.toml' cannot be read as TOML: Invalid value "
        f"(at line 1, column 11); {fix}"
    ]


def test_an_address_that_disagrees_with_the_user_containerd_config_is_refused(
    short_dir: Path, env: dict[str, str]
) -> None:
    (short_dir / "ctd.toml").write_text('version = 2\n[grpc]\naddress = "/tmp/ctd.sock"\n')
    text = f'[containerd]\nconfig = "{short_dir}/ctd.toml"\naddress = "/tmp/other.sock"\n'
    assert problems_of(short_dir, env, text) == [
        f"key 'containerd.address' in {short_dir}/agent.toml: '/tmp/other.sock' differs from "
        f"grpc.address '/tmp/ctd.sock' in containerd.config '{short_dir}/ctd.toml'; "
        'leave it "" to use the file\'s'
    ]


def test_odd_values_of_the_other_sections_are_refused(short_dir: Path, env: dict[str, str]) -> None:
    text = (
        '[containerd]\npath = "bin:/usr/bin"\naddress = "unix:///tmp/c.sock"\n'
        '[log]\nmin_severity = "VERBOSE"\n'
        '[log.parse]\n"root.Containerd" = "glog"\n"root.containerd" = "klog"\n'
        '[metrics]\nlisten = "example.com:80"\n'
        '[supervisor]\nspawn = "fork"\n'
    )
    f = f"in {short_dir}/agent.toml"
    assert problems_of(short_dir, env, text) == [
        f"key 'containerd.path' {f}: 'bin:/usr/bin' has a relative directory 'bin'; "
        'use absolute directories, e.g. "/usr/sbin:/usr/bin:/sbin:/bin"',
        f"key 'containerd.address' {f}: 'unix:///tmp/c.sock' is not a path; "
        "give the unix socket's path without a scheme",
        f"key 'log.min_severity' {f}: 'VERBOSE' is not a severity; "
        'use one of "DEBUG", "INFO", "WARNING", "ERROR", "FATAL"',
        f"key 'log.parse.\"root.Containerd\"' {f}: 'root.Containerd' is not a DN pattern; "
        'use a DN such as "root.containerd" (it and its subtree), or "" for every DN',
        f"key 'log.parse.\"root.containerd\"' {f}: 'klog' is not a log format; "
        'use one of "raw", "glog", "logrus", "auto"',
        f"key 'metrics.listen' {f}: 'example.com:80' is not host:port; use an IP address and "
        'a port, e.g. "127.0.0.1:9464" or "[::1]:9464"',
        f"key 'supervisor.spawn' {f}: 'fork' is not a spawn mode; use one of \"zygote\", \"exec\"",
    ]


def test_two_keys_naming_the_same_file_are_refused(short_dir: Path, env: dict[str, str]) -> None:
    text = '[control]\nsocket = "/tmp/same"\n[runsc]\nfifo = "/tmp/same"\n'
    assert problems_of(short_dir, env, text) == [
        f"key 'control.socket' in {short_dir}/agent.toml: '/tmp/same' is also runsc.fifo; "
        "give each its own path"
    ]


def test_a_ready_timeout_the_healthy_deadline_would_cut_short_is_refused(
    short_dir: Path, env: dict[str, str]
) -> None:
    text = '[containerd]\nready_timeout = "90s"\n'
    assert problems_of(short_dir, env, text) == [
        f"key 'containerd.ready_timeout' in {short_dir}/agent.toml: '90s' is not shorter than "
        "the healthy_deadline of root.containerd ('1m'), which would always fail the node "
        "first; use a shorter ready_timeout or a longer healthy_deadline"
    ]
    text = '[policy."root.containerd"]\nhealthy_deadline = "20s"\n'
    assert problems_of(short_dir, env, text) == [
        f"key 'containerd.ready_timeout' in {short_dir}/agent.toml: '30s' is not shorter than "
        "the healthy_deadline of root.containerd ('20s'), which would always fail the node "
        "first; use a shorter ready_timeout or a longer healthy_deadline"
    ]


def test_several_problems_are_all_reported_at_once_in_schema_order(
    short_dir: Path, env: dict[str, str]
) -> None:
    text = (
        "bogus = 1\n"
        '[containerd]\nbinary = "no-such-containerd"\nready_timeout = "soon"\n'
        '[runsc]\nmode = "0777"\n'
        '[policy."root.containerd"]\nbackoff_jitter = 2\n'
    )
    f = f"in {short_dir}/agent.toml"
    assert problems_of(short_dir, env, text) == [
        f"key 'bogus' {f}: unknown key; allowed here: 'state_dir', 'containerd', 'runsc', "
        "'cri', 'cni', 'preseed', 'log', 'control', 'metrics', 'supervisor', 'policy'",
        f"key 'containerd.binary' {f}: 'no-such-containerd' is not on PATH; {INSTALL}",
        f"key 'containerd.ready_timeout' {f}: 'soon' is not a duration; use {DURATIONS}",
        f"key 'runsc.mode' {f}: '0777' is world-writable; use a mode without the 0002 bit, "
        'e.g. "0600"',
        f"key 'policy.\"root.containerd\".backoff_jitter' {f}: 2 is out of range; "
        "use a number >= 0 and < 1, e.g. 0.5",
    ]


def test_a_file_that_is_not_toml_or_not_there_is_one_problem(
    short_dir: Path, env: dict[str, str]
) -> None:
    assert problems_of(short_dir, env, "[containerd\n") == [
        f"config file '{short_dir}/agent.toml' is not valid TOML: expected ']' at the end of "
        "a table declaration (at line 1, column 12)"
    ]
    with pytest.raises(ConfigError) as caught:
        load_config(short_dir / "absent.toml", env=env)
    assert caught.value.problems == [
        f"config file '{short_dir}/absent.toml' cannot be read: no such file or directory"
    ]


def test_preseed_watch_pin_unpack_and_parallel_are_checked(
    short_dir: Path, env: dict[str, str]
) -> None:
    f = f"{short_dir}/agent.toml"
    text = '[preseed]\nwatch = "no"\npin = 1\nparallel = -1\n'
    assert problems_of(short_dir, env, text) == [
        f"key 'preseed.watch' in {f}: 'no' is a string; use true or false",
        f"key 'preseed.pin' in {f}: 1 is an integer; use true or false",
        f"key 'preseed.parallel' in {f}: -1 is not an integer from 0 to 64; use 0 for the "
        "number of CPUs (at most 4), or a count of imports at once, e.g. 2",
    ]
    (short_dir / "ok.toml").write_text("[preseed]\nwatch = false\nunpack = true\nparallel = 3\n")
    cfg = load_config(short_dir / "ok.toml", env=env).preseed
    assert (cfg.watch, cfg.pin, cfg.unpack, cfg.parallel) == (False, True, True, 3)


@pytest.mark.parametrize("value", ["63", "1000001", "true", '"8192"', "8192.0"])
def test_log_keep_outside_its_bounds_is_refused(
    short_dir: Path, env: dict[str, str], value: str
) -> None:
    shown = {"true": "True", '"8192"': "'8192'"}.get(value, value)
    assert problems_of(short_dir, env, f"[log]\nkeep = {value}\n") == [
        f"key 'log.keep' in {short_dir}/agent.toml: {shown} is not an integer from 64 to "
        "1000000; it is how many entries the agent keeps in memory per DN for `logs`, e.g. 8192"
    ]


def test_log_keep_is_what_the_log_tree_keeps_and_defaults_to_its_default(
    short_dir: Path, env: dict[str, str]
) -> None:
    from actors.logtree import DEFAULT_MAX_ENTRIES_PER_DN

    (short_dir / "ok.toml").write_text("[log]\nkeep = 64\n")
    assert load_config(short_dir / "ok.toml", env=env).log.keep == 64
    (short_dir / "none.toml").write_text("")
    assert load_config(short_dir / "none.toml", env=env).log.keep == DEFAULT_MAX_ENTRIES_PER_DN
