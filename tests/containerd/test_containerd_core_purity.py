"""Rule 0 for containerd's wing, derived from the folder: `actors/containerd/core/` is pure.

Two checks, as for the supervisor's core (`tests/core/test_core_purity.py`):

- what each module's source imports: only the containerd core itself, the
  supervisor's pure core (its `Severity`), the one wording of exit statuses
  (`actors.exit_status`) and the standard library's pure modules;
- what importing the whole folder loads, in a fresh interpreter: no gRPC, socket,
  subprocess, thread, poll, actor or codec module appears that a bare interpreter
  had not already loaded. This catches an impure import one module removed.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import actors.containerd.core
from tests.support.purity import PURE_STDLIB, imported_modules

CORE_DIR = Path(actors.containerd.core.__file__).parent
ROOT = CORE_DIR.parents[2]
CORE_MODULES = sorted(p.relative_to(CORE_DIR).as_posix() for p in CORE_DIR.rglob("*.py"))

#: Pure modules the containerd core reads besides the supervisor core's list: POSIX
#: path arithmetic (no file system access) and the mode bits' names.
CONTAINERD_PURE_STDLIB = PURE_STDLIB | {"posixpath", "stat"}
#: Modules whose loading means I/O, threads, clocks, actors or codecs.
IO_MODULES = {
    "grpc",
    "socket",
    "subprocess",
    "threading",
    "select",
    "fcntl",
    "pykka",
    "msgpack",
    "google.protobuf",
    "messages",
}


def test_the_containerd_core_holds_the_lifecycle_and_the_values_it_consumes() -> None:
    assert {Path(m).stem for m in CORE_MODULES} >= {
        "lifecycle",
        "events",
        "liveness",
        "readiness",
        "spec",
        "notify",
        "version",
        "fifo_rules",
    }


@pytest.mark.parametrize("module", CORE_MODULES)
def test_a_containerd_core_module_imports_only_the_core_and_pure_stdlib(module: str) -> None:
    imports = imported_modules(CORE_DIR / module)

    outside = {
        m
        for m in imports
        if m.split(".")[0] not in CONTAINERD_PURE_STDLIB
        and not m.startswith("actors.containerd.core")
        and not m.startswith("actors.supervisor.core")
        and m != "actors.exit_status"
    }
    assert outside == set()


def test_importing_the_containerd_core_loads_no_io_thread_or_codec_module() -> None:
    names = [
        "actors.containerd.core." + Path(m).with_suffix("").as_posix().replace("/", ".")
        for m in CORE_MODULES
        if Path(m).stem != "__init__"
    ]
    probe = (
        "import json, sys\n"
        "before = set(sys.modules)\n"
        f"for name in {names!r}:\n"
        "    __import__(name)\n"
        "print(json.dumps(sorted(set(sys.modules) - before)))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    loaded = json.loads(out)

    bad = sorted(m for m in loaded if any(m == f or m.startswith(f + ".") for f in IO_MODULES))
    assert bad == []
    assert "actors.containerd.core.lifecycle" in loaded
