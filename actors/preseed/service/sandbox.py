"""`SandboxImageProbe`: asks containerd whether the sandbox image is present, when told.

The preseed node reports whether CRI's sandbox image is present as a fact
(`actors.containerd.runtimes.sandbox_image`), and keeps it true: it asks
containerd at start, after each import into `k8s.io` and on each image event of
the sandbox image (`request`, from any thread). One helper thread does the
asking, so answers are never reported out of order: a request that arrives
while a question is on its way asks again after it, and requests that pile up
meanwhile are one question. A changed answer is reported (`report`) and logged:
a missing image at WARNING, with where its tarball belongs; a found one at INFO.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from actors.containerd.api.client import ContainerdClient
from actors.containerd.api.errors import ContainerdError
from actors.containerd.runtimes.sandbox_image import SandboxImageState, sandbox_image_present

__all__ = ["SandboxImageProbe"]


class SandboxImageProbe:
    """The helper thread that asks, and reports what changed.

    Args:
        client: the containerd to ask.
        image: the sandbox image's name.
        tarball_dir: where its tarball belongs (`<preseed dir>/k8s.io`).
        watched: whether the preseed watches that directory.
        built: the tarball the agent built of it, when it is the built-in image.
        pause_missing: it is containerd's default because no pause binary was found.
        report: told every changed state, on the probe's thread.
        log: the preseed node's logger.
    """

    def __init__(
        self,
        client: ContainerdClient,
        image: str,
        *,
        tarball_dir: str,
        watched: bool,
        report: Callable[[SandboxImageState], None],
        log: logging.Logger,
        built: str | None = None,
        pause_missing: bool = False,
    ) -> None:
        #: The sandbox image's name.
        self.image = image
        self._client = client
        self._tarball_dir = tarball_dir
        self._watched = watched
        self._built = built
        self._pause_missing = pause_missing
        self._report = report
        self._log = log
        self._wanted = threading.Event()
        self._stopping = False
        self._last_ask = False
        self._last: SandboxImageState | None = None
        self._failing = False
        self._thread = threading.Thread(target=self._run, name="nc-sandbox-probe", daemon=True)

    def start(self) -> None:
        """Start the thread; it asks once at once."""
        self._wanted.set()
        self._thread.start()

    def request(self) -> None:
        """Ask (again) soon; any thread."""
        self._wanted.set()

    def stop(self, *, ask_last: bool = False) -> None:
        """Stop the thread after the question on its way, if any.

        Args:
            ask_last: ask once more first if a request is pending (a node that ends
                DONE leaves its last answer behind); a cancelled node does not.
        """
        self._last_ask = ask_last and self._wanted.is_set()
        self._stopping = True
        self._wanted.set()
        if self._thread.is_alive():
            self._thread.join()

    def _run(self) -> None:
        while True:
            self._wanted.wait()
            self._wanted.clear()
            if self._stopping:
                if self._last_ask:
                    self._ask()
                return
            self._ask()

    def _ask(self) -> None:
        try:
            present = sandbox_image_present(self._client, self.image)
        except ContainerdError as e:
            if not self._failing and not self._stopping:
                self._log.warning(
                    "cannot tell whether sandbox image %r is present: %s", self.image, e
                )
            self._failing = True
            return
        self._failing = False
        state = SandboxImageState(
            image=self.image,
            present=present,
            tarball_dir=self._tarball_dir,
            watched=self._watched,
            built=self._built,
            pause_missing=self._pause_missing,
        )
        if state == self._last:
            return
        self._last = state
        if state.warning is not None:
            self._log.warning("%s", state.warning)
        else:
            self._log.info("sandbox image %r is present in namespace 'k8s.io'", self.image)
        self._report(state)
