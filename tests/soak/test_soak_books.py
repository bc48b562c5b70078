"""The soak's books on lines, without processes: gaps charged to pump deaths, or not.

`account_losses` must charge a missing run of lines to the pump death whose window covers
when they were written, call every other missing line unexplained, and count duplicates
and disorder; `loss_bound_lines` must follow the documented bound (one read plus one
unsent chunk, and the two lines cut at the edges).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.soak_lines import (
    DeathWindow,
    JsonLogFollower,
    LossReport,
    account_losses,
    loss_bound_lines,
)


class _Books:
    """A writer's books: line n was written at wall time 1000 + n / 10."""

    def __init__(self, written: int) -> None:
        self.next_seq = written

    def written_at(self, seq: int) -> float:
        return 1000.0 + seq / 10


def _follower(received: list[int], spoilt: int = 0) -> JsonLogFollower:
    follower = JsonLogFollower(Path("/nonexistent"))
    follower.received = received
    follower.spoilt = spoilt
    return follower


def test_the_loss_bound_is_one_read_plus_one_chunk_in_lines_plus_the_two_cut_lines() -> None:
    assert loss_bound_lines(100, 65536, 65536) == 1311 + 2
    assert loss_bound_lines(64, 64, 64) == 2 + 2


def test_a_gap_written_just_before_a_pump_kill_is_charged_to_it() -> None:
    received = [n for n in range(100) if not 40 <= n <= 44]
    kill = DeathWindow(start=1004.5, end=1004.6, what="3 kill runsc (killed)")

    report = account_losses(_follower(received), _Books(100), [kill], 10, slack=1.0)  # type: ignore[arg-type]

    assert report == LossReport(
        written=100,
        received=95,
        lost=5,
        duplicates=0,
        out_of_order=0,
        spoilt=0,
        charged={"3 kill runsc (killed)": 5},
        worst_per_death=5,
        bound_per_death=10,
        unexplained=[],
    )


def test_a_gap_far_from_every_pump_death_is_unexplained() -> None:
    received = [n for n in range(100) if n not in (10, 11, 70)]
    kill = DeathWindow(start=1007.0, end=1007.1, what="1 kill runsc (killed)")

    report = account_losses(_follower(received), _Books(100), [kill], 10, slack=0.5)  # type: ignore[arg-type]

    assert (report.unexplained, report.unexplained_lines, report.charged) == (
        ["10-11"],
        2,
        {"1 kill runsc (killed)": 1},
    )


def test_lines_never_received_at_the_end_are_a_gap_too() -> None:
    report = account_losses(_follower(list(range(90))), _Books(100), [], 10)  # type: ignore[arg-type]

    assert (report.lost, report.unexplained) == (10, ["90-99"])


def test_duplicates_and_disorder_are_counted() -> None:
    report = account_losses(_follower([0, 1, 2, 2, 4, 3]), _Books(5), [], 10)  # type: ignore[arg-type]

    assert (report.duplicates, report.out_of_order, report.lost) == (1, 2, 0)


def _report(samples: list[tuple[int, float, bool]], mid: float, end: float, last: int) -> Any:
    from bench.soaklib import LONG, SoakReport

    report = SoakReport(settings=LONG)
    report.rss = {"start": 40.0, "mid": mid, "end": end}
    report.rss_mid_after, report.rss_end_after = 20, last
    report.rss_samples = samples
    return report


def test_rss_that_stops_growing_once_every_log_retention_is_full_is_judged_on_the_plateau() -> None:
    from bench.soaklib import RssVerdict, rss_verdict

    filling = [(n, 48.0 + n / 40, False) for n in range(20, 300, 20)]
    plateau = [(n, 56.0, True) for n in range(300, 420, 20)]

    verdict = rss_verdict(_report(filling + plateau, mid=48.0, end=56.1, last=400))

    assert verdict == RssVerdict(
        literal_pct=10.42,
        literal_between=(20, 200),
        steady_pct=0.18,
        steady_between=(300, 400),
        judged="steady",
        ok=True,
    )


def test_rss_growing_past_the_tolerance_with_no_plateau_is_a_failure() -> None:
    from bench.soaklib import rss_verdict

    samples = [(n, 48.0 + n / 20, False) for n in range(20, 240, 20)]

    verdict = rss_verdict(_report(samples, mid=48.0, end=59.0, last=220))

    assert (verdict.judged, verdict.literal_between, verdict.ok) == ("literal", (20, 200), False)


def test_a_short_run_compares_fault_20_with_its_last_fault() -> None:
    from bench.soaklib import rss_verdict

    verdict = rss_verdict(_report([(20, 48.0, False)], mid=48.0, end=48.5, last=27))

    assert (verdict.literal_between, verdict.literal_pct, verdict.judged, verdict.ok) == (
        (20, 27),
        1.04,
        "literal",
        True,
    )
