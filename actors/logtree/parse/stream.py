"""Parsing a raw byte stream into a batch of entries: pure, per chunk, bounded.

A `StreamParser` runs in the child process that reads a program's output (the
runsc pump, containerd's output reader). It splits the bytes into lines, parses each
line in its `actors.logtree.parse.line.ParseFormat`, and collects the results
in a `Batch` — columns, not objects, so that a whole chunk crosses to the root
as one message and the root builds its entries with a few C-level calls.

Rules:
    * A line that parses starts an entry. A line that does not parse and follows an
      entry that is still open is a continuation line of it (a Go goroutine dump,
      runsc's multi-line spec dump): kept byte for byte in the entry's `more`.
      Otherwise the line is a raw record, exactly as an unparsed stream would store
      it (cut to `actors.logtree.entry.MAX_LINE_LENGTH`).
    * A line starting `panic: ` or `fatal error: ` (Go's crash output) that does
      not parse starts a FATAL entry, timed at `now`, so the dump that follows
      attaches to it.
    * An entry stays open until the next entry starts, its bounds are reached, or
      `StreamParser.close_entry` is called (the child does that when no byte
      came for `FLUSH_SECONDS`, and at exit).
    * Arrival order is kept: records leave in the order their lines came; the time a
      line gives is data and never reorders anything.

Bounds (a hostile or broken writer cannot make the parser or the tree grow):
    * `PARSE_LIMIT` bytes of a line are kept and parsed; the rest is counted
      in `original_length` only. A logrus line cut this way usually no longer
      parses and stays raw (cut to 1024 bytes like any raw line).
    * An entry takes at most `MORE_LINES` continuation lines and
      `MORE_LIMIT` bytes of them; a line past either bound, or a cut line,
      closes the entry and is a raw record.
    * At most `actors.logtree.parse.line.MAX_FIELDS` fields per line.
    * Parsing a line is linear in its length (the patterns do not backtrack).
"""

from __future__ import annotations

from array import array
from collections.abc import Callable
from itertools import groupby, repeat
from operator import itemgetter, methodcaller
from typing import Any, cast

from actors.logtree.entry import MAX_LINE_LENGTH
from actors.logtree.lines import LineSplitter
from actors.logtree.parse.glog import GlogRun, glog_matches, parse_glog, parse_glog_run
from actors.logtree.parse.line import ParsedLine, ParseFormat
from actors.logtree.parse.logrus import parse_logrus, parse_logrus_json, parse_logrus_text
from actors.logtree.parse.logrus_run import LogrusRun, logrus_parts, parse_logrus_run
from actors.logtree.parse.times import HourCache
from actors.supervisor.core.severity import Severity

__all__ = [
    "MORE_LIMIT",
    "MORE_LINES",
    "PARSE_LIMIT",
    "Batch",
    "LineParse",
    "StreamParser",
    "parse_line",
    "parser_for",
]

#: Bytes of one line kept and parsed.
PARSE_LIMIT = 4096
#: Bytes of continuation lines one entry takes at most.
MORE_LIMIT = 16384
#: Continuation lines one entry takes at most.
MORE_LINES = 1024

#: A one-line parser: `(line, now, cache) -> ParsedLine | None`.
LineParse = Callable[[bytes, float, HourCache], ParsedLine | None]

_CRASH = (b"panic: ", b"fatal error: ")


def _parse_auto(line: bytes, now: float, cache: HourCache) -> ParsedLine | None:
    first = line[:1]
    if first in b"DIWEF" and line[1:2].isdigit():
        return parse_glog(line, now, cache)
    if first == b"{":
        return parse_logrus_json(line, now, cache)
    return parse_logrus_text(line, now, cache)


_PARSERS: dict[ParseFormat, LineParse] = {
    ParseFormat.GLOG: parse_glog,
    ParseFormat.LOGRUS: parse_logrus,
    ParseFormat.AUTO: _parse_auto,
}


def parser_for(fmt: ParseFormat) -> LineParse:
    """The one-line parser of a format (not RAW, which parses nothing)."""
    return _PARSERS[fmt]


def parse_line(
    fmt: ParseFormat, line: bytes, now: float, cache: HourCache | None = None
) -> ParsedLine | None:
    """Parses one line in `fmt`, Go crash lines included; None when it does not parse.

    Never raises, whatever `line` holds.
    """
    if fmt is ParseFormat.RAW:
        return None
    parsed = _PARSERS[fmt](line, now, cache or HourCache())
    if parsed is None and line.startswith(_CRASH):
        return ParsedLine(
            Severity.FATAL, now, "", 0, 0, line.decode("utf-8", "backslashreplace"), None
        )
    return parsed


