"""Building the tree's entries from a batch parsed in a child, with C-level calls.

A child's `actors.logtree.parse.stream.StreamParser` sends its records as
columns (the `parsed` wire message). The root turns them into
`actors.logtree.entry.ParsedEntry` tuples with `map` and `zip`, without a
Python-level step per entry, and interleaves raw records (rare: lines of a parsed
stream that did not parse) at their positions.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from functools import partial
from itertools import islice, repeat
from operator import itemgetter
from typing import Any, Literal, Protocol

from actors.logtree.entry import Entry, ParsedEntry, RawEntry
from actors.supervisor.core.severity import Severity

__all__ = ["ParsedRecords", "build_records", "unpacked"]

_FILE, _LINE, _PID = itemgetter(0), itemgetter(1), itemgetter(2)
_new_parsed = partial(tuple.__new__, ParsedEntry)
_new_raw = partial(tuple.__new__, RawEntry)
_SEVERITY_OF_BYTE: list[Severity | None] = [None] * 256
for _s in Severity:
    _SEVERITY_OF_BYTE[ord(_s.code)] = _s


class ParsedRecords(Protocol):
    """The columns of a parsed batch (see `actors.logtree.parse.stream.Batch`).

    `fields`, `lengths` and `mores` may be None: no fields, no line cut (each
    length is its head's), no continuation lines. `times`, `origins`, `texts` and
    `lengths` may be packed (bytes of native doubles, unsigned 32-bit integers).
    """

    @property
    def codes(self) -> bytes | bytearray: ...
    @property
    def times(self) -> Sequence[float] | bytes: ...
    @property
    def origins(self) -> Sequence[int] | bytes: ...
    @property
    def origin_table(self) -> Sequence[Sequence[Any]]: ...
    @property
    def texts(self) -> Sequence[str | int] | bytes: ...
    @property
    def fields(self) -> Sequence[dict[str, str] | None] | None: ...
    @property
    def heads(self) -> Sequence[bytes]: ...
    @property
    def lengths(self) -> Sequence[int] | bytes | None: ...
    @property
    def mores(self) -> Sequence[bytes] | None: ...
    @property
    def raws(self) -> Sequence[Sequence[Any]]: ...
    @property
    def attributions(self) -> Sequence[int] | bytes | None: ...
    @property
    def raw_attributions(self) -> Sequence[int] | bytes | None: ...
    @property
    def attribution_table(self) -> Sequence[Sequence[str]] | None: ...


def unpacked(column: Sequence[Any] | bytes, kind: Literal["d", "I"]) -> Sequence[Any]:
    """A column as a sequence: packed bytes viewed as `kind` (no copy), a list as is."""
    if isinstance(column, bytes):
        view: Sequence[Any] = memoryview(column).cast(kind)
        return view
    return column


def build_records(first_seq: int, dn: str, records: ParsedRecords, now: float) -> list[Entry]:
    """The batch's entries in batch order, numbered from `first_seq` on.

    Args:
        first_seq: `seq` of the batch's first record.
        dn: DN of the stream.
        records: the columns; valid (the wire message checks them), raw records'
            positions increasing and within the batch.
        now: arrival time, the time of raw records.
    """
    count = len(records.codes)
    raws = records.raws
    if raws:
        total = count + len(raws)
        positions = {int(r[0]) for r in raws}
        seqs: Sequence[int] = [first_seq + i for i in range(total) if i not in positions]
    else:
        seqs = range(first_seq, first_seq + count)
    table = records.origin_table
    files: Iterable[Any]
    lines: Iterable[Any]
    pids: Iterable[Any]
    if len(table) == 1:  # one source for all (logrus: none), as is common: no per-entry look-up
        files, lines, pids = repeat(table[0][0]), repeat(table[0][1]), repeat(table[0][2])
    else:
        rows = list(map(table.__getitem__, unpacked(records.origins, "I")))
        files, lines, pids = map(_FILE, rows), map(_LINE, rows), map(_PID, rows)
    lengths = records.lengths
    fields, raw_fields = _fields(records)
    parsed: list[Entry] = list(
        map(
            _new_parsed,
            zip(
                seqs,
                repeat(dn),
                map(_SEVERITY_OF_BYTE.__getitem__, records.codes),
                unpacked(records.times, "d"),
                files,
                lines,
                pids,
                unpacked(records.texts, "I"),
                fields,
                records.heads,
                map(len, records.heads) if lengths is None else unpacked(lengths, "I"),
                repeat(b"") if records.mores is None else records.mores,
            ),
        )
    )
    if not raws:
        return parsed
    out: list[Entry] = []
    rest = iter(parsed)
    for (position, data, length), these in zip(raws, raw_fields):  # noqa: B905 - repeat()
        out.extend(islice(rest, position - len(out)))
        out.append(_new_raw((first_seq + position, dn, data, length, now, these)))
    out.extend(rest)
    return out


def _fields(records: ParsedRecords) -> tuple[Iterable[Any], Iterable[Any]]:
    """The entries' and the raw records' fields: the lines' own, and their attribution.

    An attribution row `[sandbox, container]` becomes one dict shared by every record of
    it (`sandbox`, `container`, each only when known); nobody's is no fields.
    """
    own = repeat(None) if records.fields is None else records.fields
    table = getattr(records, "attribution_table", None)
    if table is None:
        return own, repeat(None)
    dicts = [
        {k: v for k, v in zip(_ATTRIBUTION_KEYS, row, strict=True) if v} or None for row in table
    ]
    attributed = map(dicts.__getitem__, unpacked(records.attributions or b"", "I"))
    raw = map(dicts.__getitem__, unpacked(records.raw_attributions or b"", "I"))
    if records.fields is None or not any(records.fields):
        return attributed, raw
    return list(map(_merged, records.fields, attributed)), raw


def _merged(own: dict[str, str] | None, attributed: dict[str, str] | None) -> Any:
    if own and attributed:
        return {**own, **attributed}
    return own or attributed


#: The fields an attribution row's two columns become.
_ATTRIBUTION_KEYS = ("sandbox", "container")
