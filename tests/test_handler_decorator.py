"""Handlers and middlewares as decorators, beside handle() and middleware()."""

from __future__ import annotations

import asyncio

import pytest

from generated.goomerang.example.messages_pb2 import MessageV1, ReplyV1
from goomerang_runtime import (
    Client,
    DuplicateHandlerError,
    Handler,
    Message,
    ProtoMessage,
    RegistrationClosedError,
    Sender,
    Server,
)

from .helpers import WAIT


async def test_a_decorated_function_handles_its_kind_and_is_returned_unchanged() -> None:
    server = Server()
    seen: list[str] = []

    @server.middleware
    def note_kinds(next_handler: Handler[ProtoMessage]) -> Handler[ProtoMessage]:
        async def noted(sender: Sender, msg: Message[ProtoMessage]) -> None:
            seen.append(msg.kind)
            await next_handler(sender, msg)

        return noted

    async def on_message(sender: Sender, msg: Message[MessageV1]) -> None:
        await sender.send(ReplyV1(message="hi " + msg.payload.message))

    assert server.handler(MessageV1)(on_message) is on_message
    assert callable(note_kinds)
    async with server, Client(server=server.addr) as client, asyncio.timeout(WAIT):
        reply = await client.send_sync(MessageV1(message="ana"), timeout=WAIT, expect=ReplyV1)
    assert reply.payload.message == "hi ana"
    assert seen == ["goomerang.example.MessageV1"]


async def test_a_client_handler_by_decorator() -> None:
    received: asyncio.Queue[str] = asyncio.Queue()
    server = Server()

    @server.handler(MessageV1)
    async def push_back(sender: Sender, msg: Message[MessageV1]) -> None:
        await sender.send(ReplyV1(message=msg.payload.message))

    async with server:
        client = Client(server=server.addr)

        @client.handler(ReplyV1)
        async def on_reply(sender: Sender, msg: Message[ReplyV1]) -> None:
            await received.put(msg.payload.message)

        async with client, asyncio.timeout(WAIT):
            await client.send(MessageV1(message="pushed"))
            assert await received.get() == "pushed"


async def test_the_decorator_keeps_the_rules_of_handle() -> None:
    server = Server()

    @server.handler(MessageV1)
    async def first(sender: Sender, msg: Message[MessageV1]) -> None:
        pass

    with pytest.raises(DuplicateHandlerError):

        @server.handler(MessageV1)
        async def second(sender: Sender, msg: Message[MessageV1]) -> None:
            pass

    async with server:
        late = server.handler(ReplyV1)
        with pytest.raises(RegistrationClosedError):

            @late
            async def too_late(sender: Sender, msg: Message[ReplyV1]) -> None:
                pass
