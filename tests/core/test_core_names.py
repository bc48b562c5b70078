"""Names and DNs: whole-name validation, DN helpers, the error texts."""

from __future__ import annotations

import pytest

from actors.supervisor import InvalidName, SupervisionError
from actors.supervisor.core.names import (
    ancestors,
    child_dn,
    in_subtree,
    is_valid_dn,
    is_valid_name,
    name_of,
    parent_dn,
    validate_dn,
    validate_name,
)


@pytest.mark.parametrize("name", ["a", "root", "one_two", "r1", "0", "_", "a" * 64])
def test_lowercase_digits_and_underscores_up_to_64_are_valid_names(name: str) -> None:
    assert is_valid_name(name)
    assert validate_name(name) == name


@pytest.mark.parametrize(
    "name", ["", "a" * 65, "Foo", "oneSibling", "a.b", "a-b", "a b", " a", "é", "a\n", 3, None]
)
def test_anything_else_is_invalid_even_when_part_of_it_matches(name: object) -> None:
    assert not is_valid_name(name)
    with pytest.raises(InvalidName) as e:
        validate_name(name)
    assert str(e.value) == f"runnable name {name!r} is invalid"
    assert isinstance(e.value, SupervisionError) and isinstance(e.value, ValueError)


def test_the_error_names_what_was_checked() -> None:
    with pytest.raises(InvalidName) as e:
        validate_name("Dut", what="sub-logger name")
    assert str(e.value) == "sub-logger name 'Dut' is invalid"


@pytest.mark.parametrize("dn", ["root", "root.a", "root.a.b_c.d1"])
def test_a_dn_is_root_followed_by_valid_names(dn: str) -> None:
    assert is_valid_dn(dn)
    assert validate_dn(dn) == dn


@pytest.mark.parametrize("dn", ["", "a", "root.", "root..a", "root.A", "roots.a", ".root", 1])
def test_malformed_dns_are_refused(dn: object) -> None:
    assert not is_valid_dn(dn)
    with pytest.raises(InvalidName) as e:
        validate_dn(dn)
    assert str(e.value) == f"dn {dn!r} is invalid"


def test_dn_helpers_walk_the_path() -> None:
    assert child_dn("root.a", "b") == "root.a.b"
    assert parent_dn("root.a.b") == "root.a"
    assert parent_dn("root") is None
    assert name_of("root.a.b") == "b"
    assert name_of("root") == "root"
    assert ancestors("root.a.b") == ("root", "root.a")
    assert ancestors("root") == ()
    assert in_subtree("root.a.b", "root.a")
    assert in_subtree("root.a", "root.a")
    assert not in_subtree("root.ab", "root.a")
