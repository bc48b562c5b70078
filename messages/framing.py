"""Length-prefixed msgpack framing of the root <-> child stream.

A frame is a 4-byte big-endian length followed by that many bytes of one
msgpack map. The length is checked against a limit *before* anything is
buffered or decoded, so a child announcing an 8 GiB frame costs nothing.
`FrameReader` turns a byte stream into decoded maps; `encode_frame` does the
reverse. Nothing here knows the message types (see `messages.wire`).

Rules:
    * a frame longer than `max_frame` bytes is a `ProtocolError`;
    * a frame whose body is not exactly one msgpack map with str keys is a
      `ProtocolError`;
    * a stream that ends inside a frame is a `ProtocolError` at `close()`.
"""

from __future__ import annotations

import struct
from typing import Any

import msgpack

from messages.errors import ProtocolError

__all__ = ["DEFAULT_MAX_FRAME", "HEADER", "encode_frame", "FrameReader"]

#: Default upper bound of one frame's body, in bytes (8 MiB).
DEFAULT_MAX_FRAME = 8 * 1024 * 1024

HEADER = struct.Struct(">I")


def encode_frame(body: dict[str, Any], *, max_frame: int = DEFAULT_MAX_FRAME) -> bytes:
    """Encode one map as a frame. Raises ProtocolError if it would be too large."""
    try:
        data: bytes = msgpack.packb(body, use_bin_type=True)
    except (TypeError, ValueError, OverflowError) as e:
        raise ProtocolError(f"{body.get('type', 'untyped')} message cannot be encoded: {e}") from e
    if len(data) > max_frame:
        raise ProtocolError(f"frame of {len(data)} bytes exceeds the limit of {max_frame} bytes")
    return HEADER.pack(len(data)) + data


class FrameReader:
    """Incremental decoder: feed bytes, get whole decoded maps.

    Not thread-safe; one reader per stream.
    """

    __slots__ = ("_buf", "_max", "_need")

    def __init__(self, *, max_frame: int = DEFAULT_MAX_FRAME) -> None:
        self._buf = bytearray()
        self._max = max_frame
        self._need: int | None = None  # body length of the frame being read

    def feed(self, data: bytes | bytearray | memoryview) -> list[dict[str, Any]]:
        """Append `data`; return every complete frame's map, in order."""
        buf = self._buf
        buf += data
        out: list[dict[str, Any]] = []
        pos = 0
        n = len(buf)
        while True:
            if self._need is None:
                if n - pos < 4:
                    break
                (length,) = HEADER.unpack_from(buf, pos)
                if length > self._max:
                    raise ProtocolError(
                        f"frame of {length} bytes exceeds the limit of {self._max} bytes"
                    )
                self._need = length
                pos += 4
            if n - pos < self._need:
                break
            end = pos + self._need
            out.append(_decode_body(buf, pos, end))
            pos = end
            self._need = None
        if pos:
            del buf[:pos]
        return out

    def close(self) -> None:
        """The stream ended: raise if it ended inside a frame."""
        if self._buf or self._need is not None:
            raise ProtocolError(
                f"stream ended inside a frame ({len(self._buf)} bytes of a partial frame)"
            )


def _decode_body(buf: bytearray, start: int, end: int) -> dict[str, Any]:
    try:
        obj = msgpack.unpackb(
            memoryview(buf)[start:end],
            raw=False,
            strict_map_key=True,
            use_list=True,
        )
    except (ValueError, msgpack.ExtraData, msgpack.FormatError, msgpack.StackError) as e:
        raise ProtocolError(f"frame body is not valid msgpack: {e}") from e
    except Exception as e:  # msgpack raises a few odd types on junk
        raise ProtocolError(f"frame body is not valid msgpack: {type(e).__name__}: {e}") from e
    if not isinstance(obj, dict):
        raise ProtocolError(f"frame body is a {type(obj).__name__}, not a map")
    return obj
