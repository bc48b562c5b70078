"""Which exits of `check`'s own container are a pass (`actors.agent.check._clean_exit`)."""

from __future__ import annotations

import signal

import pytest

from actors.agent.check import _clean_exit


def test_exit_0_passes_whether_or_not_check_stopped_it() -> None:
    assert _clean_exit(0, stopped_by_us=False)
    assert _clean_exit(0, stopped_by_us=True)


def test_death_by_check_s_own_sigterm_passes() -> None:
    # RUNNING is reported once the process is started, before a pause's `trap` runs:
    # a StopContainer sent at once may kill it by SIGTERM's default action.
    assert _clean_exit(128 + signal.SIGTERM, stopped_by_us=True)


@pytest.mark.parametrize(
    ("code", "stopped"),
    [
        (128 + signal.SIGTERM, False),  # nobody here sent it: something else killed it
        (128 + signal.SIGKILL, True),  # ignored the SIGTERM until the grace ran out
        (1, True),
        (1, False),
        (2, False),
    ],
)
def test_any_other_exit_fails(code: int, stopped: bool) -> None:
    assert not _clean_exit(code, stopped_by_us=stopped)
