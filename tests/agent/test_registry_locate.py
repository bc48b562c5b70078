"""The registry of running agents and the one rule that picks the agent a command talks to."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from actors.agent.locate import LocateError, locate
from actors.agent.registry import AgentEntry, entry_path, live_agents, read_entries, register
from actors.exit_codes import ExitCode


def entry(state: Path, pid: int | None = None) -> AgentEntry:
    return AgentEntry(
        pid=os.getpid() if pid is None else pid,
        version="0.1.0",
        state_dir=str(state),
        control_socket=str(state / "control.sock"),
        containerd_address=str(state / "containerd" / "containerd.sock"),
        config=None,
        cwd="/",
    )


@pytest.fixture
def listening(short_dir: Path) -> Iterator[list[socket.socket]]:
    """Sockets that listen, closed at the end."""
    socks: list[socket.socket] = []
    yield socks
    for s in socks:
        s.close()


def listen(state: Path, socks: list[socket.socket]) -> None:
    state.mkdir(parents=True, exist_ok=True)
    s = socket.socket(socket.AF_UNIX)
    s.bind(str(state / "control.sock"))
    s.listen()
    socks.append(s)


def test_an_entry_is_one_file_per_state_dir_and_goes_away_only_if_still_ours(
    short_dir: Path,
) -> None:
    reg = short_dir / "reg"
    mine = register(entry(short_dir / "a"), reg)
    assert mine.path == entry_path(reg, short_dir / "a")
    assert oct(mine.path.stat().st_mode & 0o777) == "0o644"
    assert read_entries(reg) == [entry(short_dir / "a")]
    register(entry(short_dir / "a", pid=1), reg)  # a later agent of the same state dir
    mine.remove()
    assert read_entries(reg) == [entry(short_dir / "a", pid=1)]


def test_stale_entries_and_junk_are_not_live_agents(short_dir: Path, listening) -> None:
    reg = short_dir / "reg"
    listen(short_dir / "live", listening)
    register(entry(short_dir / "live"), reg)
    register(entry(short_dir / "no-socket"), reg)
    register(entry(short_dir / "dead", pid=2**22 + 7), reg)
    (reg / "junk.json").write_text("{not json")
    assert live_agents(reg) == [entry(short_dir / "live")]


def test_the_rule_socket_then_config_then_state_then_the_registry_then_the_cwd(
    short_dir: Path, listening, monkeypatch: pytest.MonkeyPatch
) -> None:
    reg = short_dir / "reg"
    env = {"NODE_CONTAINERD_REGISTRY": str(reg)}
    monkeypatch.chdir(short_dir)
    nobody = locate(env=env)
    assert (nobody.socket, nobody.where) == (
        f"{short_dir}/.node-containerd/control.sock",
        f"no agent registered in '{reg}', and no control socket at "
        f"'{short_dir}/.node-containerd/control.sock'",
    )
    listen(short_dir / "a", listening)
    register(entry(short_dir / "a"), reg)
    assert locate(env=env).entry == entry(short_dir / "a")
    assert locate(socket="/x.sock", env=env).socket == "/x.sock"
    (short_dir / "c.toml").write_text('[control]\nsocket = "/y.sock"\n')
    assert locate(config=str(short_dir / "c.toml"), env=env).socket == "/y.sock"
    by_env = locate(env={**env, "NODE_CONTAINERD_STATE": str(short_dir / "a")})
    assert by_env.entry == entry(short_dir / "a")
    elsewhere = locate(state=str(short_dir / "z"), env=env)
    assert (elsewhere.entry, elsewhere.socket) == (None, f"{short_dir}/z/control.sock")


def test_two_live_agents_and_no_choice_is_a_usage_error_listing_them(
    short_dir: Path, listening
) -> None:
    reg = short_dir / "reg"
    for name in ("b", "a"):
        listen(short_dir / name, listening)
        register(entry(short_dir / name), reg)
    with pytest.raises(LocateError) as caught:
        locate(env={"NODE_CONTAINERD_REGISTRY": str(reg)})
    assert caught.value.code == ExitCode.USAGE
    assert str(caught.value).splitlines() == [
        f"2 node-containerd agents are running on this machine (registered in '{reg}'); "
        "choose one with --state DIR:",
        f"  {short_dir}/a  pid {os.getpid()}, config the default profile",
        f"  {short_dir}/b  pid {os.getpid()}, config the default profile",
    ]
    chosen = locate(state=str(short_dir / "b"), env={"NODE_CONTAINERD_REGISTRY": str(reg)})
    assert chosen.entry == entry(short_dir / "b")


def test_the_agents_config_is_loaded_as_the_agent_resolved_it(short_dir: Path, listening) -> None:
    reg = short_dir / "reg"
    (short_dir / "agent.toml").write_text('[preseed]\ndir = "images"\n')
    listen(short_dir / "st", listening)
    register(
        AgentEntry(
            pid=os.getpid(),
            version="0.1.0",
            state_dir=str(short_dir / "st"),
            control_socket=str(short_dir / "st" / "control.sock"),
            containerd_address=str(short_dir / "st" / "c.sock"),
            config=str(short_dir / "agent.toml"),
            cwd=str(short_dir),
        ),
        reg,
    )
    cfg = locate(env={"NODE_CONTAINERD_REGISTRY": str(reg)}).load_config()
    assert (cfg.state_dir, cfg.preseed.dir) == (short_dir / "st", short_dir / "images")
    assert Path.cwd() != short_dir
