"""The pod runtime keys ([runsc] binary/platform/flags, [cri]) and what they render to."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from actors.config import ConfigError, parse_config
from actors.containerd.core.version import ContainerdVersion
from actors.containerd.runtimes.binary import containerd_version_or_none
from actors.containerd.runtimes.config_file import render_containerd_config
from actors.containerd.runtimes.handlers import default_sandbox_image, pod_runtime_settings
from actors.containerd.runtimes.runsc.access import grant_search, named_grants, search_blocked_at
from actors.containerd.runtimes.runsc.launcher import render_helper, render_launcher
from actors.containerd.runtimes.runsc.launcher_main import split_command
from actors.containerd.runtimes.runsc.state import launcher_flags

SRC = "/etc/agent.toml"


def config(text: str, state: str = "/s"):
    env = {"PATH": os.environ.get("PATH", os.defpath), "NODE_CONTAINERD_STATE": state}
    return parse_config(text, source=SRC, env=env, check_binaries=False)


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as e:
        config(text)
    return e.value.problems


def fake_runsc(tmp_path: Path) -> Path:
    binary = tmp_path / "runsc"
    binary.write_text("#!/bin/sh\nexit 0\n")
    binary.chmod(0o755)
    return binary


def test_runsc_renders_as_the_runc_shim_running_the_launcher_with_its_root_in_the_state_dir(
    tmp_path: Path,
) -> None:
    cfg = config(
        f'[runsc]\nbinary = "{fake_runsc(tmp_path)}"\n'
        '[cri]\ndefault_runtime = "runsc"\nsandbox_image = "example.test/pause:1"\n'
    )
    text = render_containerd_config(cfg, ContainerdVersion(1, 6, 20))
    cri = tomllib.loads(text)["plugins"]["io.containerd.grpc.v1.cri"]
    assert cri["sandbox_image"] == "example.test/pause:1"
    assert cri["containerd"] == {
        "default_runtime_name": "runsc",
        "runtimes": {
            "runc": {"runtime_type": "io.containerd.runc.v2", "options": {"Root": "/s/runc"}},
            "runsc": {
                "runtime_type": "io.containerd.runc.v2",
                "options": {"BinaryName": "/s/runsc/launcher", "Root": "/s/runsc/root"},
            },
        },
    }
    assert cri["cni"] == {"bin_dir": "/usr/lib/cni", "conf_dir": "/s/cni/net.d"}


def test_both_renderers_get_the_same_settings_as_data(tmp_path: Path) -> None:
    cfg = config(f'[runsc]\nbinary = "{fake_runsc(tmp_path)}"\n')
    pods = pod_runtime_settings(cfg, version=ContainerdVersion(2, 1, 0), may_lower_oom=False)
    assert [(r.name, str(r.binary_name), str(r.root)) for r in pods.runtimes] == [
        ("runc", "None", "/s/runc"),
        ("runsc", "/s/runsc/launcher", "/s/runsc/root"),
    ]
    assert (pods.sandbox_image, pods.default_runtime) == ("registry.k8s.io/pause:3.10", "runc")
    assert pods.restrict_oom_score_adj is True


def test_no_runsc_on_path_registers_only_runc() -> None:
    cfg = config('[runsc]\nbinary = "no-such-runsc"\n')
    assert cfg.runsc.binary is None
    assert [r.name for r in pod_runtime_settings(cfg).runtimes] == ["runc"]


def test_the_sandbox_image_default_follows_containerds_version() -> None:
    assert default_sandbox_image(None) == "registry.k8s.io/pause:3.6"
    assert default_sandbox_image(ContainerdVersion(1, 6, 20)) == "registry.k8s.io/pause:3.6"
    assert default_sandbox_image(ContainerdVersion(1, 7, 24)) == "registry.k8s.io/pause:3.8"
    assert default_sandbox_image(ContainerdVersion(2, 0, 0)) == "registry.k8s.io/pause:3.10"
    assert default_sandbox_image(ContainerdVersion(2, 1, 9)) == "registry.k8s.io/pause:3.10"
    found = ContainerdVersion.find("containerd github.com/containerd/containerd 1.6.20~ds1 1.6.20")
    assert found == ContainerdVersion(1, 6, 20)
    found = ContainerdVersion.find("containerd containerd.io v2.1.0 05044ec0a9")
    assert found == ContainerdVersion(2, 1, 0)
    assert ContainerdVersion.find("no version") is None


@pytest.mark.containerd
def test_the_default_sandbox_image_is_what_the_installed_containerd_says() -> None:
    out = subprocess.run(
        ["containerd", "config", "default"], capture_output=True, text=True, check=True
    ).stdout
    # 1.x: sandbox_image = "…" under the CRI plugin; 2.x: sandbox = '…' under pinned_images.
    keys = ("sandbox_image", "sandbox")
    line = next(x for x in out.splitlines() if x.split("=", 1)[0].strip() in keys)
    assert line.split("=", 1)[1].strip().strip("\"'") == default_sandbox_image(
        containerd_version_or_none("containerd")
    )


def test_runsc_flags_owned_by_the_agent_are_refused_naming_the_key() -> None:
    assert problems('[runsc]\nflags = ["--debug-log=/tmp/x", "net"]\n') == [
        f"key 'runsc.flags' in {SRC}: '--debug-log=/tmp/x' is set by node-containerd itself "
        "(debug and panic logs go to runsc.fifo, the root lies in the state directory, the "
        "platform is runsc.platform); remove it",
        f"key 'runsc.flags' in {SRC}: 'net' is not a flag; each entry must start with '-'",
    ]


def test_cri_keys_are_checked_naming_the_key_and_value() -> None:
    assert problems('[cri]\ndefault_runtime = "kata"\nsandbox_image = "a b"\n') == [
        f"key 'cri.default_runtime' in {SRC}: 'kata' is not a handler; use \"runc\" or \"runsc\"",
        f"key 'cri.sandbox_image' in {SRC}: 'a b' is not an image reference; use e.g. "
        '"registry.k8s.io/pause:3.6" (letters, digits and ._:/@+-)',
    ]
    assert problems('[runsc]\nbinary = "no-such-runsc"\n[cri]\ndefault_runtime = "runsc"\n') == [
        f"key 'cri.default_runtime' in {SRC}: 'runsc' needs the runsc binary, which "
        'runsc.binary does not find; install runsc (Debian: apt-get install runsc) or use "runc"'
    ]


def test_the_launcher_puts_logs_platform_and_flags_before_the_shims_arguments(
    tmp_path: Path,
) -> None:
    cfg = config(
        f'[runsc]\nbinary = "{fake_runsc(tmp_path)}"\nplatform = "kvm"\nflags = ["--network=none"]\n'
    )
    assert launcher_flags(cfg) == [
        "--debug",
        "--debug-log=/s/runsc/logs.fifo",
        "--panic-log=/s/runsc/logs.fifo",
        "--platform=kvm",
        "--network=none",
    ]
    text = render_helper(runsc="/usr/bin/runsc", flags=["--debug"], tmpdir=Path("/s/runsc/tmp"))
    assert text.startswith("#!")
    compile(text, "launcher.py", "exec")
    assert text.endswith(
        "    raise SystemExit(main('/usr/bin/runsc', ['--debug'], '/s/runsc/tmp'))\n"
    )


def test_the_launcher_splits_runc_style_arguments_as_go_runc_passes_them() -> None:
    args = ["--root", "/r", "--log", "/l.json", "--log-format", "json", "--systemd-cgroup"]
    assert split_command([*args, "create", "--bundle", "/b", "id"]) == (
        args,
        "create",
        ["--bundle", "/b", "id"],
    )
    assert split_command(["--version"]) == (["--version"], "", [])


def test_the_sandbox_user_gets_search_only_on_the_state_dir(short_dir: Path) -> None:
    tmp_path = short_dir
    state = tmp_path / "st"
    state.mkdir(mode=0o700)
    os.chmod(state, 0o700)
    grant_search(state)
    assert named_grants(state) == {"user:65534": 1}
    assert oct(state.stat().st_mode & 0o777) == "0o710"
    os.chmod(tmp_path, 0o700)
    assert search_blocked_at(state) == tmp_path
    os.chmod(tmp_path, 0o711)
    assert search_blocked_at(state) is None


def _launchers(tmp_path: Path, runsc_script: str) -> tuple[Path, Path, Path]:
    """A fake runsc (logging its arguments to `calls`), the launcher and its helper."""
    calls = tmp_path / "calls"
    runsc = tmp_path / "runsc"
    runsc.write_text(f'#!/bin/sh\necho "$*" >> {calls}\n{runsc_script}')
    runsc.chmod(0o755)
    helper = tmp_path / "launcher.py"
    helper.write_text(render_helper(runsc=str(runsc), flags=["--debug"], tmpdir=tmp_path))
    helper.chmod(0o755)
    launcher = tmp_path / "launcher"
    launcher.write_text(
        render_launcher(runsc=str(runsc), flags=["--debug"], tmpdir=tmp_path, helper=helper)
    )
    launcher.chmod(0o755)
    return calls, launcher, helper


#: A runsc that refuses to signal "p1" as runsc refuses a container still `created`.
_REFUSES_CREATED = (
    'case "$*" in *" kill "*) echo \'cannot signal container "p1" in state created\' >&2;'
    ' exit 128;; *" state "*) printf \'{\\n  "status": "created"\\n}\\n\';; esac\n'
)


@pytest.mark.parametrize("which", ["launcher", "helper"])
def test_the_launcher_kills_a_container_that_never_started_by_deleting_it(
    tmp_path: Path, which: str
) -> None:
    # runsc refuses to signal a container in state "created" (its start failed);
    # runc would kill it, and the shim could never stop it otherwise.
    calls, launcher, helper = _launchers(tmp_path, _REFUSES_CREATED)
    program = launcher if which == "launcher" else helper
    done = subprocess.run(
        [str(program), "--root", "/r", "kill", "--all", "p1", "9"], capture_output=True, text=True
    )
    assert (done.returncode, done.stderr) == (0, "")
    assert calls.read_text().splitlines() == [
        "--debug --root /r kill --all p1 9",
        "--debug --root /r state p1",
        "--debug --root /r delete --force p1",
    ]


@pytest.mark.parametrize("which", ["launcher", "helper"])
def test_the_launcher_says_not_running_as_runc_does_and_passes_other_errors_on(
    tmp_path: Path, which: str
) -> None:
    calls, launcher, helper = _launchers(
        tmp_path,
        'case "$*" in *" kill "*) echo "sandbox is not running" >&2; exit 128;;'
        ' *" state "*) printf \'{"status":"stopped"}\';; esac\n',
    )
    program = launcher if which == "launcher" else helper
    done = subprocess.run(
        [str(program), "--root", "/r", "kill", "p1", "15"], capture_output=True, text=True
    )
    assert (done.returncode, done.stderr) == (128, "container not running\n")
    # Not running is not `created`: runsc is not asked its state.
    assert calls.read_text().splitlines() == ["--debug --root /r kill p1 15"]


def _bundle(tmp_path: Path, annotations: dict[str, str], network: bool, compact: bool) -> Path:
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    namespaces = [{"type": "pid"}, *([{"type": "network"}] if network else [])]
    spec = {"ociVersion": "1.0.2", "annotations": annotations, "linux": {"namespaces": namespaces}}
    text = json.dumps(spec, separators=(",", ":")) if compact else json.dumps(spec, indent=2)
    (bundle / "config.json").write_text(text)
    return bundle


@pytest.mark.parametrize("compact", [True, False], ids=["shell", "helper"])
def test_the_launcher_gives_a_sandbox_with_a_log_directory_gvisors_user_and_panic_logs(
    tmp_path: Path, compact: bool
) -> None:
    calls, launcher, _ = _launchers(tmp_path, "")
    logs = tmp_path / "pod logs"
    annotations = {
        "io.kubernetes.cri.container-type": "sandbox",
        "io.kubernetes.cri.sandbox-log-directory": str(logs),
    }
    bundle = _bundle(tmp_path, annotations, network=True, compact=compact)
    args = ["--root", "/r", "create", "--bundle", str(bundle), "--pid-file", "/p", "s1"]
    assert subprocess.run([str(launcher), *args]).returncode == 0
    assert calls.read_text().splitlines() == [
        f"--debug --panic-log={logs}/gvisor_panic.log --root /r create "
        f"--user-log={logs}/gvisor.log --bundle {bundle} --pid-file /p s1"
    ]
    assert logs.is_dir()


@pytest.mark.parametrize("compact", [True, False], ids=["shell", "helper"])
def test_the_launcher_gives_a_sandbox_without_a_log_directory_no_user_log(
    tmp_path: Path, compact: bool
) -> None:
    calls, launcher, _ = _launchers(tmp_path, "")
    root = tmp_path / "root"
    annotations = {
        "io.kubernetes.cri.container-type": "sandbox",
        "io.kubernetes.cri.sandbox-log-directory": "",
    }
    bundle = _bundle(tmp_path, annotations, network=False, compact=compact)
    args = ["--root", str(root), "create", "--bundle", str(bundle), "s1"]
    assert subprocess.run([str(launcher), *args]).returncode == 0
    assert calls.read_text().splitlines() == [
        f"--debug --network=host --root {root} create --bundle {bundle} s1"
    ]
    assert (root / "s1.hostnet").read_text() == "--network=host"


def test_the_launcher_refuses_to_start_a_joining_container_whose_waiter_is_gone(
    tmp_path: Path,
) -> None:
    # With the shim's stdio instead of the waiter's, the container would hold
    # start's output open, and the shim's StartContainer would hang.
    calls, launcher, _ = _launchers(tmp_path, "")
    root = tmp_path / "root"
    root.mkdir()
    gone = subprocess.run(["sh", "-c", "echo $$"], capture_output=True, text=True).stdout.strip()
    (root / "c1.waiter").write_text(gone)
    done = subprocess.run(
        [str(launcher), "--root", str(root), "start", "c1"], capture_output=True, text=True
    )
    assert (done.returncode, done.stderr) == (
        1,
        f"runsc launcher: the waiter of container c1 (pid {gone}) is gone\n",
    )
    assert not calls.exists()


#: Runs the launcher's create as the shim does, as a child subreaper, and reports the
#: exit status of the pid the launcher wrote into the pid file (argv: launcher, root,
#: the create's arguments).
_AS_THE_SHIM = """
import ctypes, os, subprocess, sys
ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
launcher, create = sys.argv[1], sys.argv[3:]
code = subprocess.run([launcher, *create]).returncode
pid = int(open(create[create.index("--pid-file") + 1]).read())
print(code, os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))
"""


def test_a_joining_containers_pid_is_a_waiter_exiting_with_the_containers_status(
    tmp_path: Path,
) -> None:
    calls, launcher, _ = _launchers(
        tmp_path,
        'case "$*" in *" state "*) echo \'{"status":"stopped"}\';;'
        ' *" wait "*) echo \'{"id":"c1","exitStatus":7}\';; esac\n',
    )
    root, bundle, pid_file, done = _container_then(tmp_path, launcher, _AS_THE_SHIM, True)
    assert done.stdout.split() == ["0", "7"], done.stderr
    assert (root / "c1.waiter").read_text() == pid_file.read_text()
    assert calls.read_text().splitlines() == [
        f"--debug --root {root} create --bundle {bundle} c1",
        f"--debug --root {root} state c1",
        f"--debug --root {root} wait c1",
    ]


def _container_then(
    tmp_path: Path, launcher: Path, script: str, compact: bool
) -> tuple[Path, Path, Path, subprocess.CompletedProcess[str]]:
    """Runs `script` (argv: launcher, root, the create's arguments) to create container
    c1 (an app container's bundle) through `launcher` under a root of its own, and what
    it does next: (root, bundle, pid file, result)."""
    root = tmp_path / "root"
    root.mkdir()
    bundle = _bundle(
        tmp_path, {"io.kubernetes.cri.container-type": "container"}, network=True, compact=compact
    )
    pid_file = tmp_path / "init.pid"
    create = ["--root", str(root), "create", "--bundle", str(bundle), "--pid-file", str(pid_file)]
    done = subprocess.run(
        [sys.executable, "-c", script, str(launcher), str(root), *create, "c1"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    return root, bundle, pid_file, done


#: As `_AS_THE_SHIM`, then starts container c1 through the launcher (same argv); prints
#: create's and start's codes and the status.
_CREATE_THEN_START = """
import ctypes, os, subprocess, sys
ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
launcher, root, create = sys.argv[1], sys.argv[2], sys.argv[3:]
created = subprocess.run([launcher, *create]).returncode
started = subprocess.run([launcher, "--root", root, "start", "c1"]).returncode
pid = int(open(create[create.index("--pid-file") + 1]).read())
print(created, started, os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))
"""


@pytest.mark.parametrize("compact", [True, False], ids=["shell", "helper"])
def test_a_waiter_whose_container_the_launcher_started_asks_runsc_no_state(
    tmp_path: Path, compact: bool
) -> None:
    # A state asked of runsc would say nothing here: the waiter would then wait too,
    # but a `state` call would be in the list.
    calls, launcher, _ = _launchers(
        tmp_path,
        'case "$*" in *" wait "*) echo \'{"id":"c1","exitStatus":3}\';;'
        ' *" create "*) prev=; for a; do [ "$prev" = --pid-file ] && echo 1 >"$a"; prev=$a;'
        " done;; esac\n",
    )
    root, bundle, pid_file, done = _container_then(tmp_path, launcher, _CREATE_THEN_START, compact)
    assert done.stdout.split() == ["0", "0", "3"], done.stderr
    # The helper hands runsc a pid file of its own, the shell none.
    runsc_pid_file = "" if compact else f" --pid-file {pid_file}.runsc"
    assert calls.read_text().splitlines() == [
        f"--debug --root {root} create --bundle {bundle}{runsc_pid_file} c1",
        f"--debug --root {root} start c1",
        f"--debug --root {root} wait c1",
    ]
    subprocess.run([str(launcher), "--root", str(root), "delete", "c1"], check=True)
    assert sorted(p.name for p in root.iterdir()) == []


#: A runsc whose `exec --detach` leaves a host-side exec (a `sleep` of $EXEC_SECONDS)
#: behind, its pid in the pid file, and 4 as the pid in the sandbox.
_DETACHED_EXEC = """case "$*" in *" exec "*)
    prev=
    for a; do [ "$prev" = --pid-file ] && pf=$a; prev=$a; done
    sleep "$EXEC_SECONDS" </dev/null >/dev/null 2>&1 &
    echo $! >"$pf.tmp" && mv "$pf.tmp" "$pf" && echo 4 >"$pf.inner";;
