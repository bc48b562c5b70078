"""The soak's verdict and its output: the invariants judged, the table, the JSON line.

`judge` turns a finished `SoakReport` into its violations; `rss_verdict`
decides how the root's memory is compared (see `RssVerdict`); `render_table`
prints the report and `summary` is the last line's JSON object.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Any

from bench.soak_model import HEARTBEAT_S, KINDS, MISSED_HEARTBEATS, SoakReport

__all__ = ["STEADY_MIN_FAULTS", "RssVerdict", "judge", "render_table", "rss_verdict", "summary"]


def judge(r: SoakReport, sink_missed: int) -> None:
    """Appends to `r.violations` every invariant the run broke (see `soaklib`).

    Args:
        r: the run's report, complete but for its verdict.
        sink_missed: entries the JSON sink reported missing.
    """
    s, v = r.settings, r.violations
    window = MISSED_HEARTBEATS * HEARTBEAT_S
    for f in r.faults:
        if not f.recovered:
            v.append(f"fault {f.n} ({f.kind}, {f.outcome}) not recovered: {f.note}")
        if f.outcome == "caught" and f.detect_s is not None and f.detect_s > window + 0.5:
            v.append(f"fault {f.n} ({f.kind}): stop caught only after {f.detect_s:.2f} s")
    for f in r.faults:
        long_stop = f.stop_s is not None and f.stop_s > window
        if long_stop and f.kind != "stop containerd" and f.outcome == "resumed":
            v.append(f"fault {f.n} ({f.kind}): stopped {f.stop_s:.1f} s, heartbeat missed it")
    if s.preseed and r.images_complete != r.images_expected:
        missing = sorted(set(r.images_expected) - set(r.images_complete))
        v.append(f"images not complete: {missing}")
    rss = rss_verdict(r)
    if not rss.ok:
        a, b = rss.steady_between if rss.judged == "steady" else rss.literal_between
        pct = rss.steady_pct if rss.judged == "steady" else rss.literal_pct
        v.append(f"root RSS grew {pct:.1f} % between fault {a} and fault {b}")
    lines = r.lines
    if lines is not None:
        if lines.unexplained:
            v.append(f"lines lost that no pump death explains: {lines.unexplained[:10]}")
        if lines.worst_per_death > lines.bound_per_death:
            v.append(
                f"a pump death lost {lines.worst_per_death} lines, "
                f"over the bound of {lines.bound_per_death}"
            )
        if lines.duplicates or lines.out_of_order:
            v.append(f"{lines.duplicates} duplicate and {lines.out_of_order} out-of-order lines")
        if sink_missed:
            v.append(f"the JSON sink missed {sink_missed} entries")
    if r.exit_code != 0:
        v.append(f"agent exit code after SIGTERM: {r.exit_code}")
    if r.leftovers:
        v.append(f"{len(r.leftovers)} processes left: {r.leftovers}")


@dataclass(frozen=True, slots=True)
class RssVerdict:
    """The root's memory over the faults, as judged."""

    #: Growth from after fault 20 to after fault 200 (the first sample at or past it; the last fault
    #: in a shorter run), percent.
    literal_pct: float | None
    #: The two fault numbers compared.
    literal_between: tuple[int, int]
    #: Growth from the first sample at which every DN still logging had filled its log retention
    #: (`SoakSettings.log_keep` entries) to the last fault, percent.
    steady_pct: float | None
    #: The two fault numbers compared.
    steady_between: tuple[int, int]
    #: "steady" when that window spans at least `STEADY_MIN_FAULTS` faults (bounded retention
    #: filling up is not a leak), else "literal".
    judged: str
    #: The judged growth is within the tolerance.
    ok: bool


#: The fewest faults after every log retention is full for the steady comparison.
STEADY_MIN_FAULTS = 100


