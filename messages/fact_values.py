"""What a fact's value may hold on the wire: JSON's values, bounded in size and depth.

`messages.wire.FactReport` carries one fact of a runnable (`api.report_fact`): a key of
the name grammar and a value JSON can hold. `fact_size` measures a value and refuses
what JSON cannot hold (a set, bytes, NaN, an integer msgpack cannot carry) or what
nests deeper than `FACT_DEPTH`, naming the problem in a `ProtocolError`.
"""

from __future__ import annotations

import re
from typing import Any

from messages.errors import ProtocolError

__all__ = ["FACT_DEPTH", "FACT_KEY", "MAX_FACT_SIZE", "fact_size"]

#: The grammar of a fact's name.
FACT_KEY = re.compile(r"[a-z0-9_]{1,64}")
#: Most bytes of text (strings, and 8 per other value) one fact's value may hold.
MAX_FACT_SIZE = 4096
#: Deepest nesting of lists and maps in a fact's value.
FACT_DEPTH = 4


def fact_size(value: Any, depth: int) -> int:
    """The size of a fact's value; raises `ProtocolError` for what JSON cannot hold."""
    if isinstance(value, str):
        return len(value.encode())
    if value is None or isinstance(value, bool):
        return 8
    if isinstance(value, int):
        if not -(2**63) <= value < 2**64:
            raise ProtocolError(f"fact message: value {value!r} does not fit 64 bits")
        return 8
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise ProtocolError(f"fact message: value {value!r} is not a JSON number")
        return 8
    if depth >= FACT_DEPTH:
        raise ProtocolError(f"fact message: value nests deeper than {FACT_DEPTH} levels")
    if isinstance(value, list | tuple):
        return 8 + sum(fact_size(v, depth + 1) for v in value)
    if isinstance(value, dict):
        if not all(isinstance(k, str) for k in value):
            raise ProtocolError("fact message: a map in the value has a key that is not text")
        return 8 + sum(len(k.encode()) + fact_size(v, depth + 1) for k, v in value.items())
    raise ProtocolError(f"fact message: value holds a {type(value).__name__}, which JSON cannot")
