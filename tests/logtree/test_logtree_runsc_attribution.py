"""Whose is each runsc line: `RunscAttribution` on recorded real runsc output and on cases.

The recordings (`data/runsc-*.log.gz`, described in `data/runsc-pods.json`) are the
`root.containerd.runsc` log of real pods under Debian 12's runsc: two pods started at the
same instant, and a pod started, run and removed beside a running one. A record that
names one pod's sandbox or container ID can only be that pod's: that is how the tests
know an attribution is right without trusting the attribution itself.
"""

from __future__ import annotations

import pytest

from actors.logtree import LogTree, ParsedEntry, RawEntry
from actors.logtree.parse import ParseFormat, StreamParser
from actors.logtree.parse.runsc import RunscAttribution, command_container
from tests.support.log_entries import RUNSC_PODS, runsc_recording

PODS = RUNSC_PODS
NOW = 1_796_637_000.0
DN = "root.containerd.runsc"


def replay(data: bytes, chunk: int) -> list:
    """The records of `data` fed `chunk` bytes at a time, stored in a log tree."""
    tree = LogTree()
    attribution = RunscAttribution()
    parser = StreamParser(
        ParseFormat.GLOG, attribute=attribution.annotate, hold=attribution.hold_back
    )
    for start in range(0, len(data), chunk):
        parser.feed(data[start : start + chunk], NOW)
        batch = parser.take()
        if batch is not None:
            tree.write_parsed(DN, batch)
    parser.flush_line(NOW)
    parser.close_entry()
    batch = parser.take(keep_open=False)
    if batch is not None:
        tree.write_parsed(DN, batch)
    return tree.read(DN, backlog=None).backlog


def recording(name: str) -> tuple[bytes, dict[str, str]]:
    """A recording's bytes, and {each pod's sandbox and container ID: its sandbox}."""
    pods = PODS[name]["pods"]
    owner = {p["sandbox"]: p["sandbox"] for p in pods}
    return runsc_recording(name), owner | {p["container"]: p["sandbox"] for p in pods}


def text_of(entry: ParsedEntry | RawEntry) -> bytes:
    return entry.data if isinstance(entry, RawEntry) else entry.raw


def named(entry: ParsedEntry | RawEntry, owner: dict[str, str]) -> set[str]:
    """The sandboxes whose IDs (or whose containers' IDs) the record names."""
    text = text_of(entry)
    return {sandbox for key, sandbox in owner.items() if key.encode() in text}


@pytest.mark.parametrize("name", sorted(PODS))
@pytest.mark.parametrize("chunk", [65536, 4096, 333])
def test_no_record_of_real_runsc_output_is_attributed_to_a_pod_it_is_not_about(name, chunk):
    data, owner = recording(name)
    records = replay(data, chunk)
    assert len(records) > 4000
    for record in records:
        fields = record.fields or {}
        sandbox, container = fields.get("sandbox"), fields.get("container")
        if sandbox is not None:
            assert named(record, owner) <= {sandbox}, text_of(record)[:200]
            assert sandbox in owner
        if container is not None:
            assert owner[container] == (sandbox or owner[container])
            assert named(record, owner) <= {owner[container]}


def test_a_pod_run_beside_a_running_one_has_at_least_95_percent_of_its_lines_attributed():
    data, owner = recording("runsc-pod-beside-pod.log.gz")
    records = replay(data, 65536)
    attributed = [r for r in records if r.fields and "sandbox" in r.fields]
    assert len(attributed) >= 0.95 * len(records)
    raws = [r for r in records if isinstance(r, RawEntry)]
    assert len(raws) > 1000  # seccomp dumps past the continuation cap
    assert all(r.fields and r.fields["sandbox"] in owner for r in raws)
    by_pod = {p["sandbox"]: 0 for p in PODS["runsc-pod-beside-pod.log.gz"]["pods"]}
    for r in attributed:
        by_pod[r.fields["sandbox"]] += 1
    assert min(by_pod.values()) > 1500


def test_pods_started_at_once_leave_their_gofers_startup_lines_unattributed_not_guessed():
    data, owner = recording("runsc-two-pods-at-once.log.gz")
    records = replay(data, 65536)
    host = [r for r in records if isinstance(r, ParsedEntry) and r.pid not in (0, 1)]
    namespaced = [r for r in records if isinstance(r, ParsedEntry) and r.pid == 1]
    assert sum(1 for r in host if r.fields) >= len(host) - 2  # a banner line cut off by a batch
    # Both pods' gofers start together: their lines (pid 1 in each one's own pid
    # namespace) could be either's, but for those that name their own bundle or sandbox.
    by_args = [r for r in namespaced if r.text.startswith("Args: [runsc-gofer")]
    assert len(by_args) == 8 and all(r.fields and r.fields["sandbox"] in owner for r in by_args)
    seccomp = [r for r in namespaced if r.file == "seccomp.go"]
    assert seccomp and not any(r.fields for r in seccomp)


