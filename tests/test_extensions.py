"""Go's exact wire for Go peers, extensions only between our own (goomerang_runtime.extensions).

A Go client sends no ``Goomerang-Extensions`` header; these tests stand in
for it with a raw socket client (tests/rawws.py, which like gorilla never
closes TCP after the close handshake), a raw websockets client, or our
client with ``extensions=False``. tests/interop runs the same against the
real Go library.
"""

from __future__ import annotations

import asyncio
import contextlib

import pytest
import websockets
from websockets.asyncio.client import connect as ws_connect
from websockets.asyncio.server import ServerConnection as WsServerConnection
from websockets.asyncio.server import serve as ws_serve

from generated.goomerang.example.messages_pb2 import MessageV1, PingPong, ReplyV1
from goomerang_runtime import (
    Client,
    Message,
    MessageTooBigError,
    PeerInfo,
    RemoteHandlerError,
    Sender,
    Server,
    SlowConsumerError,
    SyncTimeoutError,
    UnknownKindError,
)
from goomerang_runtime._codec import TOPIC_HEADER, decode_frame, encode_frame, encode_publish, encode_subscribe
from goomerang_runtime.extensions import (
    EXTENSIONS_HEADER,
    GO_WIRE,
    SUPPORTED,
    format_extensions,
    negotiate,
    parse_extensions,
)

from .helpers import OUR_PEER, WAIT, Collector
from .inbox import barrier, handlers_server, listening_client
from .rawws import OP_BINARY, RawClient

REPLY = "goomerang.example.ReplyV1"


def test_header_values_parse_and_negotiate() -> None:
    assert parse_extensions(None) == GO_WIRE
    assert parse_extensions(" Topic-Header ,wildcards,, ") == {"topic-header", "wildcards"}
    assert negotiate(None) is None  # a Go client: answer nothing
    assert negotiate("topic-header, teleport") == {"topic-header"}
    assert negotiate("") == GO_WIRE
    assert format_extensions(SUPPORTED) == (
        "close-codes, error-reply, queue-groups, recovery, server-requests, topic-header, wildcards"
    )


async def test_our_peers_agree_on_every_extension_and_say_so() -> None:
    server, errors = handlers_server()
    peers: list[PeerInfo] = []
    server.on_connect(peers.append)
    async with server:
        client, _ = listening_client(server.addr)
        async with client:
            await barrier(client)
            assert client.extensions == SUPPORTED
        assert [peer.extensions for peer in peers] == [SUPPORTED]
        # A raw client offering some: the server answers the ones it has.
        async with ws_connect(server.url, additional_headers={EXTENSIONS_HEADER: "wildcards, teleport"}) as ws:
            assert ws.response is not None
            assert ws.response.headers[EXTENSIONS_HEADER] == "wildcards"
        # A Go client offers none and gets no header back.
        async with ws_connect(server.url) as ws:
            assert ws.response is not None
            assert EXTENSIONS_HEADER not in ws.response.headers
    assert errors.items == []


@pytest.mark.parametrize("side", ["client", "server"])
async def test_extensions_false_speaks_only_the_go_wire(side: str) -> None:
    server, errors = handlers_server(extensions=side != "server")
    peers: list[PeerInfo] = []
    server.on_connect(peers.append)
    async with server:
        client, inbox = listening_client(server.addr, extensions=side != "client")
        async with client:
            await client.subscribe("rooms.go", ReplyV1, inbox)
            await barrier(client)
            await server.publish("rooms.go", Message(ReplyV1(message="hi"), {"a": "1"}))
            [got] = await inbox.wait_for(1)
            assert client.extensions == GO_WIRE
            assert got.headers == {"a": "1"}  # no topic header
            assert got.metadata.topic == ""
        assert [peer.extensions for peer in peers] == [GO_WIRE]
    assert errors.items == []


