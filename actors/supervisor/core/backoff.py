"""Exponential backoff with jitter, as Go's cenkalti/backoff `ExponentialBackOff`.

The Go supervisor gives every node such a backoff (with `MaxElapsedTime = 0`,
so it never gives up). Its semantics, which we keep exactly:

* `next`: the delay is drawn uniformly from
  `[current × (1 − jitter), current × (1 + jitter)]`; then `current` grows to
  `current × multiplier`, or to `maximum` once it would reach it
  (`current >= maximum / multiplier`). So `maximum` caps the *un-jittered*
  value; a drawn delay can exceed it by up to `jitter × maximum`.
* `reset`: `current` goes back to `initial`.

`Backoff` is an immutable value: `next` returns the delay and the following
state. The random source is injected (`random.Random`), one draw per `next`
even when the jitter is 0, so a seeded source gives a reproducible sequence.
"""

from __future__ import annotations

import dataclasses
import random
from dataclasses import dataclass

from actors.supervisor.core.policy import RestartPolicy

__all__ = ["Backoff"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Backoff:
    """The backoff state of one node. Durations in seconds."""

    #: The un-jittered delay of the first retry, and after a reset.
    initial: float = 0.5
    #: Factor by which the un-jittered delay grows after each retry.
    multiplier: float = 1.5
    #: Randomisation factor in [0, 1): the delay is current ± jitter × current.
    jitter: float = 0.5
    #: Cap of the un-jittered delay.
    maximum: float = 60.0
    #: The un-jittered delay of the next retry.
    current: float = 0.5

    @classmethod
    def from_policy(cls, policy: RestartPolicy) -> Backoff:
        """A fresh backoff with the policy's parameters."""
        return cls(
            initial=policy.backoff_initial,
            multiplier=policy.backoff_multiplier,
            jitter=policy.backoff_jitter,
            maximum=policy.backoff_max,
            current=policy.backoff_initial,
        )

    def next(self, rng: random.Random) -> tuple[float, Backoff]:
        """Draw the next delay.

        Args:
            rng: the random source; exactly one `rng.random()` is drawn.

        Returns:
            The delay in seconds and the backoff state after this retry.
        """
        delta = self.jitter * self.current
        delay = self.current - delta + rng.random() * 2 * delta
        if self.current >= self.maximum / self.multiplier:
            grown = self.maximum
        else:
            grown = self.current * self.multiplier
        return delay, dataclasses.replace(self, current=grown)

    def reset(self) -> Backoff:
        """The backoff after the node proved healthy: back to `initial`."""
        return dataclasses.replace(self, current=self.initial)
