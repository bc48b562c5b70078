"""Typed runnable specs across the link: what the root sends is what the runnable gets."""

from __future__ import annotations

import dataclasses
from types import MappingProxyType

import msgpack
import pytest

from actors.agent.root import RootSpec
from actors.containerd.core.spec import ContainerdSpec, PreseedSpec
from messages.errors import ProtocolError
from messages.specs import spec_from_wire, spec_to_wire
from tests.support.specs import containerd_spec, preseed_spec


def through_msgpack(wire: dict[str, object]) -> dict[str, object]:
    return msgpack.unpackb(msgpack.packb(wire), raw=False)  # type: ignore[no-any-return]


def test_a_spec_with_its_childrens_specs_crosses_msgpack_unchanged() -> None:
    preseed = preseed_spec("/s", labels=MappingProxyType({"a": "b"}), sandbox_image=None)
    spec = containerd_spec("/s", preseed=preseed, liveness_interval=None)
    root = RootSpec(containerd=spec)
    assert spec_from_wire(RootSpec, through_msgpack(spec_to_wire(root))) == root


def test_every_field_of_the_wire_form_is_named_as_in_the_dataclass() -> None:
    spec = containerd_spec("/s")
    assert list(spec_to_wire(spec)) == [f.name for f in dataclasses.fields(ContainerdSpec)]


def test_an_int_is_a_float_where_a_float_is_wanted() -> None:
    wire = spec_to_wire(containerd_spec("/s"))
    wire["ready_timeout"] = 30
    spec = spec_from_wire(ContainerdSpec, wire)
    assert spec.ready_timeout == 30.0 and isinstance(spec.ready_timeout, float)


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("config", 5, "ContainerdSpec.config: expected str, got 5"),
        ("liveness_failures", True, "ContainerdSpec.liveness_failures: expected int, got True"),
        ("liveness_interval", "5s", "ContainerdSpec.liveness_interval: expected float, got '5s'"),
        ("preseed", [], "ContainerdSpec.preseed: expected a map, got []"),
    ],
)
def test_a_mistyped_field_is_refused_naming_the_spec_and_the_field(
    key: str, value: object, message: str
) -> None:
    wire = spec_to_wire(containerd_spec("/s"))
    wire[key] = value
    with pytest.raises(ProtocolError) as e:
        spec_from_wire(ContainerdSpec, wire)
    assert str(e.value) == message


def test_a_missing_or_unknown_field_is_refused() -> None:
    wire = spec_to_wire(containerd_spec("/s"))
    del wire["binary"]
    with pytest.raises(ProtocolError) as e:
        spec_from_wire(ContainerdSpec, wire)
    assert str(e.value) == "ContainerdSpec.binary: missing"
    wire = spec_to_wire(preseed_spec("/s"))
    wire["enabled"] = True
    with pytest.raises(ProtocolError) as e:
        spec_from_wire(PreseedSpec, wire)
    assert str(e.value) == "PreseedSpec: unknown field(s) 'enabled'"


def test_labels_must_map_strings_to_strings() -> None:
    wire = spec_to_wire(preseed_spec("/s"))
    wire["labels"] = {"a": 1}
    with pytest.raises(ProtocolError) as e:
        spec_from_wire(PreseedSpec, wire)
    assert str(e.value) == "PreseedSpec.labels: expected a map of strings, got {'a': 1}"
