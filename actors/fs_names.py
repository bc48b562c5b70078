"""The one display form of a name that came from the file system.

A file name is bytes: any byte but `/` and NUL. Python decodes it with
`surrogateescape`, so a name that is not UTF-8 becomes a `str` with lone
surrogates, which cannot be encoded as UTF-8 — not into a msgpack frame to the
root, a protobuf string to containerd, a JSON line, or a terminal — and a name may
hold escapes and bidi overrides that rewrite what an operator sees. Every name the
agent lists from a directory (the preseed's namespaces and tarballs) is therefore
shown only as `display(name)`, in log lines, errors, metric labels, containerd
labels and whatever `status` shows, so that one file is named the same way
everywhere and no name can break the message that names it:

- a byte that is not part of valid UTF-8 is `\\xNN`;
- a character that is not printable (C0, DEL, C1, bidi controls and other format
  characters, line and paragraph separators, unassigned) is `\\xNN`, `\\uNNNN` or
  `\\UNNNNNNNN`;
- a backslash is `\\\\`, so the form can be read back without ambiguity;
- everything else, spaces included, is itself: `pause.tar` is shown as `pause.tar`.

Messages quote a display form with `quoted` (`'k8s.io/pause.tar'`) rather than
`!r`, which would escape its backslashes a second time; for an ordinary name the
two read the same. A leaf: it imports nothing of the project.
"""

from __future__ import annotations

__all__ = ["display", "quoted"]

#: The surrogates `surrogateescape` decodes the bytes 0x80-0xFF to.
_ESCAPED_BYTES = range(0xDC80, 0xDD00)


def _escape(ch: str) -> str:
    code = ord(ch)
    if code in _ESCAPED_BYTES:
        return f"\\x{code - 0xDC00:02x}"
    if code < 0x100:
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def display(name: str) -> str:
    """The escaped display form of a file-system name (see the module doc).

    Args:
        name: a name as `os.listdir` or `os.scandir` return it (`surrogateescape`).

    Returns:
        A printable string that encodes as UTF-8, equal to `name` for ordinary names.
    """
    if name.isprintable() and "\\" not in name:
        return name
    return "".join("\\\\" if ch == "\\" else ch if ch.isprintable() else _escape(ch) for ch in name)


def quoted(shown: str) -> str:
    """A display form in single quotes, as messages name a file: `'k8s.io/pause.tar'`."""
    return f"'{shown}'"
