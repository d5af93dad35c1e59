"""Uses of the runtime API without codegen that mypy --strict must accept."""

from __future__ import annotations

from typing import assert_type

from generated.goomerang.example.messages_pb2 import MessageV1, PingPong, ReplyV1
from goomerang_runtime import Client, Handler, Message, ProtoMessage, Sender, Server, Status


async def on_message(sender: Sender, msg: Message[MessageV1]) -> None:
    assert_type(msg.payload, MessageV1)
    assert_type(await sender.send(ReplyV1(message=msg.payload.message)), int)


async def on_anything(sender: Sender, msg: Message[ProtoMessage]) -> None:
    pass


class Handles:
    async def handle(self, sender: Sender, msg: Message[MessageV1]) -> None:
        pass


def logging_middleware(next_handler: Handler[ProtoMessage]) -> Handler[ProtoMessage]:
    async def wrapped(sender: Sender, msg: Message[ProtoMessage]) -> None:
        await next_handler(sender, msg)

    return wrapped


async def use() -> None:
    server = Server(listen="127.0.0.1:0", max_concurrency=4)
    server.handle(MessageV1, on_message)
    server.handle(ReplyV1, on_anything)  # a handler for any message accepts this kind too
    server.middleware(logging_middleware)
    client = Client(server="127.0.0.1:8080", heartbeat_interval=None)
    client.handle(MessageV1, Handles())
    reply = await client.send_sync(Message(MessageV1()).set_header("k", "v"), timeout=1.0, expect=ReplyV1)
    assert_type(reply, Message[ReplyV1])
    assert_type(reply.payload.message, str)
    anything = await client.send_sync(MessageV1())
    assert_type(anything, Message[ProtoMessage])
    either = await client.send_sync(MessageV1(), expect=(ReplyV1, MessageV1))
    assert_type(either, Message[ReplyV1 | MessageV1])
    if isinstance(either.payload, ReplyV1):
        assert_type(either.payload.message, str)
    three = await client.send_sync(MessageV1(), expect=(ReplyV1, MessageV1, PingPong))
    assert_type(three, Message[ReplyV1 | MessageV1 | PingPong])
    assert_type(client.status, Status)
    wider: Message[ProtoMessage] = Message(MessageV1())  # Message is covariant
    await client.send(wider)
