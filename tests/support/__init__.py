"""The project's test kit: what tests and benchmarks share, one module per concept.

Imported by name from the checkout (`from tests.support.agent import AgentUnderTest`);
pytest puts the checkout on the path (`pyproject.toml`), `bench/NAME` runs
`python -m bench.NAME` with it on `PYTHONPATH`, and no file edits the import path. What the
supervision library ships to test with (runnables, `Probe`, the simulation, `Harness`)
is in `actors.supervisor.testing`, not here.

Modules:
    project: the checkout, the CLI, short temp dirs, how a child Python imports the kit.
    waiting: the one `wait_until`, and `in_thread`.
    processes: processes as `/proc` shows them.
    containerd_daemon: the one containerd fixture builder (`ContainerdDaemon`).
    containerd_matrix: which containerd a test run uses (`NC_CONTAINERD`).
    specs: the one builder of runnables' specs (`containerd_spec`, `containerd_spec_in`).
    ctr: what a test containerd holds, read with `ctr`.
    agent: the one agent-under-test driver (`AgentUnderTest`).
    pods: the agent set up for pods, and the pod images.
    fake_systemd: the one stand-in for systemd's notify socket.
    nodes: Node doubles for the containerd actors (`FakeNode`, `MemorySink`).
    containerd_lifecycle: runs of the pure `ContainerdLifecycle` brought to a phase.
    control: the control socket's test doubles.
    prometheus: reading the metrics exposition.
    log_entries: a fake wall clock and log entry builders.
    faults: a tarball big enough to fault in, a small full disk.
    preseed_archives: the preseed tests' archives, one image made every way.
    purity: what a pure module may import.
    images: the image tarball writer, and images made by the real tools.
    corpus: the bad-input corpus of the importer, and its CLI.
    programs: what the tests run in child processes.
"""
