"""The hooks that report what a peer sends: on_send, on_send_sync and the client's command hooks."""

from __future__ import annotations

import asyncio

import pytest

from generated.goomerang.example.messages_pb2 import MessageV1, PingPong, ReplyV1
from goomerang_runtime import (
    Client,
    GoomerangError,
    Message,
    RemoteHandlerError,
    Sender,
    Server,
    SyncTimeoutError,
)

from .helpers import WAIT, Counter

MESSAGE_V1 = "goomerang.example.MessageV1"
REPLY_V1 = "goomerang.example.ReplyV1"
PING_PONG = "goomerang.example.PingPong"


async def test_on_send_reports_every_message_a_peer_sends_itself() -> None:
    server = Server()
    server_sent: list[tuple[str, int]] = []
    durations: list[float] = []
    server.on_send(lambda kind, size, duration: (server_sent.append((kind, size)), durations.append(duration)))

    async def answer(sender: Sender, msg: Message[MessageV1]) -> None:
        await sender.send(ReplyV1(message="r:" + msg.payload.message))  # the reply, or a push

    server.handle(MessageV1, answer)
    got = Counter()

    async def on_reply(sender: Sender, msg: Message[ReplyV1]) -> None:
        got.hit()

    client_sent: list[tuple[str, int]] = []
    async with server:
        client = Client(server=server.addr)
        client.on_send(lambda kind, size, duration: (client_sent.append((kind, size)), durations.append(duration)))
        client.handle(ReplyV1, on_reply)
        async with client:
            plain_size = await client.send(MessageV1(message="abc"))
            await got.wait_for(1)
            await client.send_sync(MessageV1(message="de"), timeout=WAIT)
            [peer] = server.peers
            await server.send_to(peer.id, ReplyV1(message="direct"))
            await got.wait_for(2)
            await server.broadcast(ReplyV1(message="not an on_send"))  # has on_broadcast
            await got.wait_for(3)
    assert plain_size == MessageV1(message="abc").ByteSize()
    assert client_sent == [(MESSAGE_V1, 5), (MESSAGE_V1, 4)]
    assert server_sent == [(REPLY_V1, 7), (REPLY_V1, 6), (REPLY_V1, 8)]
    assert all(duration >= 0 for duration in durations)


async def test_on_send_sync_reports_duration_and_outcome() -> None:
    server = Server()
    stuck = asyncio.Event()

    async def reply(sender: Sender, msg: Message[MessageV1]) -> None:
        await sender.send(ReplyV1())

    async def fail(sender: Sender, msg: Message[PingPong]) -> None:
        if msg.payload.sequence:
            await stuck.wait()
        raise RuntimeError("nope")

    server.handle(MessageV1, reply)
    server.handle(PingPong, fail)
    async with server:
        client = Client(server=server.addr)
        client.register_message(ReplyV1)
        ends: list[tuple[str, float, GoomerangError | None]] = []
        client.on_send_sync(lambda kind, duration, error: ends.append((kind, duration, error)))
        async with client:
            await client.send_sync(MessageV1(), timeout=WAIT)
            with pytest.raises(RemoteHandlerError):
                await client.send_sync(PingPong(), timeout=WAIT)
            with pytest.raises(SyncTimeoutError):
                await client.send_sync(PingPong(sequence=1), timeout=0.05)
            stuck.set()
    assert [(kind, type(error)) for kind, _, error in ends] == [
        (MESSAGE_V1, type(None)),
        (PING_PONG, RemoteHandlerError),
        (PING_PONG, SyncTimeoutError),
    ]
    assert all(duration >= 0 for _, duration, _ in ends)


async def test_client_command_hooks_fire_once_queued() -> None:
    server = Server()
    server.register_message(ReplyV1)
    processed = Counter()
    server.on_unsubscribe(lambda topic: processed.hit())
    async with server:
        client = Client(server=server.addr)
        client.register_message(ReplyV1)
        seen: list[tuple[str, ...]] = []
        client.on_broadcast(lambda kind: seen.append(("broadcast", kind)))
        client.on_publish(lambda topic, kind: seen.append(("publish", topic, kind)))
        client.on_subscribe(lambda topic: seen.append(("subscribe", topic)))
        client.on_unsubscribe(lambda topic: seen.append(("unsubscribe", topic)))
        async with client:
            await client.subscribe("news")
            await client.publish("news", ReplyV1())
            await client.broadcast(ReplyV1())
            await client.unsubscribe("news")
            await processed.wait_for(1)
    assert seen == [
        ("subscribe", "news"),
        ("publish", "news", REPLY_V1),
        ("broadcast", REPLY_V1),
        ("unsubscribe", "news"),
    ]
