"""The sans-I/O parts of sync replies and server requests: marking, reading, error replies (no event loop)."""

from __future__ import annotations

import pytest

from generated.goomerang.example.messages_pb2 import BadReplyV1, MessageV1, ReplyV1
from goomerang_runtime import HandlerError, Message, RemoteHandlerError, UnexpectedReplyError, UnknownKindError
from goomerang_runtime._codec import CALL_HEADER, decode_frame, encode_call, encode_message
from goomerang_runtime._replies import accepted, error_reply, read_reply


def test_a_call_frame_is_sync_marked_and_keeps_the_callers_headers_untouched() -> None:
    msg = Message(MessageV1(message="q"), {"k": "v"})
    data, size, kind = encode_call(msg, "u-1")
    assert kind == "goomerang.example.MessageV1"
    frame = decode_frame(data)
    assert (frame.uuid, frame.is_sync, frame.kind) == ("u-1", True, "goomerang.example.MessageV1")
    assert dict(frame.headers) == {"k": "v", CALL_HEADER: "1"}
    assert msg.headers == {"k": "v"}
    assert size == len(MessageV1(message="q").SerializeToString())
    bare = decode_frame(encode_call(MessageV1(), "u-2")[0])
    assert dict(bare.headers) == {CALL_HEADER: "1"}
    assert CALL_HEADER not in decode_frame(encode_message(msg, uuid="u", is_sync=True)[0]).headers


def test_reading_a_reply() -> None:
    expect = accepted((ReplyV1, BadReplyV1))
    assert accepted((ReplyV1, BadReplyV1)) is expect  # cached per tuple
    frame = decode_frame(encode_message(ReplyV1(message="r"), uuid="u", is_sync=True)[0])
    assert read_reply(frame, expect, {}).payload == ReplyV1(message="r")
    with pytest.raises(UnexpectedReplyError):
        read_reply(frame, accepted(MessageV1), {})
    with pytest.raises(UnknownKindError):
        read_reply(frame, None, {})
    cause = ValueError("boom")
    failed = decode_frame(error_reply("u", "goomerang.example.MessageV1", HandlerError("k", cause), True, call=True))
    assert failed.headers[CALL_HEADER] == "1"
    with pytest.raises(RemoteHandlerError) as raised:
        read_reply(failed, expect, {})
    assert (raised.value.error_type, raised.value.detail) == ("ValueError", "boom")
    quiet = decode_frame(error_reply("u", "k", cause, False))
    assert CALL_HEADER not in quiet.headers
    with pytest.raises(RemoteHandlerError) as raised:
        read_reply(quiet, None, {})
    assert raised.value.detail == ""
