"""Checks of the attribution columns of the `parsed` message (`messages.wire.ParsedBatch`).

The runsc pump sends, with each parsed batch, whose sandbox and container each record
is (`actors.logtree.parse.runsc`): a row index per entry and per raw line into a table
of `[sandbox, container]` rows. Apart from `messages.wire` only to keep that module
within its size; `ParsedBatch.__post_init__` is the one caller.
"""

from __future__ import annotations

from typing import Any

from messages.errors import ProtocolError

__all__ = ["check_attribution_columns"]


def check_attribution_columns(msg: str, batch: Any, count: int) -> None:
    """Checks `batch`'s attribution columns: none, or all three, sized and in range.

    Args:
        msg: the message's name for errors (`"parsed message"`).
        batch: the `ParsedBatch` being built.
        count: its number of entries.

    Raises:
        ProtocolError: naming the field at fault.
    """
    if batch.attributions is None and batch.raw_attributions is None:
        return
    table = batch.attribution_table
    if type(table) is not list:
        raise ProtocolError(
            f"{msg}: field 'attribution_table' must be list, not {type(table).__name__}"
        )
    for name, size in (("attributions", count), ("raw_attributions", len(batch.raws))):
        column = getattr(batch, name)
        if type(column) is not bytes:
            raise ProtocolError(f"{msg}: field {name!r} must be bytes, not {type(column).__name__}")
        if len(column) != size * 4:
            raise ProtocolError(f"{msg}: field {name!r} holds {len(column)} bytes, not {size * 4}")
        if max(memoryview(column).cast("I"), default=-1) >= len(table):
            raise ProtocolError(f"{msg}: field {name!r} points outside 'attribution_table'")
    for row in table:
        if not (type(row) is list and len(row) == 2 and all(type(x) is str for x in row)):
            raise ProtocolError(f"{msg}: attribution {row!r:.60} is not [sandbox, container]")
