"""Reading one sandbox's runsc lines: the field filter of `LogTree.read`, and the wire.

The tree holds the attributed recording of a pod run beside another
(`data/runsc-pod-beside-pod.log.gz`); a read with `fields` gives exactly the entries
whose fields start with the prefixes, in the backlog and in the stream.
"""

from __future__ import annotations

from array import array
from typing import Any

import pytest

from actors.logtree import LogTree, LogTreeError, RawEntry
from actors.logtree.parse import ParseFormat, StreamParser
from actors.logtree.parse.runsc import RunscAttribution
from messages.errors import ProtocolError
from messages.wire import CHILD_TO_ROOT, ParsedBatch, decode
from tests.support.log_entries import RUNSC_PODS, attributed_batches, runsc_recording

RECORDING = "runsc-pod-beside-pod.log.gz"
PODS = RUNSC_PODS[RECORDING]["pods"]
DN = "root.containerd.runsc"
NOW = 1_796_637_000.0


@pytest.fixture(scope="module")
def batches() -> list[ParsedBatch]:
    return attributed_batches(runsc_recording(RECORDING))


@pytest.fixture
def tree(batches: list[ParsedBatch]) -> LogTree:
    tree = LogTree(max_entries_per_dn=100_000)
    for batch in batches:
        tree.write_parsed(DN, batch)
    return tree


def test_reading_with_a_sandbox_prefix_gives_exactly_that_sandboxs_entries(tree: LogTree) -> None:
    everything = tree.read(DN, backlog=None).backlog
    for pod in PODS:
        mine = tree.read(DN, backlog=None, fields={"sandbox": pod["sandbox"][:6]}).backlog
        assert mine == [e for e in everything if (e.fields or {}).get("sandbox") == pod["sandbox"]]
        assert len(mine) > 1500
        assert any(isinstance(e, RawEntry) for e in mine)
        theirs = tree.read(DN, backlog=None, fields={"container": pod["container"]}).backlog
        assert theirs and all(e.fields["sandbox"] == pod["sandbox"] for e in theirs)
        both = {"sandbox": pod["sandbox"][:1], "container": pod["container"][:3]}
        assert tree.read(DN, backlog=None, fields=both).backlog == theirs
    newest = tree.read(DN, backlog=5, fields={"sandbox": PODS[0]["sandbox"]}).backlog
    assert (
        newest == tree.read(DN, backlog=None, fields={"sandbox": PODS[0]["sandbox"]}).backlog[-5:]
    )


def test_an_unattributed_entry_is_in_no_sandboxs_log(tree: LogTree) -> None:
    everything = tree.read(DN, backlog=None).backlog
    nobodys = [e for e in everything if not e.fields]
    assert nobodys  # the banner lines a batch cut off from their Args, and the like
    shown = sum(
        len(tree.read(DN, backlog=None, fields={"sandbox": p["sandbox"]}).backlog) for p in PODS
    )
    assert shown == len(everything) - len(nobodys)


def test_a_stream_with_a_field_filter_gets_only_matching_entries(
    batches: list[ParsedBatch],
) -> None:
    tree = LogTree(max_entries_per_dn=100_000)
    sandbox = PODS[1]["sandbox"]
    with tree.read(DN, stream=True, buffer=100_000, fields={"sandbox": sandbox[:8]}) as reader:
        for batch in batches:
            tree.write_parsed(DN, batch)
        tree.write_raw(DN, b"a raw line without fields\n")
        got = reader.get_many(100_000, timeout=0)
    assert got == tree.read(DN, backlog=None, fields={"sandbox": sandbox}).backlog
    assert got and all(e.fields["sandbox"] == sandbox for e in got)


@pytest.mark.parametrize("fields", [{"sandbox": ""}, {"": "ab"}, {"sandbox": 3}])
def test_a_field_filter_with_an_empty_or_non_text_prefix_is_refused(fields: Any) -> None:
    with pytest.raises(LogTreeError) as caught:
        LogTree().read(DN, fields=fields)
    key, prefix = next(iter(fields.items()))
    assert str(caught.value) == f"field filter {key!r}={prefix!r} is invalid: expected text"


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"attributions": b"\0" * 4}, "parsed message: field 'attributions' holds 4 bytes, not 8"),
        ({"raw_attributions": b"\0" * 4}, "parsed message: field 'raw_attributions' holds 4 bytes, not 0"),
        ({"attributions": array("I", [0, 2]).tobytes()}, "parsed message: field 'attributions' points outside 'attribution_table'"),
        ({"attribution_table": [["", ""], ["a", 1]]}, "parsed message: attribution ['a', 1] is not [sandbox, container]"),
        ({"attribution_table": None}, "parsed message: field 'attribution_table' must be list, not NoneType"),
    ],
)  # fmt: skip
def test_a_malformed_attribution_is_refused_naming_the_field(
    change: dict[str, Any], error: str
) -> None:
    parser = StreamParser(ParseFormat.GLOG, attribute=RunscAttribution().annotate)
    banner = b"I1207 10:02:09.1 7 main.go:1] " + b"*" * 27 + b"\n"
    parser.feed(banner + b"I1207 10:02:09.1 7 main.go:1] Args: [runsc state x]\n", NOW)
    parser.close_entry()
    wire = ParsedBatch(**parser.take(keep_open=False).columns()).to_wire()
    decode(wire, CHILD_TO_ROOT)
    with pytest.raises(ProtocolError) as caught:
        decode({**wire, **change}, CHILD_TO_ROOT)
    assert str(caught.value) == error
