"""Resource faults during an import, against the real containerd and real signals.

A 256 MiB archive takes a couple of seconds to import here; each test lets bytes flow,
then takes containerd (or its socket) away:

* containerd stopping (SIGTERM: it removes its socket) → a `ContainerdFailed` naming the
  file and the cause; no image of the archive exists afterwards; once containerd is back,
  a later import completes (``ctr images check``: complete). The same through the CLI
  (``node-containerd import``): exit status 1 and one clear line on stderr.
* the socket file unlinked while containerd keeps running → the import under way keeps
  its connection and completes; a new import says the socket does not exist; once
  containerd is restarted (it binds its socket again) the image is there, complete, and
  a new import skips its layers.
* containerd SIGKILLed → a `ContainerdFailed`; after a restart no image of the archive
  exists, and a re-import gives a complete image and leaves no lease or ingest of the
  dead import behind (the import reclaims them, `actors/preseed/importer/leases.py`).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from actors.preseed import ContainerdClient, ContainerdFailed, import_archive
from tests.support.containerd_daemon import ContainerdDaemon
from tests.support.ctr import check_status, image_names, leftovers
from tests.support.faults import BIG_IMAGE, NAMESPACE, ImportThread, big_archive
from tests.support.project import CLI

FLOW_TIMEOUT = 30.0
IMPORT_TIMEOUT = 60.0


@pytest.fixture(scope="module")
def archive() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="nc-faults-") as d:
        yield big_archive(Path(d))


def _interrupt(containerd: ContainerdDaemon, archive: Path, sig: signal.Signals) -> ImportThread:
    """Starts an import, and once bytes flow sends `sig` to containerd and reaps it."""
    job = ImportThread(containerd.address, archive)
    job.start()
    assert job.flowing.wait(FLOW_TIMEOUT), "the import never started sending"
    assert containerd.proc is not None
    containerd.proc.send_signal(sig)
    containerd.proc.wait(timeout=30)
    containerd.proc = None
    job.join(IMPORT_TIMEOUT)
    assert not job.is_alive(), "the import hung after containerd went away"
    return job


def _file_error(cause: str) -> re.Pattern[str]:
    return re.compile(rf"failed to import preseed image '{NAMESPACE}/big\.tar': {cause}")


@pytest.mark.timeout(120)
def test_containerd_stopping_mid_import_fails_clearly_leaves_no_image_and_a_later_import_completes(
    fresh_containerd: ContainerdDaemon, archive: Path
) -> None:
    job = _interrupt(fresh_containerd, archive, signal.SIGTERM)

    assert job.result is None and isinstance(job.error, ContainerdFailed)
    socket = re.escape(repr(fresh_containerd.address))
    assert _file_error(
        rf"containerd (socket {socket} does not exist|at {socket} is not answering: .+)"
    ).fullmatch(str(job.error)), str(job.error)

    fresh_containerd.start()
    assert image_names(fresh_containerd, NAMESPACE) == []
    with ContainerdClient(fresh_containerd.address) as client:
        result = import_archive(client, archive, namespace=NAMESPACE)
    assert [i.name for i in result.images] == [BIG_IMAGE]
    assert check_status(fresh_containerd, NAMESPACE) == {BIG_IMAGE: "complete"}


@pytest.mark.timeout(120)
def test_the_import_command_says_in_one_line_that_containerd_went_away_and_exits_1(
    fresh_containerd: ContainerdDaemon, archive: Path
) -> None:
    cli = subprocess.Popen(
        [
            *CLI,
            "import",
            "--address",
            fresh_containerd.address,
            "--namespace",
            NAMESPACE,
            str(archive),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + FLOW_TIMEOUT
    while not fresh_containerd.ctr("content", "active", namespace=NAMESPACE).count("\n") > 1:
        assert time.monotonic() < deadline, "the import never began an ingest"
        assert cli.poll() is None, f"import ended early: {cli.communicate()}"
    assert fresh_containerd.proc is not None
    fresh_containerd.proc.send_signal(signal.SIGTERM)
    fresh_containerd.proc.wait(timeout=30)
    fresh_containerd.proc = None
    out, err = cli.communicate(timeout=IMPORT_TIMEOUT)

    assert cli.returncode == 1
    socket = re.escape(repr(fresh_containerd.address))
    assert re.fullmatch(
        rf"error: failed to import preseed image '{NAMESPACE}/big\.tar': containerd "
        rf"(socket {socket} does not exist|at {socket} is not answering: [^\n]+)\n",
        err,
    ), err
    assert out == ""


@pytest.mark.timeout(120)
def test_an_unlinked_socket_spares_the_import_under_way_and_a_new_import_says_it_is_gone(
    fresh_containerd: ContainerdDaemon, archive: Path
) -> None:
    job = ImportThread(fresh_containerd.address, archive)
    job.start()
    assert job.flowing.wait(FLOW_TIMEOUT)
    os.unlink(fresh_containerd.address)
    job.join(IMPORT_TIMEOUT)

    assert job.error is None and job.result is not None
    assert [i.name for i in job.result.images] == [BIG_IMAGE]
    with (
        ContainerdClient(fresh_containerd.address, timeout=5) as client,
        pytest.raises(ContainerdFailed) as info,
    ):
        import_archive(client, archive, namespace=NAMESPACE)
    assert str(info.value) == (
        f"failed to import preseed image '{NAMESPACE}/big.tar': "
        f"containerd socket {fresh_containerd.address!r} does not exist"
    )

    fresh_containerd.restart()
    assert check_status(fresh_containerd, NAMESPACE) == {BIG_IMAGE: "complete"}
    with ContainerdClient(fresh_containerd.address) as client:
        again = import_archive(client, archive, namespace=NAMESPACE)
    assert again.blobs_skipped >= 4, "the layers imported before the restart are kept"


@pytest.mark.timeout(120)
def test_containerd_killed_mid_import_leaves_no_image_and_a_reimport_after_restart_completes(
    fresh_containerd: ContainerdDaemon, archive: Path
) -> None:
    job = _interrupt(fresh_containerd, archive, signal.SIGKILL)

    assert job.result is None and isinstance(job.error, ContainerdFailed)
    assert _file_error(".+").fullmatch(str(job.error))
    fresh_containerd.start()
    assert image_names(fresh_containerd, NAMESPACE) == []
    with ContainerdClient(fresh_containerd.address) as client:
        result = import_archive(client, archive, namespace=NAMESPACE)
    assert ([i.name for i in result.images], result.warnings) == ([BIG_IMAGE], ())
    assert check_status(fresh_containerd, NAMESPACE) == {BIG_IMAGE: "complete"}


@pytest.mark.timeout(120)
def test_containerd_killed_mid_import_leaves_no_lease_or_ingest_once_reimported(
    fresh_containerd: ContainerdDaemon, archive: Path
) -> None:
    _interrupt(fresh_containerd, archive, signal.SIGKILL)
    fresh_containerd.start()
    with ContainerdClient(fresh_containerd.address) as client:
        import_archive(client, archive, namespace=NAMESPACE)

    assert leftovers(fresh_containerd, NAMESPACE) == {"leases": 0, "ingests": 0}
