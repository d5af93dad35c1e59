"""Property-based tests: the codec and a live server against random and mutated frames."""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass

from google.protobuf.internal.encoder import _VarintBytes
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from websockets.asyncio.client import connect as ws_connect

from generated.goomerang.example.messages_pb2 import MessageV1, ReplyV1
from goomerang_runtime import (
    Client,
    FrameDecodeError,
    Message,
    MessageRegistry,
    PayloadDecodeError,
    ProtocolError,
    Sender,
    Server,
    Status,
    UnknownKindError,
)
from goomerang_runtime._codec import (
    COMMAND_KINDS,
    _encode_frame_protobuf,
    _varint,
    decode_command,
    decode_frame,
    decode_message,
    encode_frame,
    encode_message,
)

from .helpers import WAIT, Collector

EXAMPLES = int(os.environ.get("GOOMERANG_FUZZ_EXAMPLES", "60"))
KIND = "goomerang.example.MessageV1"
REGISTRY = MessageRegistry()
REGISTRY.register(MessageV1)

texts = st.text(alphabet=st.characters(exclude_categories=("Cs",)), max_size=40)


@st.composite
def valid_frames(draw: st.DrawFn) -> bytes:
    payload = MessageV1(message=draw(texts)).SerializeToString()
    headers = draw(st.dictionaries(texts, texts, max_size=4))
    sync = draw(st.booleans())
    uuid = draw(st.uuids()).hex if sync else ""
    return encode_frame(KIND, payload, headers, uuid=uuid, is_sync=sync, creation_ns=draw(st.integers(0, 2**62)))


@st.composite
def mutated_frames(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(valid_frames()))
    for _ in range(draw(st.integers(1, 4))):
        action = draw(st.sampled_from(["flip", "cut", "insert", "delete"]))
        at = draw(st.integers(0, max(0, len(data) - 1)))
        if action == "flip" and data:
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif action == "cut":
            del data[at:]
        elif action == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
        elif data:
            del data[at]
    return bytes(data)


frames = st.one_of(st.binary(max_size=300), mutated_frames(), valid_frames(), texts)


def decodes_or_fails_cleanly(data: bytes) -> None:
    """Decoding raises nothing but the codec's typed errors."""
    try:
        frame = decode_frame(data)
    except FrameDecodeError:
        return
    try:
        if frame.kind in COMMAND_KINDS:
            decode_command(frame)
        else:
            decode_message(frame, REGISTRY.classes)
    except (UnknownKindError, PayloadDecodeError):
        pass


@settings(max_examples=EXAMPLES * 10, deadline=None)
@given(st.binary(max_size=600))
def test_random_bytes_decode_or_fail_cleanly(data: bytes) -> None:
    decodes_or_fails_cleanly(data)


@settings(max_examples=EXAMPLES * 10, deadline=None)
@given(mutated_frames())
def test_mutated_frames_decode_or_fail_cleanly(data: bytes) -> None:
    decodes_or_fails_cleanly(data)


@settings(max_examples=EXAMPLES * 5, deadline=None)
@given(
    kind=texts,
    payload=st.binary(max_size=200),
    headers=st.dictionaries(texts, texts, max_size=5),
    uuid=texts,
    is_sync=st.booleans(),
    creation_ns=st.integers(0, 2**62),
)
def test_encode_decode_round_trip(
    kind: str, payload: bytes, headers: dict[str, str], uuid: str, is_sync: bool, creation_ns: int
) -> None:
    frame = decode_frame(encode_frame(kind, payload, headers, uuid=uuid, is_sync=is_sync, creation_ns=creation_ns))
    assert (frame.kind, frame.payload, dict(frame.headers), frame.uuid, frame.is_sync) == (
        kind,
        payload,
        headers,
        uuid,
        is_sync,
    )
    assert frame.payloadSize == len(payload)
    assert frame.creation.seconds * 1_000_000_000 + frame.creation.nanos == creation_ns


@settings(max_examples=EXAMPLES * 5, deadline=None)
@given(
    kind=texts,
    payload=st.binary(max_size=300),
    uuid=texts,
    is_sync=st.booleans(),
    creation_ns=st.integers(-(2**62), 2**62),
)
def test_frames_without_headers_are_laid_out_as_protobuf_does(
    kind: str, payload: bytes, uuid: str, is_sync: bool, creation_ns: int
) -> None:
    seconds, nanos = divmod(creation_ns, 1_000_000_000)
    reference = _encode_frame_protobuf(kind, payload, {}, uuid, is_sync, seconds, nanos)
    assert encode_frame(kind, payload, uuid=uuid, is_sync=is_sync, creation_ns=creation_ns) == reference


def predicted_bad(data: bytes | str) -> bool:
    """Whether the server must report this frame (what its read loop does, without I/O)."""
    if isinstance(data, str):
        return True
    try:
        decode_message(decode_frame(data), REGISTRY.classes)
    except (FrameDecodeError, UnknownKindError, PayloadDecodeError):
        return True
    return False


def is_command(data: bytes | str) -> bool:
    try:
        return isinstance(data, bytes) and decode_frame(data).kind in COMMAND_KINDS
    except FrameDecodeError:
        return False


@dataclass
class Outcome:
    bad: int
    reported: int
    good_replies: int
    status: Status


async def feed_live_server(garbage: list[bytes | str], good_calls: int) -> Outcome:
    server = Server(max_concurrency=4)
    errors = Collector()
    server.on_error(errors)

    async def echo(sender: Sender, msg: Message[MessageV1]) -> None:
        await sender.send(ReplyV1(message=msg.payload.message))

    server.handle(MessageV1, echo)
    async with server, Client(server=server.addr) as good:

        async def well_formed() -> int:
            replies = [
                await good.send_sync(MessageV1(message=str(n)), timeout=WAIT, expect=ReplyV1) for n in range(good_calls)
            ]
            assert [r.payload.message for r in replies] == [str(n) for n in range(good_calls)]
            return len(replies)

        async with ws_connect(server.url) as raw:
            traffic = asyncio.create_task(well_formed())
            for data in garbage:
                await raw.send(data)
            # A last sync frame: its reply means the read loop went through everything before it.
            marker, _, _ = encode_message(Message(MessageV1(message="marker")), uuid="marker", is_sync=True)
            await raw.send(marker)
            async with asyncio.timeout(WAIT):
                while True:
                    reply = decode_frame(await raw.recv())  # type: ignore[arg-type]
                    if reply.uuid == "marker":
                        break
            good_replies = await asyncio.wait_for(traffic, WAIT)
        reported = len(errors.of(ProtocolError))
    bad = sum(predicted_bad(data) for data in garbage)
    return Outcome(bad, reported, good_replies, server.status)


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(frames, min_size=1, max_size=25))
def test_live_server_reports_each_bad_frame_and_serves_everyone(garbage: list[bytes | str]) -> None:
    garbage = [data for data in garbage if not is_command(data)]
    outcome = asyncio.run(feed_live_server(garbage, good_calls=5))
    assert outcome.status is Status.CLOSED
    assert outcome.reported == outcome.bad
    assert outcome.good_replies == 5


@settings(max_examples=EXAMPLES * 20, deadline=None)
@given(st.integers(0, 2**64 - 1) | st.sampled_from([0, 127, 128, 2**14, 2**21, 2**28 - 1, 2**28, 2**35 - 1, 2**35]))
def test_varints_are_protobufs(value: int) -> None:
    assert _varint(value) == _VarintBytes(value)