def rss_verdict(r: SoakReport) -> RssVerdict:
    """Compares the root's RSS across the faults; see `RssVerdict`."""
    literal_pct, literal_between = None, (r.rss_mid_after, r.rss_end_after)
    if "mid" in r.rss and "end" in r.rss:
        at, mb = next(((n, m) for n, m, _ in r.rss_samples if n >= 200), (None, None))
        if at is None or mb is None:
            at, mb = r.rss_end_after, r.rss["end"]
        literal_between = (r.rss_mid_after, at)
        literal_pct = round((mb - r.rss["mid"]) / r.rss["mid"] * 100, 2)
    full = next(((n, m) for n, m, f in r.rss_samples if f), None)
    steady_pct, steady_between = None, (0, 0)
    if full is not None and "end" in r.rss and full[0] < r.rss_end_after:
        steady_between = (full[0], r.rss_end_after)
        steady_pct = round((r.rss["end"] - full[1]) / full[1] * 100, 2)
    tolerance = r.settings.rss_tolerance_pct
    if steady_pct is not None and steady_between[1] - steady_between[0] >= STEADY_MIN_FAULTS:
        return RssVerdict(
            literal_pct,
            literal_between,
            steady_pct,
            steady_between,
            "steady",
            steady_pct <= tolerance,
        )
    ok = literal_pct is None or literal_pct <= tolerance
    return RssVerdict(literal_pct, literal_between, steady_pct, steady_between, "literal", ok)


def summary(r: SoakReport) -> dict[str, Any]:
    """The last line's JSON object."""
    rec = [f.recovery_s for f in r.faults if f.recovery_s is not None]
    by_kind: dict[str, int] = {}
    for f in r.faults:
        by_kind[f.kind] = by_kind.get(f.kind, 0) + 1
    rss = rss_verdict(r)
    lines = r.lines
    return {
        "mode": r.settings.mode,
        "seed": r.settings.seed,
        "faults": len(r.faults),
        "faults_by_kind": by_kind,
        "missed_targets": r.missed,
        "left_out": r.left_out,
        "recovered": sum(f.recovered for f in r.faults),
        "recovery_s_p50": round(statistics.median(rec), 3) if rec else None,
        "recovery_s_max": round(max(rec), 3) if rec else None,
        "stops_caught": sum(f.outcome == "caught" for f in r.faults),
        "lines_written": lines.written if lines else 0,
        "lines_received": lines.received if lines else 0,
        "lines_lost": lines.lost if lines else 0,
        "lines_lost_unexplained": lines.unexplained_lines if lines else 0,
        "loss_bound_per_pump_kill": lines.bound_per_death if lines else 0,
        "pump_kills": len(r.pump_deaths),
        "rss_mb_start": round(r.rss.get("start", 0.0), 1),
        "rss_mb_mid": round(r.rss.get("mid", 0.0), 1),
        "rss_mb_end": round(r.rss.get("end", 0.0), 1),
        "rss_compared": "after fault {} vs after fault {}".format(*rss.literal_between),
        "rss_growth_pct": rss.literal_pct,
        "rss_mb_every_20_faults": [round(m, 1) for _, m, _ in r.rss_samples],
        "rss_growth_after_retention_full_pct": rss.steady_pct,
        "rss_steady_compared": (
            "after fault {} vs after fault {}".format(*rss.steady_between)
            if rss.steady_pct is not None
            else None
        ),
        "rss_judged": rss.judged,
        "images_expected": len(r.images_expected),
        "images_complete": len(r.images_complete),
        "preseed": r.settings.preseed,
        "exit_code": r.exit_code,
        "leftover_processes": len(r.leftovers),
        "ok": r.ok,
        "violations": r.violations,
    }


