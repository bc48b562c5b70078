"""The one severity vocabulary: its order, codes, numbers and names, and their errors."""

from __future__ import annotations

import pytest

from actors.supervisor.core.errors import InvalidSeverity
from actors.supervisor.core.severity import SEVERITY_NAMES, Severity


def test_severities_are_ordered_and_have_glog_codes() -> None:
    assert Severity.DEBUG < Severity.INFO < Severity.WARNING < Severity.ERROR < Severity.FATAL
    assert [s.code for s in Severity] == ["D", "I", "W", "E", "F"]
    assert Severity.from_code("E") is Severity.ERROR
    with pytest.raises(InvalidSeverity) as caught:
        Severity.from_code("X")
    assert (
        str(caught.value) == "severity code 'X' is invalid: expected one of 'D', 'I', 'W', 'E', 'F'"
    )


def test_severities_have_one_mapping_for_codes_proto_syslog_and_logging() -> None:
    assert [(s.code, s.proto, s.syslog) for s in Severity] == [
        ("D", 4, 7),
        ("I", 0, 6),
        ("W", 1, 4),
        ("E", 2, 3),
        ("F", 3, 2),
    ]
    assert [Severity.from_proto(n) for n in range(5)] == [
        Severity.INFO,
        Severity.WARNING,
        Severity.ERROR,
        Severity.FATAL,
        Severity.DEBUG,
    ]
    assert [Severity.from_logging(n) for n in (5, 10, 20, 30, 40, 50, 60)] == [
        Severity.DEBUG,
        Severity.DEBUG,
        Severity.INFO,
        Severity.WARNING,
        Severity.ERROR,
        Severity.FATAL,
        Severity.FATAL,
    ]
    assert Severity.from_name("warning") is Severity.WARNING
    with pytest.raises(InvalidSeverity) as caught:
        Severity.from_name("verbose")
    assert str(caught.value) == (
        "severity 'verbose' is invalid: use one of DEBUG, INFO, WARNING, ERROR, FATAL"
    )
    with pytest.raises(InvalidSeverity) as caught:
        Severity.from_proto(9)
    assert str(caught.value) == "severity number 9 is invalid"


def test_the_names_are_listed_once_lowest_first() -> None:
    assert SEVERITY_NAMES == ("DEBUG", "INFO", "WARNING", "ERROR", "FATAL")
    assert [Severity[name] for name in SEVERITY_NAMES] == sorted(Severity)
