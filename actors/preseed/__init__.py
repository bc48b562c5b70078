"""Preseed: import OCI image tarballs into containerd over its gRPC API.

The public API (everything else is private to the package)::

    with ContainerdClient("/run/containerd/containerd.sock") as client:
        client.wait_ready(30)
        result = import_archive(client, "pause.tar", namespace="k8s.io")
        report = preseed_dir(client, "/var/lib/preseed", record_path="state/preseed.json")

`import_archive` has the semantics of containerd's Go `client.Import` (with
`archive.ImportIndex`), and is faster and stricter: it verifies every digest,
skips blobs containerd has without sending them, and imports nothing of a bad
archive. `preseed_dir` walks `<dir>/<namespace>/<file>` as Metropolis's
`runPreseed` does, isolating failures per file. Every failure is a
`PreseedError`.

The agent's node `root.containerd.preseed` (`runnable`) hosts a `PreseedActor`
(`actor`): the import queue, its worker threads and the inotify watch of the
directory (`watch`, `inotify`); pins are in `pins`, unpacking in `unpack`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from actors.containerd.api.client import ContainerdClient
    from actors.containerd.api.errors import ContainerdError
    from actors.preseed.errors import ContainerdFailed, PreseedError
    from actors.preseed.importer.archive_import import import_archive
    from actors.preseed.importer.options import ImportOptions
    from actors.preseed.importer.results import ImportedImage, ImportResult, PreseedReport
    from actors.preseed.service.directory import preseed_dir

#: Where each public name lives; loaded on first use, so that `actors.preseed.cli`
#: (the `import` command's parser) does not load grpc.
_HOMES = {
    "ContainerdClient": "actors.containerd.api.client",
    "ContainerdError": "actors.containerd.api.errors",
    "ContainerdFailed": "actors.preseed.errors",
    "PreseedError": "actors.preseed.errors",
    "import_archive": "actors.preseed.importer.archive_import",
    "ImportOptions": "actors.preseed.importer.options",
    "ImportedImage": "actors.preseed.importer.results",
    "ImportResult": "actors.preseed.importer.results",
    "PreseedReport": "actors.preseed.importer.results",
    "preseed_dir": "actors.preseed.service.directory",
}

__all__ = [
    "ContainerdClient",
    "ContainerdError",
    "ContainerdFailed",
    "ImportOptions",
    "ImportResult",
    "ImportedImage",
    "PreseedError",
    "PreseedReport",
    "import_archive",
    "preseed_dir",
]


def __getattr__(name: str) -> Any:
    """Loads a public name's module on first use."""
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(home), name)
