"""SIGINT, SIGTERM and SIGHUP end a command alike, and never cut a shielded cleanup short."""

from __future__ import annotations

import os
import signal
import time

import pytest

from actors.agent.interrupts import Interrupted, SignalGuard


def _signal_self(signum: int) -> None:
    os.kill(os.getpid(), signum)
    time.sleep(5)  # the handler raises before this ends
    raise AssertionError("no Interrupted")


@pytest.mark.parametrize(
    ("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143), (signal.SIGHUP, 129)]
)
def test_each_signal_raises_interrupted_with_128_plus_its_number(signum: int, code: int) -> None:
    guard = SignalGuard()
    with pytest.raises(Interrupted) as caught, guard.installed():
        _signal_self(signum)
    assert (caught.value.signum, caught.value.exit_code) == (signum, code)
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_a_signal_during_a_shielded_cleanup_is_raised_once_it_ends() -> None:
    guard = SignalGuard()
    steps: list[str] = []
    with pytest.raises(Interrupted) as caught, guard.installed():
        with guard.shielded():
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.2)
            os.kill(os.getpid(), signal.SIGINT)  # a second one is not obeyed either
            time.sleep(0.2)
            steps.append("cleanup finished")
        steps.append("not reached")
    assert steps == ["cleanup finished"]
    assert caught.value.signum == signal.SIGTERM


def test_a_kept_signal_replaces_the_error_a_shielded_cleanup_ran_after() -> None:
    """An interruption is never swallowed by the failure whose cleanup it hit."""
    guard = SignalGuard()
    with pytest.raises(Interrupted), guard.installed():
        try:
            raise OSError("container is in starting state")
        finally:
            with guard.shielded():
                os.kill(os.getpid(), signal.SIGINT)
                time.sleep(0.2)
