"""Backoff: cenkalti's ExponentialBackOff semantics, with an injected random source."""

from __future__ import annotations

import random

from actors.supervisor import RestartPolicy
from actors.supervisor.core.backoff import Backoff


def test_the_defaults_are_go_s() -> None:
    assert Backoff() == Backoff(initial=0.5, multiplier=1.5, jitter=0.5, maximum=60.0, current=0.5)
    assert Backoff.from_policy(RestartPolicy()) == Backoff()


def test_the_unjittered_delay_grows_by_the_multiplier_and_is_capped() -> None:
    backoff = Backoff(initial=1.0, multiplier=2.0, jitter=0.0, maximum=8.0, current=1.0)
    rng = random.Random(0)
    delays = []
    for _ in range(6):
        delay, backoff = backoff.next(rng)
        delays.append(delay)

    assert delays == [1.0, 2.0, 4.0, 8.0, 8.0, 8.0]
    assert backoff.current == 8.0


def test_the_cap_applies_once_the_next_growth_would_reach_it() -> None:
    backoff = Backoff(initial=0.5, multiplier=1.5, jitter=0.0, maximum=60.0, current=40.0)

    _, grown = backoff.next(random.Random(0))

    assert grown.current == 60.0  # 40 >= 60 / 1.5: straight to the cap, as in Go


def test_jittered_delays_stay_within_their_bounds_and_follow_the_seeded_source() -> None:
    backoff, rng, twin = Backoff(), random.Random(42), random.Random(42)
    for _ in range(200):
        current = backoff.current
        delay, backoff = backoff.next(rng)
        u = twin.random()
        assert delay == current - 0.5 * current + u * 2 * 0.5 * current
        assert current * 0.5 <= delay <= current * 1.5


def test_a_drawn_delay_may_exceed_the_cap_by_the_jitter() -> None:
    backoff = Backoff(initial=60.0, multiplier=1.5, jitter=0.5, maximum=60.0, current=60.0)

    class High(random.Random):
        def random(self) -> float:
            return 0.999

    delay, _ = backoff.next(High())

    assert 60.0 < delay < 90.0


def test_every_draw_uses_the_random_source_once_even_without_jitter() -> None:
    rng, twin = random.Random(7), random.Random(7)
    Backoff(jitter=0.0).next(rng)
    twin.random()

    assert rng.random() == twin.random()


def test_reset_returns_to_the_initial_delay() -> None:
    backoff = Backoff(initial=0.5, current=33.0)

    assert backoff.reset() == Backoff(initial=0.5, current=0.5)