esac
"""
#: Runs the launcher as the shim does (a child subreaper), SIGKILLs the host-side exec
#: a second and a half later when argv[1] is "kill" (as the shim at an ExecSync timeout,
#: CRI's timeouts being whole seconds), reaps it and every
#: other child (the watcher, once the launcher is gone); prints the launcher's code
#: and the exec's status.
_EXEC_AS_THE_SHIM = """
import ctypes, os, signal, subprocess, sys, time
ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
args = sys.argv[2:]
code = subprocess.run(args).returncode
pid = int(open(args[args.index("--pid-file") + 1]).read())
if sys.argv[1] == "kill":
    time.sleep(1.5)
    os.kill(pid, signal.SIGKILL)
status = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
while True:
    try:
        os.waitpid(-1, 0)
    except ChildProcessError:
        break
print(code, status)
"""


@pytest.mark.parametrize("end", ["normal", "kill"])
def test_the_exec_watcher_kills_the_process_in_the_sandbox_only_when_the_exec_was_killed(
    tmp_path: Path, end: str
) -> None:
    # After a normal end the process in the sandbox is gone: a `runsc kill --pid`
    # would be a runsc start for nothing. Killed (an ExecSync timeout), it runs on.
    calls, launcher, _ = _launchers(tmp_path, _DETACHED_EXEC)
    root, pid_file, process = tmp_path / "root", tmp_path / "e1.pid", tmp_path / "process.json"
    args = ["--root", str(root), "exec", "--detach", "--pid-file", str(pid_file)]
    args += ["--process", str(process), "c1"]
    done = subprocess.run(
        [sys.executable, "-c", _EXEC_AS_THE_SHIM, end, str(launcher), *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=dict(os.environ, EXEC_SECONDS="3" if end == "normal" else "100"),
    )
    assert done.stdout.split() == ["0", "0" if end == "normal" else "-9"], done.stderr
    exec_call = (
        f"--debug --root {root} exec --internal-pid-file={pid_file}.inner --detach "
        f"--pid-file {pid_file} --process {process} c1"
    )
    kill_calls = [f"--debug --root {root} kill --pid 4 c1 9"] if end == "kill" else []
    assert calls.read_text().splitlines() == [exec_call, *kill_calls]
    assert sorted(p.name for p in tmp_path.glob("e1.pid*")) == ["e1.pid"]


#: As `_AS_THE_SHIM`, then kills container c1 through the launcher, as the shim after
#: a failed start (argv: launcher, root, the create's arguments); prints the kill's
#: code and the waiter's status.
_CREATE_THEN_KILL = """
import ctypes, os, subprocess, sys
ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
launcher, root, create = sys.argv[1], sys.argv[2], sys.argv[3:]
subprocess.run([launcher, *create], check=True)
killed = subprocess.run([launcher, "--root", root, "kill", "c1", "9"]).returncode
pid = int(open(create[create.index("--pid-file") + 1]).read())
print(killed, os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))
"""


def test_the_waiter_of_a_container_deleted_by_force_asks_runsc_at_once_and_ends(
    tmp_path: Path,
) -> None:
    # Its record gone with the forced delete, the waiter asks runsc at once, not at its
    # next ask a second later; runsc knows the container no more, and the waiter ends
    # (the shim reaps it, and stops the container).
    deleted = tmp_path / "deleted"
    calls, launcher, _ = _launchers(
        tmp_path,
        f'case "$*" in *" kill "*) echo "cannot signal container in state created" >&2;'
        f' exit 1;; *" delete "*) : >{deleted};;'
        f' *" state "*) [ -e {deleted} ] && exit 1; echo \'{{"status":"created"}}\';; esac\n',
    )
    root, bundle, pid_file, done = _container_then(tmp_path, launcher, _CREATE_THEN_KILL, True)
    assert done.stdout.split() == ["0", "255"], done.stderr
    assert calls.read_text().splitlines() == [
        f"--debug --root {root} create --bundle {bundle} c1",
        f"--debug --root {root} kill c1 9",
        f"--debug --root {root} state c1",
        f"--debug --root {root} delete --force c1",
        *[f"--debug --root {root} state c1"] * 3,
    ]
    assert not (root / "c1.waiter").exists()  # the kill removed it: no delete ran
