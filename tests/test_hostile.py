"""Hostile and broken peers: each attack costs only the connection that makes it."""

from __future__ import annotations

import asyncio
import contextlib

from websockets.asyncio.client import ClientConnection
from websockets.asyncio.client import connect as ws_connect

from generated.goomerang.example.messages_pb2 import MessageV1, ReplyV1
from goomerang_runtime import Client, Message, Sender, Server, SlowConsumerError
from goomerang_runtime._codec import encode_message

from .helpers import OUR_PEER, WAIT, Collector
from .rawws import OP_BINARY, RawClient

REPLY_BODY = "r" * 4096


def echo_server(**options: object) -> tuple[Server, Collector]:
    server = Server(**options)  # type: ignore[arg-type]
    errors = Collector()
    server.on_error(errors)

    async def handle(sender: Sender, msg: Message[MessageV1]) -> None:
        await sender.send(ReplyV1(message=REPLY_BODY))

    server.handle(MessageV1, handle)
    return server, errors


async def flood_without_reading(ws: ClientConnection, count: int) -> None:
    """Sync requests as fast as the server takes them, never reading a reply."""
    ws.transport.pause_reading()
    with contextlib.suppress(Exception):
        for n in range(count):
            data, _, _ = encode_message(
                Message(MessageV1(message="flood")), uuid=f"00000000-0000-4000-8000-{n:012x}", is_sync=True
            )
            await ws.send(data)


async def test_clients_that_never_read_replies_cost_only_themselves() -> None:
    server, errors = echo_server()
    async with server:
        flooders = [await ws_connect(server.url, max_size=None, additional_headers=OUR_PEER) for _ in range(12)]
        floods = [asyncio.create_task(flood_without_reading(ws, 20_000)) for ws in flooders]
        try:
            async with Client(server=server.addr, heartbeat_interval=None) as good:
                failed = 0
                for n in range(20):
                    try:
                        await good.send_sync(MessageV1(message=f"{n}"), timeout=2.0, expect=ReplyV1)
                    except Exception:
                        failed += 1
                assert failed == 0
            # The flooders were disconnected as slow consumers, the good client never was.
            await errors.wait_for(SlowConsumerError, count=12)
        finally:
            for task in floods:
                task.cancel()
            for ws in flooders:
                ws.transport.abort()


async def test_duplicate_origin_or_host_headers_get_400_and_nothing_breaks() -> None:
    server, errors = echo_server()
    async with server:
        for extra in ({"Origin": ["http://a", "http://b"]}, {"Host": ["x", "y"]}):
            raw = await RawClient.connect_raw(server.addr, extra)
            status = await raw.status_line()
            assert status.startswith("HTTP/1.1 400"), status
            raw.abort()
        async with Client(server=server.addr, heartbeat_interval=None) as client:
            await client.send_sync(MessageV1(message="still"), timeout=WAIT, expect=ReplyV1)
    assert errors.items == []


async def test_a_flood_of_empty_fragments_is_cut_off() -> None:
    """3 M empty continuation frames in one message: websockets >= 17.4 drops the connection early."""
    server, _ = echo_server()
    async with server:
        raw = await RawClient.connect(server.addr)
        raw.send(OP_BINARY, b"", fin=False)
        empty_continuation = bytes([0x00, 0x80]) + b"\0\0\0\0"
        sent = 0
        with contextlib.suppress(ConnectionError):
            async with asyncio.timeout(WAIT * 3):
                while sent < 3_000_000:
                    raw.writer.write(empty_continuation * 100_000)
                    await raw.writer.drain()
                    sent += 100_000
        assert sent < 3_000_000  # cut off before the end
        raw.abort()
        async with Client(server=server.addr, heartbeat_interval=None) as client:
            await client.send_sync(MessageV1(message="still"), timeout=WAIT, expect=ReplyV1)
