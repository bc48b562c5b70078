"""Names from the file system have one escaped display form, and a bad name fails alone.

Issue 20, item 5: a tarball whose name is not UTF-8 put a lone surrogate into the
failure metric's `file` label; msgpack cannot encode it, the preseed actor died at
every pass and the tarballs after it were never imported. The end-to-end case is in
`tests/e2e/test_agent_metrics.py`; here, the display form itself and every place a
preseed file is named.
"""

from __future__ import annotations

import os

import pytest

from actors.fs_names import display, quoted
from actors.preseed.archive.names import validate_namespace
from actors.preseed.errors import PreseedError
from actors.preseed.importer.archive_import import display_name
from actors.preseed.service.directory import ignored_at_top, ignored_in_namespace
from actors.preseed.service.preseeder import PreseedFile

#: (bytes of a name, its display form).
CASES = [
    (b"pause.tar", "pause.tar"),
    (b"with space.tar", "with space.tar"),
    (b"caf\xc3\xa9.tar", "café.tar"),
    (b"bad\xff.tar", "bad\\xff.tar"),
    (b"\xc3.tar", "\\xc3.tar"),
    (b"esc\x1b[2J.tar", "esc\\x1b[2J.tar"),
    (b"bell\x07\x7f.tar", "bell\\x07\\x7f.tar"),
    (b"c1\xc2\x9b.tar", "c1\\x9b.tar"),
    (b"bidi\xe2\x80\xae.tar", "bidi\\u202e.tar"),
    (b"new\nline.tar", "new\\x0aline.tar"),
    (b"back\\slash.tar", "back\\\\slash.tar"),
]


@pytest.mark.parametrize(("raw", "shown"), CASES, ids=[c[1] for c in CASES])
def test_a_name_is_shown_escaped_printable_and_encodable(raw: bytes, shown: str) -> None:
    name = os.fsdecode(raw)
    assert display(name) == shown
    assert display(name).isprintable()
    display(name).encode("utf-8")  # never raises


def test_every_message_about_a_preseed_file_uses_the_display_form() -> None:
    name = os.fsdecode(b"bad\xff\x1b.tar")
    f = PreseedFile("k8s.io", name, f"/p/k8s.io/{name}")
    assert f.display == "k8s.io/bad\\xff\\x1b.tar"
    assert display_name("k8s.io", f.path) == f.display
    assert str(PreseedError.for_file(f.display, "not a tar archive")) == (
        "failed to import preseed image 'k8s.io/bad\\xff\\x1b.tar': not a tar archive"
    )
    assert ignored_at_top(name) == (
        "non-directory 'bad\\xff\\x1b.tar' found in preseed folder, ignoring"
    )
    assert ignored_in_namespace(name) == (
        "directory 'bad\\xff\\x1b.tar' found in preseed namespaced folder, ignoring"
    )
    with pytest.raises(ValueError) as caught:
        validate_namespace(os.fsdecode(b"ns\xff"))
    assert str(caught.value).startswith("namespace 'ns\\xff' is invalid: ")
    assert quoted(f.display) == "'k8s.io/bad\\xff\\x1b.tar'"
