"""JSON bytes exactly as Go's `encoding/json.Marshal` writes them.

containerd's importer synthesises manifests and an index for `docker save`
archives with `json.Marshal`; their digests only match containerd's if the bytes
match: no spaces, object keys in the order given (callers build dicts in Go's
struct field order; Go sorts map keys, so callers sort those), and Go's string
escaping (`<`, `>`, `&`, U+2028 and U+2029 as `\\u00XX`/`\\u20XX`, other control
characters as lowercase `\\u00XX` except `\\n`, `\\r`, `\\t`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

__all__ = ["go_json"]

_SHORT = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _string(text: str) -> str:
    out = ['"']
    for char in text:
        code = ord(char)
        if char in _SHORT:
            out.append(_SHORT[char])
        elif code < 0x20 or char in "<>&" or code in (0x2028, 0x2029):
            out.append(f"\\u{code:04x}")
        elif 0xD800 <= code <= 0xDFFF:
            out.append("\\ufffd")
        else:
            out.append(char)
    out.append('"')
    return "".join(out)


def _encode(value: object, out: list[str]) -> None:
    if value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif isinstance(value, int):
        out.append(str(value))
    elif isinstance(value, str):
        out.append(_string(value))
    elif isinstance(value, Mapping):
        out.append("{")
        for i, (key, item) in enumerate(value.items()):
            if i:
                out.append(",")
            out.append(_string(str(key)))
            out.append(":")
            _encode(item, out)
        out.append("}")
    elif isinstance(value, Sequence):
        out.append("[")
        for i, item in enumerate(value):
            if i:
                out.append(",")
            _encode(item, out)
        out.append("]")
    else:
        raise TypeError(f"cannot encode {type(value).__name__!r} as json")


def go_json(value: object) -> bytes:
    """Encode ints, strings, None, bools, lists and dicts as Go would."""
    out: list[str] = []
    _encode(value, out)
    return "".join(out).encode("utf-8", "surrogatepass")
