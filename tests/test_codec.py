"""The sans-I/O frame codec, with plain bytes and no event loop."""

from __future__ import annotations

import uuid

import pytest

from generated.goomerang.example.messages_pb2 import MessageV1, ReplyV1
from goomerang_runtime import (
    FrameDecodeError,
    Message,
    MessageRegistry,
    Metadata,
    PayloadDecodeError,
    UnknownKindError,
    kind_of,
)
from goomerang_runtime._codec import (
    TOPIC_HEADER,
    BroadcastCommand,
    PublishCommand,
    RequestIds,
    SubscribeCommand,
    UnsubscribeCommand,
    _encode_frame_protobuf,
    decode_command,
    decode_frame,
    decode_message,
    encode_broadcast,
    encode_frame,
    encode_message,
    encode_publish,
    encode_subscribe,
    encode_unsubscribe,
    is_command,
    prefix_headers,
    unprefix_headers,
)
from goomerang_runtime.protocol_pb2 import Frame


def registry(*classes: type) -> MessageRegistry:
    reg = MessageRegistry()
    for cls in classes:
        reg.register(cls)
    return reg


def test_plain_frame_has_go_fields_and_no_sync_fields_on_the_wire() -> None:
    data, size, _ = encode_message(Message(MessageV1(message="hello"), {"k": "v"}))
    frame = Frame.FromString(data)
    assert frame.kind == "goomerang.example.MessageV1"
    assert frame.payloadSize == size == len(MessageV1(message="hello").SerializeToString())
    assert dict(frame.headers) == {"k": "v"}
    assert frame.HasField("creation")
    assert frame.creation.seconds > 0
    # uuid (field 1) and is_sync (field 4) stay at their zero value: absent on the wire.
    assert b"\x0a" not in data[:1]
    assert frame.uuid == ""
    assert not frame.is_sync
    assert Frame(kind=frame.kind).SerializeToString()[:1] == b"\x12"


def test_sync_frame_carries_uuid_and_flag() -> None:
    data, _, _ = encode_message(Message(MessageV1()), uuid="0f8fad5b-d9cb-469f-a165-70867728950e", is_sync=True)
    frame = decode_frame(data)
    assert frame.uuid == "0f8fad5b-d9cb-469f-a165-70867728950e"
    assert frame.is_sync


def test_creation_time_round_trips_to_nanoseconds() -> None:
    data = encode_frame("k", b"", creation_ns=1_700_000_000_123_456_789)
    msg_frame = decode_frame(data)
    assert msg_frame.creation.seconds == 1_700_000_000
    assert msg_frame.creation.nanos == 123_456_789


def test_decode_message_builds_metadata() -> None:
    data, size, _ = encode_message(Message(MessageV1(message="x"), {"a": "1"}), uuid="u", is_sync=True)
    msg = decode_message(decode_frame(data), registry(MessageV1).classes)
    assert msg.payload == MessageV1(message="x")
    assert msg.headers == {"a": "1"}
    assert msg.metadata.kind == "goomerang.example.MessageV1"
    assert msg.metadata.uuid == "u"
    assert msg.metadata.is_sync
    assert msg.metadata.payload_size == size
    assert msg.metadata.creation is not None


def test_received_metadata_reads_the_frames_timestamp() -> None:
    data = encode_frame(kind_of(MessageV1), b"", uuid="u", creation_ns=1_700_000_000_123_456_789)
    meta = decode_message(decode_frame(data), registry(MessageV1).classes).metadata
    built = Metadata(kind_of(MessageV1), "u", False, 0, 1_700_000_000_123_456_789)
    assert meta == built
    assert repr(meta) == repr(built)
    assert "creation_ns=1700000000123456789" in repr(meta)
    meta.creation_ns = 5
    assert meta.creation_ns == 5
    assert meta != built


def test_received_metadata_without_timestamp_is_unknown() -> None:
    frame = Frame(kind=kind_of(MessageV1))
    meta = decode_message(frame, registry(MessageV1).classes).metadata
    assert meta.creation_ns == 0
    assert meta.creation is None


@pytest.mark.parametrize("data", [b"\xff", b"\x0a\x05ab", b"\x12\x02\xff\xfe", b"\x08"])
def test_malformed_bytes_raise_frame_decode_error(data: bytes) -> None:
    with pytest.raises(FrameDecodeError) as info:
        decode_frame(data)
    assert info.value.size == len(data)
    assert "malformed frame" in str(info.value)