class Batch:
    """Records of one chunk, in columns; parsed entries and raw records interleaved.

    The columns are shaped so that the root allocates little per entry: sources and
    pids repeat, so they are sent once per batch in `origin_table` and referred to
    by index; a glog message is an offset into its line (see
    `actors.logtree.parse.line.ParsedLine`).
    """

    __slots__ = (
        "codes",
        "times",
        "origins",
        "texts",
        "fields",
        "heads",
        "lengths",
        "mores",
        "origin_table",
        "raws",
        "attributions",
        "raw_attributions",
        "attribution_table",
        "_origin_ids",
        "_origin_bytes",
    )

    def __init__(self) -> None:
        #: One severity code byte (`b"DIWEF"`) per parsed entry.
        self.codes = bytearray()
        #: Each entry's time, seconds since the Unix epoch.
        self.times: list[float] = []
        #: Each entry's index in `origin_table`.
        self.origins: list[int] = []
        #: Each entry's message, or its byte offset in the entry's head.
        self.texts: list[str | int] = []
        #: Each entry's fields, or None.
        self.fields: list[dict[str, str] | None] = []
        #: Each entry's first line, cut to `PARSE_LIMIT` bytes.
        self.heads: list[bytes] = []
        #: Each entry's first line's length before cutting.
        self.lengths: list[int] = []
        #: Each entry's continuation lines, each after a `\n`; `b""` if none.
        self.mores: list[bytes] = []
        #: `[file, line, pid]` rows (`["", 0, 0]` when none).
        self.origin_table: list[list[Any]] = []
        #: Raw records as `[position, data, original_length]`: `position` is the number of
        #: records (entries and raws) before it in the batch.
        self.raws: list[list[Any]] = []
        #: Each entry's index in `attribution_table`, or None when the stream is not
        #: attributed (see `actors.logtree.parse.runsc`).
        self.attributions: list[int] | None = None
        #: Each raw record's index in `attribution_table` (in `raws` order), or None.
        self.raw_attributions: list[int] | None = None
        #: `[sandbox, container]` rows (`""` for a part not known); row 0 is
        #: `["", ""]`, nobody's. None when not attributed.
        self.attribution_table: list[list[str]] | None = None
        self._origin_ids: dict[tuple[str, int, int], int] = {}
        self._origin_bytes: dict[tuple[bytes, bytes, bytes], int] = {}

    def __len__(self) -> int:
        return len(self.codes) + len(self.raws)

    def origin(self, file: str, line: int, pid: int) -> int:
        """The index of `[file, line, pid]` in `origin_table`, added if new."""
        key = (file, line, pid)
        index = self._origin_ids.get(key)
        if index is None:
            index = self._origin_ids[key] = len(self.origin_table)
            self.origin_table.append([file, line, pid])
        return index

    def add_glog_run(self, run: GlogRun, lines: list[bytes], lengths: list[int]) -> None:
        """Appends the entries of a run of glog lines, column by column."""
        count = len(lines)
        self.codes += run.codes
        self.times += run.times
        ids = self._origin_bytes
        for key in set(run.origins).difference(ids):
            file, line, pid = key
            ids[key] = self.origin(file.decode("utf-8", "backslashreplace"), int(line), int(pid))
        self.origins += map(ids.__getitem__, run.origins)
        self.texts += run.offsets
        self.fields += repeat(None, count)
        self.heads += lines
        self.lengths += lengths
        self.mores += repeat(b"", count)

    def add_logrus_run(self, run: LogrusRun, lines: list[bytes], lengths: list[int]) -> None:
        """Appends the entries of a run of logrus lines, column by column."""
        count = len(lines)
        self.codes += run.codes
        self.times += run.times
        self.origins += repeat(self.origin("", 0, 0), count)
        self.texts += run.texts
        self.fields += run.fields
        self.heads += lines
        self.lengths += lengths
        self.mores += repeat(b"", count)

    def columns(self) -> dict[str, Any]:
        """The columns by name, as the `parsed` wire message carries them.

        Numbers travel packed (native byte order: both ends run on one host): `times`
        as doubles, `origins`, `lengths` and `texts` when all are offsets as
        unsigned 32-bit integers, so the root neither decodes nor type-checks them one
        by one. `fields`, `lengths` and `mores` are None when they hold nothing
        but their default (no fields, no line cut, no continuation lines).
        """
        heads, lengths, texts = self.heads, self.lengths, self.texts
        offsets = all(map(int.__instancecheck__, texts))
        return {
            "codes": bytes(self.codes),
            "times": array("d", self.times).tobytes(),
            "origins": array("I", self.origins).tobytes(),
            "texts": array("I", cast("list[int]", texts)).tobytes() if offsets else texts,
            "fields": self.fields if any(self.fields) else None,
            "heads": heads,
            "lengths": None if list(map(len, heads)) == lengths else array("I", lengths).tobytes(),
            "mores": self.mores if any(self.mores) else None,
            "origin_table": self.origin_table,
            "raws": self.raws,
            **self._attribution_columns(),
        }

    def _attribution_columns(self) -> dict[str, Any]:
        """`attributions` and `raw_attributions` packed, `attribution_table`; or none."""
        if self.attribution_table is None or len(self.attribution_table) == 1:
            return {}
        return {
            "attributions": array("I", self.attributions or ()).tobytes(),
            "raw_attributions": array("I", self.raw_attributions or ()).tobytes(),
            "attribution_table": self.attribution_table,
        }

    def split_tail(self, count: int) -> Batch:
        """Removes the last `count` records (entries and raws) into a batch of their own."""
        start = len(self) - count
        raws_before = sum(1 for raw in self.raws if raw[0] < start)
        e = start - raws_before
        tail = Batch()
        for name in ("times", "texts", "fields", "heads", "lengths", "mores"):
            column = getattr(self, name)
            getattr(tail, name).extend(column[e:])
            del column[e:]
        tail.codes += self.codes[e:]
        del self.codes[e:]
        table = self.origin_table
        tail.origins = [tail.origin(*table[o]) for o in self.origins[e:]]
        del self.origins[e:]
        tail.raws = [[p - start, data, length] for p, data, length in self.raws[raws_before:]]
        del self.raws[raws_before:]
        return tail

    def pop_entry(self) -> Batch:
        """Removes the last parsed entry (the last record) into a batch of its own."""
        last = Batch()
        last.codes.append(self.codes.pop())
        for name in ("times", "texts", "fields", "heads", "lengths", "mores"):
            getattr(last, name).append(getattr(self, name).pop())
        last.origins.append(last.origin(*self.origin_table[self.origins.pop()]))
        return last


