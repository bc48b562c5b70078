"""The one check of a wire message's field: its type, naming the message and field.

Apart from `messages.wire` only to keep that module within its size.
"""

from __future__ import annotations

from typing import Any

from messages.errors import ProtocolError

__all__ = ["check_field"]


def check_field(
    msg: str, name: str, value: Any, kind: type | tuple[type, ...], optional: bool = False
) -> None:
    """Raises `ProtocolError` unless `value` is a `kind` (None too when `optional`).

    A bool is refused where a number is wanted, though Python counts it as an int.
    """
    if value is None and optional:
        return
    if isinstance(value, bool) and kind in (int, float, (int, float)):
        raise ProtocolError(f"{msg}: field {name!r} must be {_kind_name(kind)}, not bool")
    if not isinstance(value, kind):
        raise ProtocolError(
            f"{msg}: field {name!r} must be {_kind_name(kind)}, not {type(value).__name__}"
        )


def _kind_name(kind: type | tuple[type, ...]) -> str:
    if isinstance(kind, tuple):
        return " or ".join(k.__name__ for k in kind)
    return kind.__name__