def test_unknown_kind_and_bad_payload_are_typed() -> None:
    frame = decode_frame(encode_frame("nope.Nothing", b""))
    with pytest.raises(UnknownKindError, match=r"nope\.Nothing"):
        decode_message(frame, registry(MessageV1).classes)
    frame = decode_frame(encode_frame("goomerang.example.MessageV1", b"\x0a\x05ab"))
    with pytest.raises(PayloadDecodeError, match="MessageV1"):
        decode_message(frame, registry(MessageV1).classes)


def test_header_prefixing_round_trip_drops_unprefixed() -> None:
    wrapped = prefix_headers({"a": "1", "b": "2"})
    assert wrapped == {"message-a": "1", "message-b": "2"}
    assert unprefix_headers({**wrapped, "outer": "x"}) == {"a": "1", "b": "2"}


def test_broadcast_command_wraps_payload_and_prefixes_headers() -> None:
    msg = Message(ReplyV1(message="all"), {"h": "v"})
    data, size = encode_broadcast(msg)
    frame = decode_frame(data)
    assert frame.kind == "goomerang.protocol.BroadcastCmd"
    assert dict(frame.headers) == {"message-h": "v"}
    assert is_command(frame.kind)
    cmd = decode_command(frame)
    assert cmd == BroadcastCommand("goomerang.example.ReplyV1", ReplyV1(message="all").SerializeToString(), {"h": "v"})
    assert size == len(cmd.payload)


def test_publish_subscribe_unsubscribe_commands() -> None:
    data, _ = encode_publish("rooms.go", Message(MessageV1(message="m"), {"x": "y"}))
    assert decode_command(decode_frame(data)) == PublishCommand(
        "rooms.go", "goomerang.example.MessageV1", MessageV1(message="m").SerializeToString(), {"x": "y"}
    )
    assert decode_command(decode_frame(encode_subscribe("a.b"))) == SubscribeCommand("a.b")
    assert decode_command(decode_frame(encode_unsubscribe("a.b"))) == UnsubscribeCommand("a.b")


def test_command_with_bad_payload_is_a_payload_error() -> None:
    frame = decode_frame(encode_frame("goomerang.protocol.PublishCmd", b"\x0a\x09ab"))
    with pytest.raises(PayloadDecodeError):
        decode_command(frame)


def test_request_ids_are_distinct_version_4_uuids() -> None:
    ids = RequestIds()
    drawn = [ids.next() for _ in range(1000)]
    assert len(set(drawn)) == len(drawn)
    for text in drawn[:3] + drawn[-3:]:
        parsed = uuid.UUID(text)
        assert str(parsed) == text
        assert parsed.version == 4
    assert RequestIds().next()[:24] != ids.next()[:24]  # each client draws its own random prefix


@pytest.mark.parametrize("size", [0, 1, 127, 128, 16_383, 16_384, 2_097_151, 2_097_152, 300_000_000 // 100])
@pytest.mark.parametrize("creation_ns", [0, 1, 127, 128, 1_700_000_000_000_000_000, 1_700_000_000_999_999_999])
def test_frame_layout_matches_protobuf_across_varint_sizes(size: int, creation_ns: int) -> None:
    payload = b"p" * size
    seconds, nanos = divmod(creation_ns, 1_000_000_000)
    for request_id, is_sync in (("", False), ("0f8fad5b-d9cb-469f-a165-70867728950e", True)):
        expected = _encode_frame_protobuf("a.B", payload, {}, request_id, is_sync, seconds, nanos)
        assert encode_frame("a.B", payload, uuid=request_id, is_sync=is_sync, creation_ns=creation_ns) == expected


def test_a_bare_payload_encodes_as_a_message_without_headers() -> None:
    payload = MessageV1(message="bare")
    bare, size, kind = encode_message(payload, uuid="u", is_sync=True)
    wrapped = encode_message(Message(payload), uuid="u", is_sync=True)
    assert (size, kind) == wrapped[1:] == (len(payload.SerializeToString()), kind_of(MessageV1))
    got, expected = decode_frame(bare), decode_frame(wrapped[0])
    for frame in (got, expected):
        frame.ClearField("creation")
    assert got == expected


@pytest.mark.parametrize(
    ("sent", "headers", "topic"),
    [
        ({}, {}, ""),
        ({TOPIC_HEADER: "rooms.go"}, {}, "rooms.go"),
        ({TOPIC_HEADER: "rooms.go", "a": "1"}, {"a": "1"}, "rooms.go"),
        ({"a": "1"}, {"a": "1"}, ""),
    ],
)
def test_topic_header_goes_to_metadata(sent: dict[str, str], headers: dict[str, str], topic: str) -> None:
    frame = decode_frame(encode_frame(kind_of(MessageV1), b"", sent))
    msg = decode_message(frame, registry(MessageV1).classes)
    assert (msg.headers, msg.metadata.topic) == (headers, topic)
