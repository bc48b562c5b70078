"""Pure rules: readiness decisions, the Version answer, arguments, command, exit text, sockets."""

from __future__ import annotations

import pytest

from actors.containerd.core.notify import NotifyMessage
from actors.containerd.core.readiness import (
    BecomeHealthy,
    Fail,
    ProbeVersion,
    ReadinessTracker,
)
from actors.containerd.core.spec import (
    ContainerdSpec,
    containerd_command,
    containerd_env,
    describe_exit,
)
from actors.containerd.core.version import VersionInfo, parse_version_response
from actors.containerd.stale import socket_paths
from tests.support.specs import containerd_spec_in

READY = NotifyMessage(ready=True, fields=(("READY", "1"),))
STATUS = NotifyMessage(status="loading", fields=(("STATUS", "loading"),))
INFO = VersionInfo(version="1.6.20~ds1", revision="1.6.20~ds1-1+deb12u3")


def tracker(mode: str = "notify") -> ReadinessTracker:
    return ReadinessTracker(
        address="/s/containerd.sock",
        notify_path="/s/notify.sock",
        timeout=10.0,
        started_at=100.0,
        mode=mode,
    )


# ---------------------------------------------------------------- readiness


def test_notify_mode_waits_for_ready_then_probes_with_the_remaining_time() -> None:
    t = tracker()
    assert t.start(100.0) == []
    assert t.notified(STATUS, 101.0) == []
    assert t.notified(READY, 102.5) == [ProbeVersion(7.5)]
    assert t.version_answered(INFO) == [BecomeHealthy(INFO)]
    assert t.ready


def test_a_second_ready_does_not_probe_again() -> None:
    t = tracker()
    t.notified(READY, 101.0)
    assert t.notified(READY, 101.5) == []


def test_version_mode_probes_at_once() -> None:
    assert tracker("version").start(100.0) == [ProbeVersion(10.0)]


def test_no_ready_by_the_deadline_fails_naming_the_notify_socket() -> None:
    t = tracker()
    assert t.deadline_passed() == [
        Fail(
            "containerd did not become ready within 10s: no READY=1 on notify socket '/s/notify.sock'"
        )
    ]
    assert t.notified(READY, 111.0) == []


def test_no_version_answer_by_the_deadline_fails_naming_the_socket() -> None:
    t = tracker()
    t.notified(READY, 101.0)
    assert t.deadline_passed() == [
        Fail(
            "containerd did not become ready within 10s: no answer to Version on '/s/containerd.sock'"
        )
    ]
    assert t.version_answered(INFO) == []


def test_a_failed_version_call_after_ready_fails() -> None:
    t = tracker()
    t.notified(READY, 101.0)
    assert t.version_failed("unavailable: connection refused") == [
        Fail(
            "containerd said READY=1 but did not answer Version on '/s/containerd.sock': "
            "unavailable: connection refused"
        )
    ]


def test_the_deadline_after_ready_changes_nothing() -> None:
    t = tracker()
    t.notified(READY, 101.0)
    t.version_answered(INFO)
    assert t.deadline_passed() == []


def test_an_unknown_mode_is_refused() -> None:
    with pytest.raises(ValueError) as e:
        tracker("guess")
    assert (
        str(e.value) == "readiness mode 'guess' is invalid: expected one of ('notify', 'version')"
    )


# ---------------------------------------------------------------- the Version answer


def test_a_version_response_is_decoded() -> None:
    data = b"\x0a\x0a1.6.20~ds1\x12\x041234"
    assert parse_version_response(data) == VersionInfo(version="1.6.20~ds1", revision="1234")


def test_unknown_fields_of_a_version_response_are_skipped() -> None:
    data = b"\x18\x96\x01\x0a\x013\x21" + bytes(8) + b"\x2a\x02zz"
    assert parse_version_response(data) == VersionInfo(version="3", revision="")


def test_a_truncated_version_response_is_refused() -> None:
    with pytest.raises(ValueError) as e:
        parse_version_response(b"\x0a\x10short")
    assert str(e.value) == "version response is invalid: truncated"


# ---------------------------------------------------------------- arguments, command, exit


def spec(**overrides: object) -> ContainerdSpec:
    """The spec of these tests: everything under `/s` (nothing there is touched)."""
    fields: dict[str, object] = {
        "binary": "/usr/bin/containerd",
        "path": "/usr/bin:/bin",
        **overrides,
    }
    return containerd_spec_in("/s", **fields)


def test_containerd_runs_with_its_config_under_a_parent_death_signal() -> None:
    assert containerd_command(spec(), "/usr/bin/setpriv") == [
        "/usr/bin/setpriv",
        "--pdeathsig",
        "KILL",
        "--",
        "/usr/bin/containerd",
        "--config",
        "/s/config.toml",
    ]
    assert containerd_command(spec(), None) == ["/usr/bin/containerd", "--config", "/s/config.toml"]


def test_containerd_environment_is_exactly_path_tmpdir_and_notify_socket() -> None:
    assert containerd_env(spec()) == {
        "PATH": "/usr/bin:/bin",
        "TMPDIR": "/s/tmp",
        "NOTIFY_SOCKET": "/s/containerd-notify.sock",
    }


def test_the_directory_of_a_containerd_elsewhere_comes_first_on_its_path() -> None:
    # A containerd of another release must find its own shims before /usr/bin's.
    assert containerd_env(spec(binary="/opt/ctd/bin/containerd"))["PATH"] == (
        "/opt/ctd/bin:/usr/bin:/bin"
    )
    moved = spec(binary="/opt/ctd/bin/containerd", path="/usr/bin:/opt/ctd/bin:/bin")
    assert containerd_env(moved)["PATH"] == "/opt/ctd/bin:/usr/bin:/bin"


@pytest.mark.parametrize(
    ("returncode", "text"),
    [
        (0, "exit status 0"),
        (1, "exit status 1"),
        (-9, "killed by signal SIGKILL"),
        (-15, "killed by signal SIGTERM"),
        (-77, "killed by signal 77"),
    ],
)
def test_exit_statuses_are_described_in_words(returncode: int, text: str) -> None:
    assert describe_exit(returncode) == text


# ---------------------------------------------------------------- socket paths


def test_socket_paths_come_from_the_config() -> None:
    config = (
        "version = 2\n"
        '[grpc]\n  address = "/s/c.sock"\n'
        '[ttrpc]\n  address = "/s/t.sock"\n'
        '[debug]\n  address = "/s/d.sock"\n'
    )
    assert socket_paths(config) == ["/s/c.sock", "/s/t.sock", "/s/d.sock"]


def test_socket_paths_default_as_containerd_does() -> None:
    assert socket_paths("version = 2\n") == [
        "/run/containerd/containerd.sock",
        "/run/containerd/containerd.sock.ttrpc",
    ]


def test_an_empty_debug_address_names_no_socket() -> None:
    config = '[grpc]\naddress = "/s/c.sock"\n[debug]\naddress = ""\n'
    assert socket_paths(config) == ["/s/c.sock", "/s/c.sock.ttrpc"]


def test_a_config_that_is_not_toml_is_refused() -> None:
    with pytest.raises(ValueError) as e:
        socket_paths("version = = 2")
    assert str(e.value).startswith("containerd config is not valid toml: ")
