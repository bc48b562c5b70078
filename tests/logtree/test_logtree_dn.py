"""DN validation and subtree matching."""

from __future__ import annotations

import pytest

from actors.logtree import LogTreeError, in_subtree, validate_dn


@pytest.mark.parametrize("dn", ["root", "root.containerd.runsc", "a_1.b2", "x" * 64])
def test_valid_dns_are_returned_unchanged(dn: str) -> None:
    assert validate_dn(dn) == dn


@pytest.mark.parametrize(
    ("dn", "message"),
    [
        ("root.Foo", "dn 'root.Foo' is invalid: part 'Foo' does not match [a-z0-9_]{1,64}"),
        ("root..a", "dn 'root..a' is invalid: part '' does not match [a-z0-9_]{1,64}"),
        ("root.", "dn 'root.' is invalid: part '' does not match [a-z0-9_]{1,64}"),
        ("", "dn '' is invalid: part '' does not match [a-z0-9_]{1,64}"),
        ("root.a-b", "dn 'root.a-b' is invalid: part 'a-b' does not match [a-z0-9_]{1,64}"),
        ("root.a\n", "dn 'root.a\\n' is invalid: part 'a\\n' does not match [a-z0-9_]{1,64}"),
    ],
)
def test_invalid_dns_are_rejected_naming_the_bad_part(dn: str, message: str) -> None:
    with pytest.raises(LogTreeError) as caught:
        validate_dn(dn)
    assert str(caught.value) == message


def test_a_part_of_65_characters_is_rejected() -> None:
    dn = "root." + "a" * 65
    with pytest.raises(LogTreeError) as caught:
        validate_dn(dn)
    assert str(caught.value) == (
        f"dn {dn!r} is invalid: part {'a' * 65!r} does not match [a-z0-9_]{{1,64}}"
    )


def test_a_dn_that_is_not_a_string_is_rejected() -> None:
    with pytest.raises(LogTreeError) as caught:
        validate_dn(b"root")
    assert str(caught.value) == "dn b'root' is invalid: not a string"


def test_log_tree_error_is_a_value_error() -> None:
    assert issubclass(LogTreeError, ValueError)


def test_subtree_of_root_a_holds_itself_and_descendants_but_not_root_ab() -> None:
    assert in_subtree("root.a", "root.a")
    assert in_subtree("root.a.b", "root.a")
    assert in_subtree("root.a.b.c", "root.a")
    assert not in_subtree("root.ab", "root.a")
    assert not in_subtree("root", "root.a")


def test_empty_pattern_covers_every_dn() -> None:
    assert in_subtree("root", "")
    assert in_subtree("other.x", "")