class StreamParser:
    """Parses one raw stream chunk by chunk. Not thread-safe; pure (`now` is given).

    Args:
        fmt: how to read the lines; not `ParseFormat.RAW`.
        attribute: called with each batch `take` returns, before it is returned, to
            set its attribution columns (`actors.logtree.parse.runsc`); it sees
            every record once, in stream order, continuation lines complete.
        hold: called with the batch `take(keep_open=True)` is about to return and
            how many of its last entries stay anyway (the open one): how many of its
            last records to keep for the next batch (so that the attribution sees
            what follows them; bounded by the hook).
    """

    def __init__(
        self,
        fmt: ParseFormat,
        attribute: Callable[[Batch], None] | None = None,
        hold: Callable[[Batch, int], int] | None = None,
    ) -> None:
        if fmt is ParseFormat.RAW:
            raise ValueError("a raw stream is not parsed")
        self.format = fmt
        self._parse = _PARSERS[fmt]
        self._attribute = attribute
        self._hold = hold
        self._cache = HourCache()
        self._splitter = LineSplitter(PARSE_LIMIT)
        self._batch = Batch()
        self._open = False
        """Whether the last record of the batch is an entry that may take more lines."""
        self._more_lines = 0
        self._more_bytes = 0

    @property
    def open(self) -> bool:
        """True while the last entry may still take continuation lines."""
        return self._open

    @property
    def pending(self) -> int:
        """Records collected and not taken yet."""
        return len(self._batch)

    def feed(self, data: bytes, now: float) -> None:
        """Adds a chunk of the stream; the lines it completes join the batch.

        Args:
            data: the next bytes, any size, lines may span chunks.
            now: the current time, seconds since the Unix epoch.
        """
        lines, lengths = self._splitter.feed(data)
        if lines:
            self._add(lines, lengths, now)

    def flush_line(self, now: float) -> None:
        """Ends a partial line as if its newline had come (at the writer's end)."""
        lines, lengths = self._splitter.flush()
        if lines:
            self._add(lines, lengths, now)

    def close_entry(self) -> None:
        """Lets no more continuation lines join the last entry."""
        self._open = False

    def take(self, keep_open: bool = True) -> Batch | None:
        """Returns the records collected so far and starts a new batch.

        Args:
            keep_open: keep an open last entry back for continuation lines of the
                next chunk; it leaves with a later `take` (after
                `close_entry`, or once the next entry started). Also keep back the
                last records the `hold` hook asks for; `keep_open=False` sends all.

        Returns:
            The batch, or None when there is nothing to send.
        """
        batch = self._batch
        hold = 1 if keep_open and self._open else 0
        if keep_open and self._hold is not None:
            hold = max(hold, self._hold(batch, hold))
        if hold >= len(batch):
            return None
        if hold == 1 and self._open:
            self._batch = batch.pop_entry()
        else:
            self._batch = batch.split_tail(hold) if hold else Batch()
        if self._attribute is not None:
            self._attribute(batch)
        return batch

    def _add(self, lines: list[bytes], lengths: list[int], now: float) -> None:
        """Adds complete lines; runs of lines a column-wise parser reads go column-wise.

        Those are glog lines in a glog stream, and logrus lines of containerd's common
        shape (`actors.logtree.parse.logrus_run`) in a logrus or auto stream; every
        other line is parsed on its own.
        """
        if self.format is ParseFormat.GLOG:
            self._add_glog(lines, lengths, now)
            return
        parts = logrus_parts(lines)
        firsts = list(map(_FIRST, parts))
        if all(firsts):  # the usual chunk: one run, no slices
            self._add_logrus_run(lines, lengths, parts, now)
            return
        start = 0
        for common, group in groupby(map(bool, firsts)):
            end = start + len(list(group))
            if common:
                self._add_logrus_run(lines[start:end], lengths[start:end], parts[start:end], now)
            else:
                self._add_lines(lines[start:end], lengths[start:end], now)
            start = end

    def _add_logrus_run(
        self, lines: list[bytes], lengths: list[int], parts: list[tuple[str, ...]], now: float
    ) -> None:
        """Adds a run of logrus lines of the common shape, column-wise if it parses so."""
        run = parse_logrus_run(lines, parts, now, self._cache)
        if run is None:
            self._add_lines(lines, lengths, now)
        else:
            self._batch.add_logrus_run(run, lines, lengths)
            self._open, self._more_lines, self._more_bytes = True, 0, 0

    def _add_glog(self, lines: list[bytes], lengths: list[int], now: float) -> None:
        """Adds complete lines of a glog stream; runs of glog lines go column-wise."""
        matches = glog_matches(lines)
        start = 0
        for is_glog, group in groupby(map(bool, matches)):
            end = start + len(list(group))
            run_lines, run_lengths = lines[start:end], lengths[start:end]
            if is_glog:
                run = parse_glog_run(matches[start:end], now, self._cache)  # type: ignore[arg-type]
                if run is None:
                    self._add_lines(run_lines, run_lengths, now)
                else:
                    self._batch.add_glog_run(run, run_lines, run_lengths)
                    self._open, self._more_lines, self._more_bytes = True, 0, 0
            elif not self._attach_all(run_lines, run_lengths):
                self._add_lines(run_lines, run_lengths, now)
            start = end

    def _attach_all(self, lines: list[bytes], lengths: list[int]) -> bool:
        """Attaches a run of lines that are not entries to the open entry, if all fit.

        False (nothing done) when there is no open entry, a line was cut, a line
        starts a Go crash, or the run would pass the bounds: then line by line.
        """
        count = len(lines)
        size = sum(lengths) + count
        if (
            not self._open
            or self._more_lines + count > MORE_LINES
            or self._more_bytes + size > MORE_LIMIT
            or list(map(len, lines)) != lengths
            or any(map(_STARTS_CRASH, lines))
        ):
            return False
        self._batch.mores[-1] += b"\n" + b"\n".join(lines)
        self._more_lines += count
        self._more_bytes += size
        return True

    def _add_lines(self, lines: list[bytes], lengths: list[int], now: float) -> None:
        """Adds complete lines one by one."""
        batch, parse, cache = self._batch, self._parse, self._cache
        codes, raws, origin = batch.codes, batch.raws, batch.origin
        for line, length in zip(lines, lengths, strict=True):
            parsed = parse(line, now, cache)
            if parsed is None and line.startswith(_CRASH):
                text = line.decode("utf-8", "backslashreplace")
                parsed = ParsedLine(Severity.FATAL, now, "", 0, 0, text, None)
            if parsed is not None:
                codes.append(_CODE[parsed[0]])
                batch.times.append(parsed[1])
                batch.origins.append(origin(parsed[2], parsed[3], parsed[4]))
                batch.texts.append(parsed[5])
                batch.fields.append(parsed[6])
                batch.heads.append(line)
                batch.lengths.append(length)
                batch.mores.append(b"")
                self._open, self._more_lines, self._more_bytes = True, 0, 0
            elif self._attach(line, length):
                batch.mores[-1] += b"\n" + line
            else:
                self._open = False
                raws.append([len(codes) + len(raws), line[:MAX_LINE_LENGTH], length])

    def _attach(self, line: bytes, length: int) -> bool:
        """Whether a line that did not parse continues the open entry (and count it)."""
        if not self._open or length != len(line) or self._more_lines >= MORE_LINES:
            return False
        size = self._more_bytes + length + 1
        if size > MORE_LIMIT:
            return False
        self._more_lines += 1
        self._more_bytes = size
        return True


_CODE = {s: ord(s.code) for s in Severity}
_STARTS_CRASH = methodcaller("startswith", _CRASH)
_FIRST = itemgetter(0)
