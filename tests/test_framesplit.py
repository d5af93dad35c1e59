"""Splitting final binary frames ourselves gives exactly what websockets' parser gives, however the bytes arrive."""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st
from websockets.frames import Frame, Opcode
from websockets.protocol import CLIENT, SERVER, Protocol, Side

from goomerang_runtime._framesplit import at_frame_start, split_binary

MAX_SIZE = 70_000
_Seen = tuple[str, bytes, bool]


def _frame_bytes(kind: str, payload: bytes, masked: bool) -> bytes:
    frames = {
        "binary": [Frame(Opcode.BINARY, payload)],
        "text": [Frame(Opcode.TEXT, payload.hex().encode())],
        "ping": [Frame(Opcode.PING, payload[:125])],
        "fragmented": [Frame(Opcode.BINARY, payload[:7], fin=False), Frame(Opcode.CONT, payload[7:])],
        "reserved": [Frame(Opcode.BINARY, payload)],  # RSV1 set below: serialize() refuses it
        "unmasked": [Frame(Opcode.BINARY, payload)],
    }[kind]
    mask = masked if kind != "unmasked" else not masked  # a mask where none belongs, or none where one must be
    data = b"".join(frame.serialize(mask=mask, extensions=[]) for frame in frames)
    return bytes((data[0] | 0x40,)) + data[1:] if kind == "reserved" else data


def _events(protocol: Protocol) -> list[_Seen]:
    return [(event.opcode.name, bytes(event.data), event.fin) for event in protocol.events_received()]  # type: ignore[union-attr]


def _written(protocol: Protocol) -> list[tuple[int, int]]:
    """First byte and length of each write (a client's frames carry random masks)."""
    return [(data[0], len(data)) for data in protocol.data_to_send() if data]


def _reference(side: Side, chunks: list[bytes]) -> tuple[list[_Seen], object, list[tuple[int, int]]]:
    protocol = Protocol(side, max_size=MAX_SIZE)
    seen: list[_Seen] = []
    for chunk in chunks:
        protocol.receive_data(chunk)
        seen += _events(protocol)
    return seen, protocol.state, _written(protocol)


def _split_first(side: Side, chunks: list[bytes]) -> tuple[list[_Seen], object, list[tuple[int, int]], int]:
    protocol = Protocol(side, max_size=MAX_SIZE)
    seen: list[_Seen] = []
    fast = 0

    def put(data: bytes) -> None:
        seen.append(("BINARY", data, True))

    for chunk in chunks:
        if at_frame_start(protocol):
            used = split_binary(chunk, side is SERVER, MAX_SIZE, put)
            fast += used
            chunk = chunk[used:]
        if chunk:
            protocol.receive_data(chunk)
            seen += _events(protocol)
    return seen, protocol.state, _written(protocol), fast


_sizes = st.sampled_from([0, 1, 7, 125, 126, 127, 1000, 65535, 65536, 69_999, 70_000, 70_001])
_kinds = st.sampled_from(["binary"] * 6 + ["text", "ping", "fragmented", "reserved", "unmasked"])


@settings(max_examples=150, deadline=None)
@given(
    frames=st.lists(st.tuples(_kinds, _sizes), min_size=1, max_size=12),
    cuts=st.lists(st.integers(min_value=0, max_value=400_000), max_size=12),
    server=st.booleans(),
)
def test_split_frames_match_websockets(frames: list[tuple[str, int]], cuts: list[int], server: bool) -> None:
    """Any mix of frames, cut anywhere: the same messages, events, state and replies (pongs, closes)."""
    side = SERVER if server else CLIENT
    data = b"".join(_frame_bytes(kind, bytes(i % 251 for i in range(size)), server) for kind, size in frames)
    points = sorted({cut % (len(data) + 1) for cut in cuts} | {0, len(data)})
    chunks = [data[a:b] for a, b in itertools.pairwise(points) if b > a]
    expected = _reference(side, chunks)
    got = _split_first(side, chunks)
    assert got[:3] == expected
    if frames[0][0] == "binary" and frames[0][1] <= MAX_SIZE and len(chunks) == 1:
        assert got[3] > 0  # a whole binary frame in front took the fast path


def test_a_frame_cut_after_its_header_is_left_to_websockets() -> None:
    """websockets waiting inside a frame (nothing buffered) is not at a frame start: nothing is split then."""
    protocol = Protocol(CLIENT, max_size=MAX_SIZE)
    frame = Frame(Opcode.BINARY, b"x" * 300).serialize(mask=False, extensions=[])
    assert at_frame_start(protocol)
    protocol.receive_data(frame[:4])  # the whole header: the parser now waits for the payload, buffer empty
    assert not protocol.reader.buffer
    assert not at_frame_start(protocol)
    protocol.receive_data(frame[4:])
    assert [bytes(e.data) for e in protocol.events_received()] == [b"x" * 300]  # type: ignore[union-attr]
    assert at_frame_start(protocol)


def test_nothing_is_split_once_a_fragmented_message_is_under_way() -> None:
    protocol = Protocol(SERVER, max_size=MAX_SIZE)
    protocol.receive_data(Frame(Opcode.BINARY, b"ab", fin=False).serialize(mask=True, extensions=[]))
    assert protocol.events_received()
    assert not at_frame_start(protocol)
