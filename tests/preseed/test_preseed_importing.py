"""The `importing` fact: what the preseed reports while files import, and when."""

from __future__ import annotations

from typing import Any

from actors.preseed.importing import ImportProgress, ImportsUnderWay, imports_of


class _Reports:
    def __init__(self) -> None:
        self.now = 100.0
        self.sent: list[list[dict[str, Any]] | None] = []

    def clock(self) -> float:
        return self.now


def _entry(file: str, done: int, total: int, rate: float) -> dict[str, Any]:
    return {"file": file, "bytes_done": done, "bytes_total": total, "bytes_per_second": rate}


def test_a_file_is_reported_at_once_then_at_most_once_a_second_and_withdrawn_at_its_end():
    r = _Reports()
    imports = ImportsUnderWay(r.sent.append, clock=r.clock)
    for t, done in ((100.0, 0), (100.5, 50), (101.0, 100), (101.2, 150), (102.5, 400)):
        r.now = t
        imports.progress("k8s.io/big.tar", done, 1000)
    imports.ended("k8s.io/big.tar")
    assert r.sent == [
        [_entry("k8s.io/big.tar", 0, 1000, 0.0)],
        [_entry("k8s.io/big.tar", 100, 1000, 100.0)],
        [_entry("k8s.io/big.tar", 400, 1000, 160.0)],
        None,
    ]


def test_each_file_has_its_own_second_and_the_fact_lists_every_file_under_way():
    r = _Reports()
    imports = ImportsUnderWay(r.sent.append, clock=r.clock)
    imports.progress("ns/b.tar", 0, 10)
    r.now = 100.5
    imports.progress("ns/a.tar", 0, 20)
    imports.progress("ns/b.tar", 5, 10)  # b's second is not over: not reported
    imports.ended("ns/a.tar")
    assert r.sent == [
        [_entry("ns/b.tar", 0, 10, 0.0)],
        [_entry("ns/a.tar", 0, 20, 0.0), _entry("ns/b.tar", 0, 10, 0.0)],
        # b's newest progress goes out with the next report, whoever causes it
        [_entry("ns/b.tar", 5, 10, 10.0)],
    ]


def test_a_file_that_never_reported_progress_ends_without_a_report():
    r = _Reports()
    imports = ImportsUnderWay(r.sent.append, clock=r.clock)
    imports.ended("ns/unchanged.tar")
    assert r.sent == []


def test_status_reads_the_fact_back_in_mib_and_skips_entries_of_another_shape():
    value = [
        _entry("k8s.io/big.tar", 312 << 20, 524 << 20, 95.4 * (1 << 20)),
        {"file": "x", "bytes_done": "many"},
        # a whole number comes back from the control socket as a float
        {"file": "ns/a.tar", "bytes_done": 0.0, "bytes_total": 0.0, "bytes_per_second": 0.0},
    ]
    assert [p.text() for p in imports_of(value)] == [
        "importing k8s.io/big.tar: 312 MiB of 524 MiB (59%), 95 MiB/s",
        "importing ns/a.tar: 0 MiB of 0 MiB (100%), 0 MiB/s",
    ]
    assert imports_of(None) == []
    assert ImportProgress.from_fact(_entry("f", 1, 2, 3.0)) == ImportProgress("f", 1, 2, 3.0)
