"""The one error type of the wire protocol."""

from __future__ import annotations

__all__ = ["ProtocolError"]


class ProtocolError(Exception):
    """A frame or message broke the protocol; the text says which field and how.

    The root turns this into the failure of the node that sent the frame; it
    never crashes the root.
    """
