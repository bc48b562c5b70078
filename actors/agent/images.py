"""`node-containerd image build-pause`: the node's own sandbox image, as a tarball to copy.

The agent builds its sandbox image at every start (`actors.agent.sandbox`); this
command writes the very same tarball (`actors.images.pause`: the same binary gives
the same bytes) for a node that is to have it without catatonit: copy it into that
node's `<state>/preseed/k8s.io/` and set its `[cri] sandbox_image` to the name this
command prints.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

from actors.config.schema import PAUSE_BINARY
from actors.images.pause import write_pause_archive

__all__ = ["cmd_build_pause"]

#: Exit codes, as `actors.agent.cli.ExitCode` says them.
_OK = 0
#: The command ran and failed.
_FAILURE = 1


def _find(name: str) -> Path | None:
    """A name on `PATH`, or a path that is an executable file."""
    if "/" not in name:
        found = shutil.which(name)
        return Path(found).absolute() if found else None
    path = Path(name).absolute()
    return path if path.is_file() and os.access(path, os.X_OK) else None


def cmd_build_pause(args: argparse.Namespace) -> int:
    """Writes the sandbox image's tarball to `args.output` ("-": stdout); prints what it wrote."""
    name = args.binary or PAUSE_BINARY
    binary = _find(name)
    if binary is None:
        where = "is not on PATH" if "/" not in name else "is not an executable file"
        print(
            f"node-containerd: pause binary {name!r} {where}; install catatonit "
            "(Debian: apt-get install catatonit) or give --binary PATH",
            file=sys.stderr,
        )
        return _FAILURE
    try:
        if args.output == "-":
            sys.stdout.flush()
            image = write_pause_archive(binary, sys.stdout.buffer)
            sys.stdout.buffer.flush()
            print(f"{image.name} {image.digest}", file=sys.stderr)
            return _OK
        image = write_pause_archive(binary, Path(args.output))
    except OSError as e:
        what = e.filename or (args.output if args.output != "-" else "stdout")
        print(
            f"node-containerd: cannot build {args.output!r}: {what}: {e.strerror or e}",
            file=sys.stderr,
        )
        return _FAILURE
    print(f"wrote {args.output!r}: {image.name} (manifest {image.digest}) from {str(binary)!r}")
    return _OK