async def test_a_go_client_gets_exactly_the_publishers_headers() -> None:
    server, errors = handlers_server()
    async with server:
        go = await RawClient.connect(server.addr)
        ours = await RawClient.connect(server.addr, headers=OUR_PEER)
        try:
            assert EXTENSIONS_HEADER.lower() not in go.response_headers
            assert ours.response_headers[EXTENSIONS_HEADER.lower()] == format_extensions(SUPPORTED)
            for raw in (go, ours):
                raw.send(OP_BINARY, encode_subscribe("news"))
            publisher, _ = listening_client(server.addr)
            async with publisher:
                await barrier(publisher)
                await publisher.publish("news", Message(ReplyV1(message="m"), {"h": "v"}))
                await barrier(publisher)
                await server.publish("news", Message(ReplyV1(message="s"), {"h": "w"}))
                for raw, extra in ((go, {}), (ours, {TOPIC_HEADER: "news"})):
                    for expected in ({"h": "v"}, {"h": "w"}):
                        frame = decode_frame((await raw.recv()).data)
                        assert (frame.kind, dict(frame.headers)) == (REPLY, {**expected, **extra})
            await go.close()
            await ours.close()
        finally:
            go.abort()
            ours.abort()
    assert errors.items == []


async def test_topics_of_a_go_client_are_plain_strings() -> None:
    """Go has no wildcards: `*`, `>` and `.` are characters like any other."""
    server, errors = handlers_server()
    async with server:
        go = await RawClient.connect(server.addr)
        try:
            for topic in ("w.*", "a.>.b", ">"):
                go.send(OP_BINARY, encode_subscribe(topic))
            pattern_client, pattern_inbox = listening_client(server.addr)
            async with pattern_client:
                await pattern_client.subscribe("w.*", ReplyV1, pattern_inbox)
                await barrier(pattern_client)
                # A Go client publishes on wildcard-looking topics: accepted, literal.
                for topic in ("w.x", "w.*", "a.>.b", ">", "a.b"):
                    go.send(OP_BINARY, encode_publish(topic, Message(ReplyV1(message=topic)))[0])
                go.send(OP_BINARY, encode_publish("end", Message(ReplyV1(message="end")))[0])
                go.send(OP_BINARY, encode_subscribe("end"))
                go.send(OP_BINARY, encode_publish("end", Message(ReplyV1(message="end")))[0])
                got: list[str] = []
                while "end" not in got:
                    got.append(ReplyV1.FromString(decode_frame((await go.recv()).data).payload).message)
                # Only the identical strings: not w.x for w.*, not a.b for >.
                assert got == ["w.*", "a.>.b", ">", "end"]
                # Our subscriber's pattern w.* gets w.x and the literal w.* (the same string).
                assert await pattern_inbox.wait_until("w.*") == ["w.x", "w.*"]
            await go.close()
        finally:
            go.abort()
    assert errors.items == []


async def test_our_client_sends_any_topic_to_a_handlers_server() -> None:
    server, errors = handlers_server(extensions=False)  # what a Go server answers: no header
    async with server:
        client, inbox = listening_client(server.addr)
        async with client:
            assert client.extensions == GO_WIRE
            for topic in ("a.*", ">", "a.>.b"):
                await client.subscribe(topic, ReplyV1, inbox)  # no TopicError: plain strings
            await barrier(client)
            for topic in ("a.x", "a.*", ">", "a.>.b"):
                await client.publish(topic, ReplyV1(message=topic))
            await client.publish("a.*", ReplyV1(message="end"))
            assert await inbox.wait_until("end") == ["a.*", ">", "a.>.b", "end"]
    assert errors.items == []


async def failing(sender: Sender, msg: Message[MessageV1]) -> None:
    raise RuntimeError("handler broke")


async def test_a_go_client_gets_no_error_reply() -> None:
    server = Server()
    errors = Collector()
    server.on_error(errors)
    server.handle(MessageV1, failing)
    async with server:
        go = Client(server=server.addr, heartbeat_interval=None, extensions=False)
        go.register_message(ReplyV1)
        ours = Client(server=server.addr, heartbeat_interval=None)
        async with go, ours:
            with pytest.raises(RemoteHandlerError):
                await ours.send_sync(MessageV1(message="x"), timeout=WAIT)
            # As against a Go server: nothing comes back, the call runs out of time.
            with pytest.raises(SyncTimeoutError):
                await go.send_sync(MessageV1(message="x"), timeout=0.3)
    raw_unknown = encode_frame("nope.Unknown", b"", uuid="11111111-2222-4333-8444-555555555555", is_sync=True)
    server2, errors2 = handlers_server()
    async with server2:
        go_raw = await RawClient.connect(server2.addr)
        try:
            go_raw.send(OP_BINARY, raw_unknown)
            go_raw.send(OP_BINARY, encode_subscribe("t"))
            go_raw.send(OP_BINARY, encode_publish("t", Message(ReplyV1(message="next")))[0])
            # The first frame back is the publication: no ErrorReply for the unknown kind.
            assert decode_frame((await go_raw.recv()).data).kind == REPLY
            await errors2.wait_for(UnknownKindError)
            await go_raw.close()
        finally:
            go_raw.abort()


