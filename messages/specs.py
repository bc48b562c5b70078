"""A runnable's typed spec across the link: a frozen dataclass to wire data and back.

The root builds one frozen dataclass per runnable from the config
(`actors.agent.root`) and sends it inside `RunnableSpec.args` as plain msgpack data
(`spec_to_wire`); the runnable rebuilds the same dataclass (`spec_from_wire`), so it
receives every value typed, and mypy follows each key from the config's schema to its
use. Nothing is renamed or defaulted on the way: the dataclass's field names are the
wire keys, and a spec has no defaults (the config schema is the one place of them).

What a field may hold: `str`, `int`, `float` (an `int` is accepted), `bool`, `None`
in a union, `tuple[X, ...]`, `Mapping[str, str]` (or `dict`), and another such
dataclass. A missing, extra or mistyped key raises `ProtocolError` naming the spec,
the field and the value: a runnable never starts on arguments it did not ask for.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from typing import Any, TypeVar, Union

from messages.errors import ProtocolError

__all__ = ["spec_from_wire", "spec_to_wire"]

T = TypeVar("T")


def spec_to_wire(spec: object) -> dict[str, Any]:
    """The wire form of a spec dataclass: a dict of plain values, keyed by field name.

    Raises:
        TypeError: `spec` is not a dataclass instance.
    """
    if not dataclasses.is_dataclass(spec) or isinstance(spec, type):
        raise TypeError(f"{spec!r} is not a spec dataclass")
    return {f.name: _plain(getattr(spec, f.name)) for f in dataclasses.fields(spec)}


def spec_from_wire(cls: type[T], data: Mapping[str, Any]) -> T:
    """Rebuilds a spec of type `cls` from its wire form, checking every field's type.

    Raises:
        ProtocolError: a key is missing, unknown, or holds a value of another type;
            the message names the spec's class and the field.
    """
    if not isinstance(data, Mapping):
        raise ProtocolError(f"{cls.__name__}: expected a map, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]  # type: ignore[arg-type]
    unknown = sorted(set(data) - set(names))
    if unknown:
        raise ProtocolError(f"{cls.__name__}: unknown field(s) {', '.join(map(repr, unknown))}")
    values: dict[str, Any] = {}
    for name in names:
        if name not in data:
            raise ProtocolError(f"{cls.__name__}.{name}: missing")
        values[name] = _typed(hints[name], data[name], f"{cls.__name__}.{name}")
    try:
        return cls(**values)
    except (TypeError, ValueError) as e:
        raise ProtocolError(f"{cls.__name__}: {e}") from e


def _plain(value: object) -> object:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return spec_to_wire(value)
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    return value


def _typed(hint: Any, value: Any, where: str) -> Any:
    origin = typing.get_origin(hint)
    if origin in (Union, types.UnionType):
        options = typing.get_args(hint)
        if value is None and type(None) in options:
            return None
        problems = []
        for option in options:
            if option is type(None):
                continue
            try:
                return _typed(option, value, where)
            except ProtocolError as e:
                problems.append(str(e))
        raise ProtocolError(
            problems[0] if len(problems) == 1 else f"{where}: {value!r} fits no type"
        )
    if dataclasses.is_dataclass(hint):
        if not isinstance(value, Mapping):
            raise ProtocolError(f"{where}: expected a map, got {value!r}")
        return spec_from_wire(hint, value)  # type: ignore[arg-type]
    if origin is tuple:
        item = typing.get_args(hint)[0]
        if not isinstance(value, (list, tuple)):
            raise ProtocolError(f"{where}: expected a list, got {value!r}")
        return tuple(_typed(item, v, f"{where}[{i}]") for i, v in enumerate(value))
    if origin in (Mapping, dict) or hint in (Mapping, dict):
        if not isinstance(value, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in value.items()
        ):
            raise ProtocolError(f"{where}: expected a map of strings, got {value!r}")
        return types.MappingProxyType(dict(value))
    if hint is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif hint in (str, bool):
        if isinstance(value, hint):
            return value
    else:
        raise ProtocolError(f"{where}: type {hint!r} cannot cross the link")
    raise ProtocolError(f"{where}: expected {hint.__name__}, got {value!r}")
