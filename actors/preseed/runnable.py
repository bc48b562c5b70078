"""`root.containerd.preseed`: the PreseedActor's runnable.

It runs in its own process under the supervision tree. It waits until
containerd answers (checking for cancellation while it waits), imports the
preseed directory with `preseed_dir` (one log line per tarball naming its images
and namespace, progress lines for large ones, warnings as the Go original), and
then either signals HEALTHY and DONE, or — if any file failed — raises a
`PreseedError` with a summary, which fails the node so that its restart policy
retries (the import record makes a retry cheap: only what failed is imported
again).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from actors.preseed.client import ContainerdClient
from actors.preseed.errors import ContainerdError, PreseedError
from actors.preseed.options import ImportOptions
from actors.preseed.preseed import preseed_dir
from actors.supervisor.process.api import Signal, add_metric, logger, signal

__all__ = ["run"]

_WAIT_STEP = 1.0


def run(
    ctx: Any,
    *,
    address: str,
    directory: str,
    record_path: str | None = None,
    all_platforms: bool = False,
    skip_missing: bool = False,
    labels: Mapping[str, str] | None = None,
    ready_timeout: float = 60.0,
) -> None:
    """Preseed containerd's images, then signal HEALTHY and DONE.

    Args:
        ctx: The runnable's context (`cancelled` event, `cancel_reason`).
        address: containerd's gRPC socket path.
        directory: The preseed directory (`<directory>/<namespace>/<file>`).
        record_path: The import record file in the agent's state directory.
        all_platforms: Import every platform, not only the host's.
        skip_missing: Leave out blobs archives lack instead of failing.
        labels: Labels for every image, e.g. `{"io.cri-containerd.pinned": "pinned"}`.
        ready_timeout: Seconds to wait for containerd to answer.

    Raises:
        PreseedError: containerd never answered, or some files failed (summary).
    """
    log = logger(ctx)
    options = ImportOptions(
        all_platforms=all_platforms, skip_missing=skip_missing, labels=dict(labels or {})
    )
    with ContainerdClient(address) as client:
        deadline = time.monotonic() + ready_timeout
        while True:
            if ctx.cancelled.is_set():
                return
            try:
                client.wait_ready(min(_WAIT_STEP, max(0.0, deadline - time.monotonic())))
                break
            except ContainerdError:
                if time.monotonic() >= deadline:
                    raise
        log.info("containerd %s answers; preseeding from %r", client.version(), directory)
        report = preseed_dir(
            client,
            directory,
            options=options,
            record_path=record_path,
            log=log,
            cancel=ctx.cancelled,
        )
    for result in report.results:
        if not result.unchanged:
            labels = {"namespace": result.namespace}
            add_metric(ctx, "node_containerd_preseed_bytes_total", result.bytes_sent, labels)
            add_metric(ctx, "node_containerd_preseed_images_total", len(result.images), labels)
    if ctx.cancelled.is_set():
        return
    if report.failures:
        listed = "; ".join(text for _, text in report.failures)
        raise PreseedError(
            f"{len(report.failures)} of {len(report.failures) + len(report.results)} preseed "
            f"files failed: {listed}"
        )
    signal(ctx, Signal.HEALTHY)
    signal(ctx, Signal.DONE)
