"""`root.containerd.preseed`: the runnable that hosts the `PreseedActor`.

It runs in its own process under the supervision tree, as a child of
`root.containerd`, so that it lives and restarts with the containerd it feeds.
It waits until containerd answers (checking for cancellation while it waits),
then starts a `PreseedActor` (see `actors.preseed.service.actor`) on the preseed
directory and blocks until the actor stops:

- first, the sandbox image the agent built itself, if it did
  (`PreseedSpec.built_sandbox`; see `actors.preseed.service.builtin`), is
  imported into `k8s.io` and pinned, or found there already; a failure to do so
  counts as a failure of the initial pass;
- the initial pass imports every tarball (one log line per tarball naming its
  images and namespace, progress lines for large ones) and ends with the line
  `initial preseed finished: …`. That moment is the node's **HEALTHY** signal:
  "the initial preseed is done" is observable as the node's state (`status`)
  and as that line (`logs root.containerd.preseed`);
- if any file failed in the initial pass, the runnable raises a
  `PreseedError` with a summary, which fails the node so that its restart
  policy retries (the import record makes a retry cheap);
- with `watch` off, the node then signals **DONE** and exits, as before the
  watch existed; with `watch` on (the default) it stays HEALTHY and imports
  tarballs copied into the directory later, until it is cancelled.

The watch runs here rather than in a sibling node because it shares the import
record, the queue and the containerd connection with the initial pass: one
owner of the record, one queue, never two imports of one file at once.

While files are imported, the node reports them with their bytes and rate as the
fact `importing` (`actors.preseed.importing`), at most once a second per file, and
withdraws it when the last import ends.

With CRI's sandbox image known, the node reports whether it is present as the
fact `sandbox_image` (`SandboxImageProbe`): at start, after each import into
`k8s.io` and on each image event of it, so `status` shows a change within a
second, from containerd's answer rather than from log text.
"""

from __future__ import annotations

import concurrent.futures
import logging
import os
import time
from collections.abc import Callable
from typing import Any

from actors.containerd.api.client import ContainerdClient
from actors.containerd.api.errors import ContainerdError
from actors.containerd.api.events import ImageEvent, ImageEventKind
from actors.containerd.core.spec import PreseedSpec
from actors.containerd.runtimes.sandbox_image import CRI_NAMESPACE, SANDBOX_IMAGE_FACT
from actors.mailbox import tell_when_set
from actors.preseed.errors import FAILURES, PreseedError, as_preseed_error
from actors.preseed.importer.options import ImportOptions
from actors.preseed.importer.results import ImportResult
from actors.preseed.importing import IMPORTING_FACT, ImportsUnderWay
from actors.preseed.service.actor import InitialPass, PreseedActor, PreseedSettings, StopRequested
from actors.preseed.service.builtin import import_built_image
from actors.preseed.service.preseeder import Preseeder
from actors.preseed.service.sandbox import SandboxImageProbe
from actors.supervisor.process.api import (
    Signal,
    add_metric,
    logger,
    observe_metric,
    report_fact,
    signal,
    vouch,
)
from messages.specs import spec_from_wire

__all__ = ["MAX_DEFAULT_PARALLEL", "default_parallel", "run"]

MAX_DEFAULT_PARALLEL = 4
_WAIT_STEP = 1.0
#: Failures named in the error that fails the node; the log names every one.
_SUMMARY_FILES = 10
#: The histograms of each import (`actors.agent.histograms`).
IMPORT_SECONDS = "node_containerd_preseed_import_duration_seconds"
IMPORT_BYTES = "node_containerd_preseed_import_bytes"


def default_parallel() -> int:
    """The default number of imports at once: the CPUs this process may use, at most 4."""
    return max(1, min(MAX_DEFAULT_PARALLEL, len(os.sched_getaffinity(0))))


