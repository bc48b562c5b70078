"""The msgpack protocol between the root and its children: framing, messages, order."""

from __future__ import annotations

import struct

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from actors.supervisor.core.severity import Severity
from messages.errors import ProtocolError
from messages.framing import FrameReader, encode_frame
from messages.session import ChildSession
from messages.wire import (
    CHILD_TO_ROOT,
    PROTOCOL_VERSION,
    ROOT_TO_CHILD,
    Cancel,
    ChildSpec,
    Exit,
    FactReport,
    Heartbeat,
    Hello,
    LogEntry,
    MetricAdd,
    RawChunk,
    RunGroupReply,
    RunGroupRequest,
    SignalMsg,
    Start,
    SubLoggerReply,
    SubLoggerRequest,
    decode,
)

CHILD_MESSAGES = [
    Hello(version=PROTOCOL_VERSION, dn="root.a", pid=42),
    SignalMsg(signal="healthy"),
    RunGroupRequest(request_id=7, children=[ChildSpec(name="x", target="m:f", args={"n": 1})]),
    SubLoggerRequest(request_id=8, name="dut"),
    LogEntry(
        severity=Severity.WARNING, message="two\nlines", file="a.py", line=3, time=1.5, sub="dut"
    ),
    RawChunk(data=b"a\nb\xff\n"),
    Exit(result="error", error="boom"),
    Heartbeat(seq=9),
    MetricAdd(
        name="node_containerd_preseed_bytes_total", value=12.5, labels={"namespace": "k8s.io"}
    ),
    MetricAdd(
        name="node_containerd_preseed_import_bytes",
        value=12,
        labels={"namespace": "k8s.io"},
        kind="histogram",
    ),
    FactReport(
        key="sandbox_image",
        value={"image": "pause:1", "present": False, "n": 1.5, "l": [1, None, "x"]},
    ),
]
ROOT_MESSAGES = [
    Start(dn="root.a", generation=3, target="m:f", args={}, heartbeat_interval=1.0),
    Cancel(reason="sibling died"),
    RunGroupReply(request_id=7, error=None),
    SubLoggerReply(request_id=8, error="taken"),
]


@pytest.mark.parametrize("msg", CHILD_MESSAGES, ids=lambda m: m.TYPE)
def test_every_child_message_survives_a_round_trip_through_frames(msg):
    reader = FrameReader()
    frames = reader.feed(encode_frame(msg.to_wire()))
    assert [decode(f, CHILD_TO_ROOT) for f in frames] == [msg]


@pytest.mark.parametrize("msg", ROOT_MESSAGES, ids=lambda m: m.TYPE)
def test_every_root_message_survives_a_round_trip_through_frames(msg):
    assert decode(FrameReader().feed(encode_frame(msg.to_wire()))[0], ROOT_TO_CHILD) == msg


def test_frames_split_at_every_byte_boundary_decode_the_same():
    stream = b"".join(encode_frame(m.to_wire()) for m in CHILD_MESSAGES)
    reader = FrameReader()
    out = []
    for i in range(len(stream)):
        out.extend(reader.feed(stream[i : i + 1]))
    reader.close()
    assert [decode(f, CHILD_TO_ROOT) for f in out] == CHILD_MESSAGES


def test_an_oversized_frame_is_refused_from_its_header_alone():
    reader = FrameReader(max_frame=1024)
    with pytest.raises(ProtocolError) as e:
        reader.feed(struct.pack(">I", 2**32 - 1))
    assert str(e.value) == "frame of 4294967295 bytes exceeds the limit of 1024 bytes"


def test_encoding_a_frame_over_the_limit_is_refused():
    with pytest.raises(ProtocolError, match=r"^frame of \d+ bytes exceeds the limit of 100 bytes$"):
        encode_frame({"type": "raw", "data": b"x" * 200}, max_frame=100)


def test_an_argument_msgpack_cannot_carry_is_refused_when_encoding():
    with pytest.raises(ProtocolError, match="^run_group message cannot be encoded: "):
        encode_frame({"type": "run_group", "args": {"x": object()}})


def test_a_stream_ending_inside_a_frame_is_a_protocol_error():
    reader = FrameReader()
    reader.feed(encode_frame(Heartbeat(seq=1).to_wire())[:-2])
    with pytest.raises(ProtocolError, match="^stream ended inside a frame"):
        reader.close()


@pytest.mark.parametrize(
    "body, message",
    [
        (msgpack.packb([1, 2]), "frame body is a list, not a map"),
        (b"\xc1", "frame body is not valid msgpack"),
        (msgpack.packb({1: 2}), "frame body is not valid msgpack"),
    ],
)
def test_junk_frame_bodies_are_protocol_errors(body, message):
    with pytest.raises(ProtocolError, match="^" + message):
        FrameReader().feed(struct.pack(">I", len(body)) + body)


