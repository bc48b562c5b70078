"""Splitting a raw byte stream into lines: a pure core, no locks, no I/O.

One `LineSplitter` per raw DN turns chunks of bytes, as they arrive, into lines.

Rules:
    * A line ends at `\\n`; the `\\n` and one `\\r` just before it (CRLF) are not
      part of the line. Empty lines are lines.
    * `limit` (default `actors.logtree.entry.MAX_LINE_LENGTH`, the raw
      entries' cut) bounds the bytes kept of one line; parsing streams keep more.
    * Bytes after the last `\\n` of a chunk are a partial line, kept until a later chunk
      completes it or `LineSplitter.flush` emits it. A line may so arrive in any
      number of chunks, even from two successive writers of the same DN.
    * A line longer than `limit` is cut to that
      many bytes; its length before cutting is reported with it. A partial line keeps
      only its first `limit` bytes and a byte count, so a line of any size
      costs O(1) memory between chunks.

Speed: a chunk without a pending partial line costs a few C-level bytes operations
(`in`, `replace`, `split`, `map(len, ...)`); Python-level work is per chunk, not
per line, except for the rare chunk holding an over-long line.
"""

from __future__ import annotations

from actors.logtree.entry import MAX_LINE_LENGTH

__all__ = ["LineSplitter"]

_NO_LINES: tuple[list[bytes], list[int]] = ([], [])


class LineSplitter:
    """Splits chunks of one raw stream into lines, keeping a partial line between chunks.

    Not thread-safe: the owner (the log tree) serialises calls.
    """

    __slots__ = ("_head", "_length", "_last_cr", "_limit")

    def __init__(self, limit: int = MAX_LINE_LENGTH) -> None:
        self._limit = limit
        """Bytes of a line kept; the rest is cut (`MAX_LINE_LENGTH` unless given)."""
        self._head = b""
        """First bytes (at most `limit`) of the pending partial line."""
        self._length = 0
        """Length in bytes of the pending partial line; 0 when there is none."""
        self._last_cr = False
        """True when the last byte of the pending partial line is `\\r`."""

    @property
    def pending(self) -> int:
        """Length in bytes of the buffered partial line (0 when none)."""
        return self._length

    def feed(self, data: bytes) -> tuple[list[bytes], list[int]]:
        """Adds a chunk and returns the lines it completes.

        Args:
            data: the next bytes of the stream.

        Returns:
            `(lines, lengths)`: the completed lines in order, each without its line
            ending and cut to `limit` bytes, and their lengths before
            cutting. The lists may be empty. The caller owns them.
        """
        if self._length:
            newline = data.find(b"\n")
            if newline < 0:
                self._append(data)
                return _NO_LINES
            self._append(memoryview(data)[:newline])
            first, first_length = self.flush_line()
            lines, lengths = self._split(data[newline + 1 :])
            lines.insert(0, first)
            lengths.insert(0, first_length)
            return lines, lengths
        return self._split(data)

    def flush(self) -> tuple[list[bytes], list[int]]:
        """Ends the pending partial line, as if a `\\n` had arrived.

        Returns:
            `(lines, lengths)` holding the partial line, or two empty lists if none
            was pending.
        """
        if not self._length:
            return [], []
        line, length = self.flush_line()
        return [line], [length]

    def flush_line(self) -> tuple[bytes, int]:
        """Ends the pending partial line and returns it with its uncut length.

        Only meaningful when `pending` is non-zero.
        """
        head, length = self._head, self._length
        if self._last_cr:
            length -= 1
            if len(head) > length:
                head = head[:length]
        self._head, self._length, self._last_cr = b"", 0, False
        return head, length

    def _split(self, data: bytes) -> tuple[list[bytes], list[int]]:
        """Splits `data`, with no partial line pending, and buffers its tail."""
        if b"\r" in data:
            data = data.replace(b"\r\n", b"\n")
        lines = data.split(b"\n")
        tail = lines.pop()
        if tail:
            self._append(tail)
        lengths = list(map(len, lines))
        limit = self._limit
        if lengths and max(lengths) > limit:
            lines = [line[:limit] for line in lines]
        return lines, lengths

    def _append(self, segment: bytes | memoryview) -> None:
        """Adds bytes without a newline to the pending partial line."""
        size = len(segment)
        if not size:
            return
        room = self._limit - len(self._head)
        if room > 0:
            self._head += bytes(segment[:room])
        self._length += size
        self._last_cr = segment[-1] == 0x0D
