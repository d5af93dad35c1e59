"""The instruments: the relay's parsing and the protobuf layout checks (no Go needed)."""

from __future__ import annotations

import asyncio

import pytest
from websockets.asyncio.client import connect
from websockets.asyncio.server import ServerConnection, serve

from generated.goomerang.example.messages_pb2 import ReplyV1
from goomerang_runtime import Client, Server
from goomerang_runtime.protocol_pb2 import Frame

from ..helpers import WAIT
from .protowire import frame_problems, raw_fields
from .relay import OP_BINARY, OP_CLOSE, OP_PING, OP_TEXT, Relay, unmask


def test_unmask_round_trips() -> None:
    key = b"\x01\x02\x03\x04"
    data = bytes(range(256)) * 3 + b"tail"
    masked = bytes(b ^ key[i % 4] for i, b in enumerate(data))
    assert unmask(masked, key) == data
    assert unmask(b"", key) == b""


async def test_relay_forwards_unchanged_and_parses_both_ways() -> None:
    async def echo(ws: ServerConnection) -> None:
        async for message in ws:
            await ws.send(message)

    async with serve(echo, "127.0.0.1", 0, compression=None) as ws_server:
        port = ws_server.sockets[0].getsockname()[1]
        relay = await Relay(f"127.0.0.1:{port}").start()
        try:
            async with connect(f"ws://{relay.addr}/x", compression=None) as ws:
                big = bytes(range(256)) * 400
                await ws.send(big)
                assert await asyncio.wait_for(ws.recv(), WAIT) == big
                await ws.send([b"frag-1;", b"frag-2;", b"frag-3"])  # one message in three frames
                assert await asyncio.wait_for(ws.recv(), WAIT) == b"frag-1;frag-2;frag-3"
                await ws.send("text")
                assert await asyncio.wait_for(ws.recv(), WAIT) == "text"
                pong = await ws.ping(b"ping")
                await asyncio.wait_for(pong, WAIT)
            [conn] = relay.connections
            await conn.wait(lambda: bool(conn.from_server.closes), what="the server's close")
        finally:
            await relay.close()
    assert conn.request is not None
    assert conn.request.start_line == "GET /x HTTP/1.1"
    assert conn.request.get("upgrade") == "websocket"
    assert conn.response is not None
    assert conn.response.status == 101
    sent, echoed = conn.from_client, conn.from_server
    assert sent.errors == []
    assert echoed.errors == []
    assert [m.opcode for m in sent.messages] == [OP_BINARY, OP_BINARY, OP_TEXT]
    assert sent.messages[0].data == big
    assert sent.messages[1].fragments >= 3
    assert sent.messages[1].data == b"frag-1;frag-2;frag-3"
    assert all(m.masked for m in sent.messages)
    assert not any(m.masked for m in echoed.messages)
    assert [m.data for m in echoed.messages] == [m.data for m in sent.messages]
    assert [f.payload for f in sent.frames if f.opcode == OP_PING] == [b"ping"]
    assert [f.close_code for f in sent.frames if f.opcode == OP_CLOSE] == [1000]
    assert sent.messages[0].frame is None or sent.messages[0].decode_error is None  # arbitrary bytes


def test_frame_problems_accepts_protobufs_own_layout() -> None:
    frame = Frame(kind="k", payloadSize=3, payload=b"abc", uuid="123e4567-e89b-12d3-a456-426614174000", is_sync=True)
    frame.headers["a"] = "b"
    frame.creation.seconds = 5
    data = frame.SerializeToString()
    assert [f.number for f in raw_fields(data)] == [1, 2, 3, 4, 5, 6, 7]
    assert frame_problems(data) == []
    assert frame_problems(Frame(kind="k").SerializeToString()) == []


def test_frame_problems_finds_bad_layouts() -> None:
    kind = b"\x12\x01k"
    assert "zero value of uuid" in frame_problems(b"\x0a\x00" + kind)[0]
    assert "zero value of is_sync" in " ".join(frame_problems(kind + b"\x20\x00"))
    assert "ascending" in frame_problems(kind + b"\x0a\x24" + b"123e4567-e89b-12d3-a456-426614174000" + b"\x20\x01")[0]
    assert "canonical" in frame_problems(b"\x0a\x03abc" + kind + b"\x20\x01")[0]
    assert "is_sync present: False" in frame_problems(b"\x0a\x24" + b"123e4567-e89b-12d3-a456-426614174000" + kind)[0]
    publish = Frame(kind="goomerang.protocol.PublishCmd", payload=b"\x0a\x01t\x12\x01k")
    publish.headers["unprefixed"] = "v"
    assert "lacks the 'message-' prefix" in frame_problems(publish.SerializeToString())[0]


@pytest.mark.scenario(
    "extension negotiation: Goomerang-Extensions only between Python peers",
    column="Python client → Python server (control)",
)
async def test_python_peers_negotiate_extensions_in_the_handshake() -> None:
    """Control for the header checks against Go peers: between Python peers the header goes both ways."""
    server = Server(listen="127.0.0.1:0")
    async with server:
        relay = await Relay(server.addr).start()
        try:
            client = Client(server=relay.addr)
            client.register_message(ReplyV1)
            async with client:
                [conn] = relay.connections
                await conn.wait(lambda: conn.response is not None, what="the upgrade response")
        finally:
            await relay.close()
    assert conn.request is not None
    assert conn.response is not None
    offered = conn.request.get("Goomerang-Extensions")
    answered = conn.response.get("Goomerang-Extensions")
    assert offered, conn.request.headers
    assert answered is not None, f"our server did not answer our client's {offered!r}: {conn.response.headers}"
    assert set(t.strip() for t in answered.split(",")) <= set(t.strip() for t in offered.split(","))