@pytest.mark.parametrize(
    "obj, message",
    [
        ({"seq": 1}, "message has no string field 'type'"),
        ({"type": "teleport"}, "unknown message type 'teleport'"),
        ({"type": "heartbeat"}, "heartbeat message: missing field 'seq'"),
        ({"type": "heartbeat", "seq": "1"}, "heartbeat message: field 'seq' must be int, not str"),
        (
            {"type": "heartbeat", "seq": True},
            "heartbeat message: field 'seq' must be int, not bool",
        ),
        ({"type": "heartbeat", "seq": 1, "x": 0}, "heartbeat message: unknown field 'x'"),
        ({"type": "signal", "signal": "dead"}, "signal message: unknown signal 'dead'"),
        ({"type": "exit", "result": "maybe"}, "exit message: unknown result 'maybe'"),
        (
            {"type": "metric", "name": "x", "value": 1, "labels": {}, "kind": "gauge"},
            "metric message: unknown kind 'gauge'",
        ),
        (
            {"type": "run_group", "request_id": 1, "children": []},
            "run_group message: field 'children' is empty",
        ),
        (
            {"type": "run_group", "request_id": 1, "children": [3]},
            "run_group message: a child must be a map",
        ),
        ({"type": "raw", "data": "text"}, "raw message: field 'data' must be bytes, not str"),
        ({"type": "cancel", "reason": "x"}, "unknown message type 'cancel'"),
        (
            {"type": "fact", "key": "Sandbox", "value": 1},
            "fact message: key 'Sandbox' is not [a-z0-9_]{1,64}",
        ),
        (
            {"type": "fact", "key": "x", "value": {"a": b"bytes"}},
            "fact message: value holds a bytes, which JSON cannot",
        ),
        (
            {"type": "fact", "key": "x", "value": {1: "a"}},
            "fact message: a map in the value has a key that is not text",
        ),
        (
            {"type": "fact", "key": "x", "value": [[[[[1]]]]]},
            "fact message: value nests deeper than 4 levels",
        ),
        (
            {"type": "fact", "key": "x", "value": float("nan")},
            "fact message: value nan is not a JSON number",
        ),
        (
            {"type": "fact", "key": "x", "value": [2**64]},
            "fact message: value 18446744073709551616 does not fit 64 bits",
        ),
        (
            {"type": "fact", "key": "x", "value": "y" * 4097},
            "fact message: value of 'x' holds 4097 bytes, more than 4096",
        ),
    ],
)
def test_malformed_messages_name_the_field_at_fault(obj, message):
    with pytest.raises(ProtocolError) as e:
        decode(obj, CHILD_TO_ROOT)
    assert str(e.value) == message


def test_a_child_must_say_hello_first_and_nothing_after_exit():
    s = ChildSession("root.a")
    with pytest.raises(ProtocolError) as e:
        s.accept(Heartbeat(seq=1))
    assert str(e.value) == "root.a: first message is heartbeat, not hello"
    s.accept(Hello(version=PROTOCOL_VERSION, dn="root.a", pid=1))
    with pytest.raises(ProtocolError) as e:
        s.accept(Hello(version=PROTOCOL_VERSION, dn="root.a", pid=1))
    assert str(e.value) == "root.a: second hello message"
    s.accept(Exit(result="ok"))
    with pytest.raises(ProtocolError) as e:
        s.accept(Heartbeat(seq=2))
    assert str(e.value) == "root.a: heartbeat message after exit"


def test_a_hello_with_another_version_or_dn_is_refused():
    with pytest.raises(ProtocolError) as e:
        ChildSession("root.a").accept(Hello(version=99, dn="root.a", pid=1))
    assert (
        str(e.value)
        == f"root.a: protocol version 99 is not supported (this root speaks {PROTOCOL_VERSION})"
    )
    with pytest.raises(ProtocolError) as e:
        ChildSession("root.a").accept(Hello(version=PROTOCOL_VERSION, dn="root.b", pid=1))
    assert str(e.value) == "root.a: hello names dn 'root.b'"


@settings(max_examples=400, deadline=None, derandomize=True)
@given(st.lists(st.binary(max_size=64), max_size=8))
def test_random_bytes_only_ever_raise_protocol_errors(chunks):
    reader = FrameReader(max_frame=4096)
    try:
        for c in chunks:
            for frame in reader.feed(c):
                decode(frame, CHILD_TO_ROOT)
    except ProtocolError:
        pass


def _containers(inner: st.SearchStrategy[object]) -> st.SearchStrategy[object]:
    return st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=6), inner, max_size=3)
    )


_wire_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats(allow_nan=False)
    | st.text(max_size=8)
    | st.binary(max_size=8),
    _containers,
    max_leaves=10,
)


@settings(max_examples=400, deadline=None, derandomize=True)
@given(
    st.sampled_from(sorted(CHILD_TO_ROOT) + ["bogus"]),
    st.dictionaries(
        st.sampled_from(
            [
                "dn",
                "pid",
                "version",
                "signal",
                "request_id",
                "children",
                "name",
                "severity",
                "message",
                "file",
                "line",
                "time",
                "sub",
                "data",
                "result",
                "error",
                "seq",
                "other",
            ]
        ),
        _wire_values,
        max_size=8,
    ),
)
def test_well_framed_maps_of_random_fields_only_ever_raise_protocol_errors(tag, fields):
    frame = encode_frame({"type": tag, **fields})
    try:
        for f in FrameReader().feed(frame):
            decode(f, CHILD_TO_ROOT)
    except ProtocolError:
        pass


def test_a_cancel_arriving_with_start_reaches_the_runnable():
    import socket

    from actors.supervisor.process.link import ChildLink

    ours, theirs = socket.socketpair()
    try:
        ours.sendall(
            encode_frame(Start(dn="root.a", generation=1, target="m:f", args={}).to_wire())
            + encode_frame(Cancel(reason="sibling died").to_wire())
        )
        link = ChildLink(theirs)
        assert link.read_start().dn == "root.a"
        got: list[str] = []
        link.set_cancel_handler(got.append)
        assert got == ["sibling died"]
    finally:
        ours.close()
        theirs.close()