async def test_a_go_client_that_never_closes_tcp_is_gone_at_once() -> None:
    """After the close handshake the server closes TCP (RFC 6455 7.1.1); gorilla never does."""
    server, errors = handlers_server(close_wait=30.0)
    gone = asyncio.Event()
    server.on_disconnect(lambda peer: gone.set())
    async with server:
        go = await RawClient.connect(server.addr)
        try:
            go.send_close(1000)
            reply = await go.recv_until_close()
            assert (reply.close_code, reply.close_reason) == (1000, b"")
            assert await go.server_closed_tcp()
            # Within the wait, not after close_wait (30 s).
            await asyncio.wait_for(gone.wait(), WAIT)
        finally:
            go.abort()
        # And a server-initiated shutdown with such a client returns without waiting close_wait.
        go = await RawClient.connect(server.addr)
        try:
            shutdown = asyncio.ensure_future(server.shutdown())
            frame = await go.recv_until_close()
            assert (frame.close_code, frame.close_reason) == (1000, b"")
            go.send_close(1000)
            await asyncio.wait_for(shutdown, WAIT)
            assert await go.server_closed_tcp()
        finally:
            go.abort()
    assert errors.items == []


async def test_a_go_client_over_the_size_limit_is_closed_with_1000() -> None:
    server, errors = handlers_server(max_message_size=1024)
    async with server:
        go = await RawClient.connect(server.addr)
        ours = await RawClient.connect(server.addr, headers=OUR_PEER)
        try:
            big = encode_frame("goomerang.example.MessageV1", MessageV1(message="x" * 2048).SerializeToString())
            go.send(OP_BINARY, big)
            ours.send(OP_BINARY, big)
            go_close = await go.recv_until_close()
            our_close = await ours.recv_until_close()
            assert (go_close.close_code, go_close.close_reason) == (1000, b"")
            assert our_close.close_code == 1009
            await errors.wait_for(MessageTooBigError, count=2)
        finally:
            go.abort()
            ours.abort()


async def test_a_slow_go_client_is_kicked_with_1000() -> None:
    server, errors = handlers_server(send_queue_size=4, slow_consumer_timeout=0.2, close_wait=0.5)
    async with server:
        slow = await ws_connect(server.url, max_size=None)
        try:
            slow.transport.pause_reading()
            async with asyncio.timeout(WAIT):
                while server.peers:
                    await server.broadcast(PingPong(body=b"x" * 256 * 1024))
            slow.transport.resume_reading()
            with contextlib.suppress(websockets.ConnectionClosed):
                async with asyncio.timeout(WAIT):
                    async for _ in slow:
                        pass
            # 1006 when the TCP connection was dropped before the close frame got through.
            assert slow.close_code in (1000, 1006)
            assert slow.close_reason == ""
            await errors.wait_for(SlowConsumerError)
        finally:
            slow.transport.abort()


async def test_our_client_closes_a_go_server_with_1000_when_a_message_is_too_big() -> None:
    codes: list[tuple[int | None, str | None]] = []
    done = asyncio.Event()

    async def go_like(ws: WsServerConnection) -> None:
        await ws.send(encode_frame(REPLY, ReplyV1(message="x" * 4096).SerializeToString()))
        await ws.wait_closed()
        codes.append((ws.close_code, ws.close_reason))
        done.set()

    async with ws_serve(go_like, "127.0.0.1", 0) as raw_server:
        port = raw_server.sockets[0].getsockname()[1]
        client = Client(server=f"127.0.0.1:{port}", heartbeat_interval=None, max_message_size=1024)
        errors = Collector()
        client.on_error(errors)
        await client.connect()
        assert client.extensions == GO_WIRE
        await asyncio.wait_for(done.wait(), WAIT)
        await asyncio.wait_for(client.wait_closed(), WAIT)
        await errors.wait_for(MessageTooBigError)
    assert codes == [(1000, "")]
