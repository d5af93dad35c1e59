"""The Python conventions of issue 16 that mypy --strict and pyright strict must accept: decorators, iterators."""

from __future__ import annotations

from typing import assert_type

from generated.chat.v1 import chat_goomerang as chat
from generated.chat.v1.chat_pb2 import Said
from generated.goomerang.example.messages_pb2 import MessageV1, ReplyV1
from goomerang_runtime import Client, Handler, Message, ProtoMessage, Sender, Server, Subscription


def register(server: Server, client: Client) -> None:
    @server.handler(MessageV1)
    async def on_message(sender: Sender, msg: Message[MessageV1]) -> None:
        assert_type(msg.payload, MessageV1)
        await sender.send(ReplyV1(message=msg.payload.message))

    @server.handler(ReplyV1)
    async def on_any(sender: Sender, msg: Message[ProtoMessage]) -> None:  # a handler of any kind fits any kind
        pass

    @client.handler(Said)
    async def on_said(sender: Sender, msg: Message[Said]) -> None:
        assert_type(msg.payload.text, str)

    @server.middleware
    def log_kinds(next_handler: Handler[ProtoMessage]) -> Handler[ProtoMessage]:
        return next_handler

    assert_type(on_message, Handler[MessageV1])
    assert_type(on_said, Handler[Said])


async def iterate(client: Client) -> None:
    async with client.subscription("rooms.*", Said) as sub:
        assert_type(sub, Subscription[Said])
        async for msg in sub:
            assert_type(msg, Message[Said])
            assert_type(msg.payload.text, str)
        async for msg in sub.messages:
            assert_type(msg.metadata.topic, str)
        assert_type(await anext(sub), Message[Said])
    async with client.subscription("jobs.*", Said, group="workers") as member:
        assert_type(member, Subscription[Said])
        assert_type(member.group, str)
        async for msg in member:
            assert_type(msg.metadata.group, str)
    async with chat.RoomsTopic(client).subscription("rooms.go", max_pending=10, group="g") as typed:
        assert_type(typed, Subscription[Said])
        async for said in typed:
            assert_type(said.payload, Said)