def render_table(r: SoakReport) -> str:
    """The soak's table (without the JSON line)."""
    out = []
    s = r.settings
    out.append(
        f"chaos soak, {s.mode} mode, seed {s.seed}: {len(r.faults)} faults in "
        f"{r.fault_phase_s:.0f} s ({r.missed} targets gone before the signal, not counted)"
    )
    out.append(
        f"recovery bound per fault = backoff drawn + {s.start_bound_s:g} s "
        "(+ time to the next fault of a chain)"
    )
    head = (
        f"{'fault':<22}{'n':>4}{'outcome':>22}{'recovered':>10}"
        f"{'p50 s':>8}{'max s':>8}{'bound s':>9}"
    )
    out.append(head)
    out.append("-" * len(head))
    order = [f"{action} {target}" for action, target in KINDS]
    kinds = sorted({f.kind for f in r.faults}, key=order.index)
    for kind in [*kinds, "all"]:
        fs = [f for f in r.faults if kind in ("all", f.kind)]
        rec = [f.recovery_s for f in fs if f.recovery_s is not None]
        outcomes: dict[str, int] = {}
        for f in fs:
            outcomes[f.outcome] = outcomes.get(f.outcome, 0) + 1
        shown = " ".join(f"{k}:{v}" for k, v in sorted(outcomes.items())) if kind != "all" else ""
        tight = min(((f.bound_s or 0) for f in fs if f.recovery_s is not None), default=0.0)
        out.append(
            f"{kind:<22}{len(fs):>4}{shown:>22}{sum(f.recovered for f in fs):>10}"
            f"{(statistics.median(rec) if rec else 0):>8.2f}{(max(rec) if rec else 0):>8.2f}"
            f"{tight:>9.2f}"
        )
    for why, count in sorted(r.missed_why.items()):
        out.append(f"not counted ({count}×): {why}")
    for action, why in sorted(r.left_out.items()):
        out.append(f"left out of this run: {action} faults ({why})")
    caught = [f.detect_s for f in r.faults if f.outcome == "caught" and f.detect_s]
    if caught:
        window = MISSED_HEARTBEATS * HEARTBEAT_S
        out.append(
            f"stops caught by the heartbeat: {len(caught)}, SIGSTOP→killed in "
            f"{min(caught):.2f}–{max(caught):.2f} s (window {window:g} s)"
        )
    ln = r.lines
    pump_kills = len(r.pump_deaths)
    mid_import = sum(f.note.startswith("while importing") for f in r.faults)
    if s.preseed:
        out.append(f"preseed kills/stops that hit an import under way: {mid_import}")
    if ln is not None:
        out.append(
            f"lines: written {ln.written}, received {ln.received}, lost {ln.lost} "
            f"({pump_kills} pump kills, {len(ln.charged)} of them lost lines, worst "
            f"{ln.worst_per_death}, bound {ln.bound_per_death} per kill; "
            f"unexplained {ln.unexplained_lines}; "
            f"spoilt {ln.spoilt}; duplicates {ln.duplicates}; out of order {ln.out_of_order})"
        )
    mid = (
        f"after fault {r.rss_mid_after} {r.rss['mid']:.1f}"
        if "mid" in r.rss
        else f"fault {s.rss_mid_fault} not reached"
    )
    out.append(
        f"root RSS MB: start {r.rss.get('start', 0):.1f}, {mid}, after fault "
        f"{r.rss_end_after} {r.rss.get('end', 0):.1f}"
        + ("" if r.rss_end_after >= 200 else "  (short run: 200-vs-20 needs --long)")
    )
    if r.rss_samples:
        curve = " ".join(f"{m:.1f}{'*' if f else ''}" for _, m, f in r.rss_samples)
        out.append(
            f"root RSS MB every {s.rss_every} faults: {curve}  (*: the log retention "
            f"({s.log_keep} entries) of every DN still logging is full)"
        )
    entries = ", ".join(f"{dn} {c}" for dn, c in r.entries_per_dn.items())
    if entries:
        out.append(
            f"log entries per DN over the run (the tree keeps the newest "
            f"{s.log_keep} of each): {entries}"
        )
    rss = rss_verdict(r)
    if rss.literal_pct is not None:
        a, b = rss.literal_between
        out.append(
            f"root RSS growth after fault {b} vs after fault {a}: {rss.literal_pct:+.1f} %"
            + ("  (judged)" if rss.judged == "literal" else "")
        )
    if rss.steady_pct is not None:
        a, b = rss.steady_between
        out.append(
            f"root RSS growth once every log retention was full, fault {a} → {b}: "
            f"{rss.steady_pct:+.1f} %"
            + (
                "  (judged)"
                if rss.judged == "steady"
                else f"  (not judged: under {STEADY_MIN_FAULTS} faults)"
            )
        )
    if s.preseed:
        out.append(
            f"images: {len(r.images_complete)}/{len(r.images_expected)} complete "
            f"(ctr images check); leases left {r.leases_left}, ingests left {r.ingests_left}"
        )
    else:
        out.append("images: preseed disabled (development run): not checked")
    out.append(
        f"shutdown: SIGTERM → exit {r.exit_code} in {r.shutdown_s:.1f} s; leftover processes "
        f"{len(r.leftovers)} (of {r.processes_seen} seen)"
    )
    for line in r.leftovers:
        out.append(f"  left: {line}")
    out.append("violations: " + ("none" if r.ok else ""))
    for v in r.violations:
        out.append(f"  - {v}")
    if not r.ok or s.keep:
        out.append(f"work directory kept: {r.workdir}")
    return "\n".join(out)