def _wait_for_containerd(ctx: Any, client: ContainerdClient, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not ctx.cancelled.is_set():
        try:
            client.wait_ready(min(_WAIT_STEP, max(0.0, deadline - time.monotonic())))
            return True
        except ContainerdError:
            if time.monotonic() >= deadline:
                raise
    return False


def _import_built(
    client: ContainerdClient,
    spec: PreseedSpec,
    options: ImportOptions,
    log: logging.Logger,
    on_result: Callable[[ImportResult], None],
) -> str | None:
    """Imports the sandbox image the agent built, if any; the error text if that failed."""
    if spec.built_sandbox is None:
        return None
    try:
        result = import_built_image(client, spec.built_sandbox, options, log)
    except FAILURES as e:
        text = str(as_preseed_error(e))
        log.error("%s", text)
        return text
    if result is not None:
        on_result(result)
    return None


def _fact_reporter(ctx: Any, key: str, log: logging.Logger) -> Callable[[Any], None]:
    """Reports fact `key`; a fact that cannot be sent is a warning, never a failed import."""

    def report(value: Any) -> None:
        try:
            report_fact(ctx, key, value)
        except Exception as e:  # noqa: BLE001 - a bad value, a closed link: the import goes on
            log.warning("fact %r not reported: %s", key, e)

    return report


def _summary(passed: InitialPass) -> str:
    """The error of an initial pass with failures: the first few, and how many more."""
    named = "; ".join(passed.failures[:_SUMMARY_FILES])
    more = len(passed.failures) - _SUMMARY_FILES
    rest = f"; and {more} more (each logged above)" if more > 0 else ""
    return f"{len(passed.failures)} of {passed.files} preseed files failed: {named}{rest}"


def run(ctx: Any, **wire: Any) -> None:
    """Preseed containerd's images; signal HEALTHY after the initial pass, then watch or DONE.

    Args:
        ctx: The runnable's context (`cancelled` event, `cancel_reason`).
        wire: A `PreseedSpec` (`messages.specs.spec_to_wire`).

    Raises:
        PreseedError: containerd never answered, or some files failed in the initial pass.
    """
    spec = spec_from_wire(PreseedSpec, wire)
    log = logger(ctx)
    with ContainerdClient(spec.address) as client:
        if not _wait_for_containerd(ctx, client, spec.ready_timeout):
            return
        log.info("containerd %s answers; preseeding from %r", client.version(), spec.dir)
        probe = None
        if spec.sandbox_image is not None:
            probe = SandboxImageProbe(
                client,
                spec.sandbox_image,
                tarball_dir=os.path.join(spec.dir, CRI_NAMESPACE),
                watched=spec.watch,
                report=lambda state: report_fact(ctx, SANDBOX_IMAGE_FACT, state.to_fact()),
                log=log,
                built=spec.built_sandbox.archive if spec.built_sandbox is not None else None,
                pause_missing=spec.pause_missing,
            )
            probe.start()
        try:
            error, passed = _preseed(ctx, spec, client, probe)
        finally:
            if probe is not None:
                probe.stop(ask_last=not ctx.cancelled.is_set())
    if error is not None:
        raise PreseedError(error)
    if ctx.cancelled.is_set() or passed is None:
        return
    if passed.failures:
        raise PreseedError(_summary(passed))
    signal(ctx, Signal.DONE)


def _preseed(
    ctx: Any, spec: PreseedSpec, client: ContainerdClient, probe: SandboxImageProbe | None
) -> tuple[str | None, InitialPass | None]:
    """Run the `PreseedActor` until it stops; HEALTHY after a clean initial pass.

    Returns:
        Why the actor failed (None: it did not), and how the initial pass ended (None:
        it did not end).
    """
    options = ImportOptions(
        all_platforms=spec.all_platforms,
        skip_missing=spec.skip_missing,
        labels=dict(spec.labels),
        unpack=spec.unpack,
        snapshotter=spec.snapshotter,
    )
    initial: concurrent.futures.Future[InitialPass] = concurrent.futures.Future()
    done: concurrent.futures.Future[str | None] = concurrent.futures.Future()

    def on_result(result: ImportResult) -> None:
        if probe is not None and result.namespace == CRI_NAMESPACE:
            probe.request()
        if not result.unchanged:
            tags = {"namespace": result.namespace}
            add_metric(ctx, "node_containerd_preseed_bytes_total", result.bytes_sent, tags)
            add_metric(ctx, "node_containerd_preseed_images_total", len(result.images), tags)
            observe_metric(ctx, IMPORT_SECONDS, result.seconds, tags)
            observe_metric(ctx, IMPORT_BYTES, result.bytes_sent, tags)

    def on_failure(file: str) -> None:  # `file` is a display form: it encodes as UTF-8
        namespace, _, name = file.partition("/")
        tags = {"namespace": namespace, "file": name}
        add_metric(ctx, "node_containerd_preseed_failures_total", 1, tags)

    log = logger(ctx)
    built = spec.built_sandbox

    def on_image_event(event: ImageEvent) -> None:
        if probe is not None and (event.namespace, event.name) == (CRI_NAMESPACE, probe.image):
            probe.request()
        deleted = (event.kind, event.namespace) == (ImageEventKind.DELETE, CRI_NAMESPACE)
        if built is not None and deleted and event.name == built.name:
            log.warning(
                "image %r in namespace %r was deleted outside the agent; importing it again "
                "from the tarball the agent built, %r",
                built.name,
                CRI_NAMESPACE,
                built.archive,
            )
            _import_built(client, spec, options, log, on_result)

    # The agent's own sandbox image first: the pods of this node need it before any other.
    built_failure = _import_built(client, spec, options, log, on_result)
    preseeder = Preseeder(
        client,
        options=options,
        record_path=spec.record,
        log=log,
        pin=spec.pin,
        sandbox_image=spec.sandbox_image,
        imports=ImportsUnderWay(_fact_reporter(ctx, IMPORTING_FACT, log)),
    )
    settings = PreseedSettings(
        directory=spec.dir,
        watch=spec.watch,
        parallel=spec.parallel or default_parallel(),
    )
    actor = PreseedActor.start(
        preseeder=preseeder,
        settings=settings,
        log=log,
        on_initial=initial.set_result,
        on_result=on_result,
        done=done,
        on_failure=on_failure,
        on_image_event=on_image_event,
    )
    vouch(ctx, lambda: done.done() or actor.is_alive())  # see `api.vouch`
    tell_when_set(ctx.cancelled, actor, StopRequested)
    waited: list[concurrent.futures.Future[Any]] = [initial, done]
    concurrent.futures.wait(waited, return_when=concurrent.futures.FIRST_COMPLETED)
    passed = initial.result() if initial.done() else None
    if passed is not None and built_failure is not None:
        # A failure of the initial pass: the node fails, and its policy retries.
        passed = InitialPass((built_failure, *passed.failures), passed.files + 1)
        actor.tell(StopRequested())
    if passed is not None and not ctx.cancelled.is_set():
        if probe is not None:
            probe.request()
        if not passed.failures:
            signal(ctx, Signal.HEALTHY)
    return done.result(), passed