# ---------------------------------------------------------------- the rules, case by case

SB = "a" * 64
APP = "b" * 64
OTHER = "c" * 64
ROOT = "--root /run/runsc"
#: A continuation line longer than the parser keeps: a raw record of its own.
LONG = "x" * 5000


def glog(pid: int, message: str, file: str = "x.go", level: str = "D") -> str:
    return f"{level}1207 10:02:09.000001 {pid:>7} {file}:1] {message}\n"


def banner(pid: int, args: str) -> str:
    return glog(pid, "*" * 27, "main.go") + glog(pid, f"Args: [{args}]", "main.go")


def run(*chunks: str) -> list[tuple[str, str | None, str | None]]:
    """`(message, sandbox, container)` of each record, the chunks fed and taken one by one."""
    return [(m, s, c) for _, m, s, c in run_with_pids(*chunks)]


def run_with_pids(*chunks: str) -> list[tuple[int | None, str, str | None, str | None]]:
    """`(pid, message, sandbox, container)` of each record (pid None for a raw one)."""
    tree = LogTree()
    attribution = RunscAttribution()
    parser = StreamParser(
        ParseFormat.GLOG, attribute=attribution.annotate, hold=attribution.hold_back
    )
    for chunk in chunks:
        parser.feed(chunk.encode(), NOW)
        parser.close_entry()
        batch = parser.take(keep_open=False)
        if batch is not None:
            tree.write_parsed(DN, batch)
    out = []
    for r in tree.read(DN, backlog=None).backlog:
        fields = r.fields or {}
        pid, text = (None, r.data.decode()) if isinstance(r, RawEntry) else (r.pid, r.text)
        out.append((pid, text, fields.get("sandbox"), fields.get("container")))
    return out


def create_sandbox(pid: int, sandbox: str = SB) -> str:
    return (
        banner(pid, f"/usr/bin/runsc --debug {ROOT} create --bundle /b/{sandbox} {sandbox}")
        + glog(pid, f"Creating new sandbox for container, cid: {sandbox}")
        + glog(
            pid,
            f"Starting gofer: /proc/self/exe [runsc-gofer --root=/r gofer --bundle /b/{sandbox} --io-fds=7]",
        )
    )


def test_a_host_process_is_its_pid_from_its_banner_and_learns_its_sandbox_later():
    records = run(
        banner(
            10, f"/usr/bin/runsc {ROOT} --log /l.json create --bundle /b/{APP} --pid-file /p {APP}"
        )
        + glog(10, 'Spec:\n{\n  "ociVersion": "1.0.2"\n}')
        + glog(10, f"Creating new container, cid: {APP}, sandbox: {SB}")
        + LONG
        + "\n"
        + glog(10, "Exiting with status: 0", "main.go", "I")
        + glog(10, "a line of pid 10 after it exited"),
    )
    assert records == [
        ("*" * 27, SB, APP),
        (
            f"Args: [/usr/bin/runsc {ROOT} --log /l.json create --bundle /b/{APP} --pid-file /p {APP}]",
            SB,
            APP,
        ),
        ("Spec:", SB, APP),
        (f"Creating new container, cid: {APP}, sandbox: {SB}", SB, APP),
        (LONG[:1024], SB, APP),  # past the parser's bounds: a raw record, same write
        ("Exiting with status: 0", SB, APP),
        ("a line of pid 10 after it exited", None, None),
    ]


def test_a_banner_in_an_earlier_batch_keeps_what_it_had_and_later_lines_get_the_sandbox():
    records = run(
        glog(10, "*" * 27, "main.go"),
        glog(10, f"Args: [runsc kill --all {APP} 9]", "main.go") + glog(10, "signal"),
        glog(11, "*" * 27, "main.go") + glog(11, f"Args: [runsc state {OTHER}]", "main.go"),
    )
    assert records == [
        ("*" * 27, None, None),
        (f"Args: [runsc kill --all {APP} 9]", None, APP),
        ("signal", None, APP),
        ("*" * 27, None, OTHER),
        (f"Args: [runsc state {OTHER}]", None, OTHER),
    ]


def test_a_new_banner_under_the_same_pid_starts_over_and_a_command_without_an_id_is_nobodys():
    records = run(
        banner(10, f"runsc delete {SB}") + glog(10, "one"),
        banner(10, "runsc list") + glog(10, "two") + LONG + "\n",
    )
    assert [(s, c) for _, s, c in records] == [(None, SB)] * 3 + [(None, None)] * 4


def test_a_go_crash_and_the_lines_after_it_are_nobodys():
    records = run(
        banner(10, f"runsc boot --bundle=/b {SB}") + glog(10, "booting"),
        "panic: oops\ngoroutine 1\n" + LONG + "\n",
    )
    assert (
        records
        == [
            ("*" * 27, SB, SB),
            (f"Args: [runsc boot --bundle=/b {SB}]", SB, SB),
            ("booting", SB, SB),
            ("panic: oops", None, None),  # with its dump; pid 10 did not say it
            (LONG[:1024], None, None),
        ]
    )


