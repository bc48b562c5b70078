"""Reading what we render with prometheus_client's own text parser, and the naming rules."""

from __future__ import annotations

import re

from prometheus_client.parser import text_string_to_metric_families

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]

#: Monogon's names, kept for its dashboards although they predate the naming rules.
MONOGON = {
    "monogon_supervisor_dn_state_total": "gauge",
    "monogon_supervisor_dn_state_transition_count": "untyped",
}

#: Units that are not base units (Prometheus wants seconds and bytes).
_NOT_BASE_UNITS = re.compile(
    r"_(milliseconds|microseconds|nanoseconds|minutes|hours|days|ms|us|ns|"
    r"kilobytes|megabytes|gigabytes|kib|mib|gib|kb|mb|gb|bits)(_|$)"
)


def parse(text: str) -> tuple[dict[str, str], Samples]:
    """Returns ({name as exposed: type}, {(sample name, sorted labels): value}).

    The text is read by ``prometheus_client.parser``; a family's exposed name is its
    counters' ``..._total``; a histogram's samples are its ``_bucket``, ``_sum`` and
    ``_count``. Raises on a malformed line, a family twice or a series twice.
    """
    assert text.endswith("\n"), "the exposition must end with a newline"
    types: dict[str, str] = {}
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        exposed = family.name + "_total" if family.type == "counter" else family.name
        assert exposed not in types, f"second family {exposed}"
        types[exposed] = "untyped" if family.type == "unknown" else family.type
        names = (
            {f"{exposed}_bucket", f"{exposed}_sum", f"{exposed}_count"}
            if family.type == "histogram"
            else {exposed}
        )
        for sample in family.samples:
            assert sample.name in names, f"sample {sample.name} in family {exposed}"
            key = (sample.name, tuple(sorted(sample.labels.items())))
            assert key not in samples, f"duplicate series {key}"
            samples[key] = sample.value
    return types, samples


def naming_problems(types: dict[str, str]) -> list[str]:
    """What breaks Prometheus's naming rules among ``types`` (Monogon's names exempt)."""
    problems = []
    for name, kind in sorted(types.items()):
        if MONOGON.get(name) == kind:
            continue
        if kind == "counter" and not name.endswith("_total"):
            problems.append(f"counter {name} does not end in _total")
        if kind != "counter" and name.endswith("_total"):
            problems.append(f"{kind} {name} ends in _total")
        if kind not in ("counter", "gauge", "histogram"):
            problems.append(f"{name} is {kind}")
        if kind == "histogram" and not name.endswith(("_seconds", "_bytes")):
            problems.append(f"histogram {name} does not end in its unit")
        if _NOT_BASE_UNITS.search(name):
            problems.append(f"{name} is not in base units")
        if not name.startswith("node_containerd_"):
            problems.append(f"{name} lacks the node_containerd_ prefix")
    return problems