def test_pid_1_lines_are_attributed_only_while_one_sandbox_can_have_written_them():
    gofer_args = f"Args: [runsc-gofer --root=/r gofer --bundle /b/{SB} --io-fds=7]"
    records = run_with_pids(
        create_sandbox(10),
        glog(1, "*" * 27, "main.go")
        + glog(1, gofer_args, "main.go")
        + glog(1, "syscall filter read", "seccomp.go"),
        create_sandbox(20, OTHER),
        glog(1, "syscall filter write", "seccomp.go")
        + glog(1, f'Mounting src: "/s/{OTHER}/shm"', "gofer.go"),
        banner(30, f"runsc start {SB}") + glog(30, "Exiting with status: 0", "main.go"),
        glog(1, "syscall filter openat", "seccomp.go")
        + glog(1, "sock read failed", "connection.go"),
        banner(40, f"runsc delete {SB}") + glog(40, "Exiting with status: 0", "main.go"),
        glog(1, "sock read failed", "connection.go"),
    )
    assert [(m, s, c) for pid, m, s, c in records if pid == 1] == [
        ("*" * 27, SB, SB),  # the only namespaced process starting is SB's gofer
        (gofer_args, SB, SB),
        ("syscall filter read", SB, SB),
        ("syscall filter write", None, None),  # both sandboxes' gofers are starting
        (f'Mounting src: "/s/{OTHER}/shm"', OTHER, OTHER),  # it names one of them
        ("syscall filter openat", OTHER, OTHER),  # SB was started: its gofer serves
        ("sock read failed", None, None),  # any live gofer may say this
        ("sock read failed", OTHER, OTHER),  # SB was deleted
    ]


def test_a_pid_1_process_nobody_announced_makes_every_pid_1_line_doubtful_until_deleted():
    records = run_with_pids(
        create_sandbox(10),
        glog(1, f"Args: [runsc-gofer --root=/r gofer --bundle /b/{APP} --io-fds=7]", "main.go")
        + glog(1, "syscall filter read", "seccomp.go"),
        banner(40, f"runsc delete {APP}") + glog(40, "Exiting with status: 0", "main.go"),
        glog(1, "syscall filter write", "seccomp.go"),
    )
    assert [(s, c) for pid, _, s, c in records if pid == 1] == [
        (None, None),
        (None, None),
        (SB, SB),
    ]


@pytest.mark.parametrize(
    ("args", "want"),
    [
        (
            f"[/usr/bin/runsc --debug --root /r --log /l create --bundle /b --pid-file /p {APP}]",
            ("runsc", "create", APP),
        ),
        (f"[runsc --root=/r kill --all {APP} 9]", ("runsc", "kill", APP)),
        (f"[runsc kill {APP} SIGTERM]", ("runsc", "kill", APP)),
        (f"[runsc kill {APP}]", ("runsc", "kill", APP)),
        (f"[runsc delete --force {APP}]", ("runsc", "delete", APP)),
        (f"[runsc exec --process /p.json --detach --pid-file /f {APP}]", ("runsc", "exec", APP)),
        (f"[runsc exec {APP} sh -c true]", None),
        ("[runsc-gofer --root=/r gofer --bundle /b --io-fds=7]", ("runsc-gofer", "gofer", "")),
        ("[runsc list]", None),
        ("[runsc --network=none do echo hi]", None),
        (f"[runsc create --bundle /b {APP}", None),  # cut: no closing bracket
    ],
)
def test_command_container_reads_which_container_a_runsc_command_is_about(args, want):
    assert command_container(args.encode()) == want


def test_a_banner_waits_for_the_next_batch_when_its_sandbox_is_not_said_yet():
    attribution = RunscAttribution()
    parser = StreamParser(
        ParseFormat.GLOG, attribute=attribution.annotate, hold=attribution.hold_back
    )
    tree = LogTree()
    first = glog(9, "before") + banner(10, f"runsc create --bundle /b/{APP} {APP}")
    second = glog(10, f"Creating new container, cid: {APP}, sandbox: {SB}")
    for chunk in (first, second):
        parser.feed(chunk.encode(), NOW)
        batch = parser.take()  # keep_open: the pump's take between reads
        if batch is not None:
            tree.write_parsed(DN, batch)
        if chunk is first:  # only the line before the banner left
            assert [e.text for e in tree.read(DN, backlog=None).backlog] == ["before"]
    parser.close_entry()
    tree.write_parsed(DN, parser.take(keep_open=False))
    got = [
        (e.text[:10], (e.fields or {}).get("sandbox")) for e in tree.read(DN, backlog=None).backlog
    ]
    assert got == [
        ("before", None),
        ("*" * 10, SB),
        ("Args: [run", SB),
        ("Creating n", SB),
    ]
