"""exception_guard and sync requests: the caller gets the error reply at once, with or without the guard."""

from __future__ import annotations

import asyncio

import pytest

from generated.chat.v1 import chat_goomerang as chat
from generated.chat.v1.chat_pb2 import JoinRequest, SayRequest
from generated.goomerang.example.messages_pb2 import MessageV1, ReplyV1
from goomerang_runtime import (
    Client,
    HandlerError,
    Message,
    ProtoMessage,
    RemoteHandlerError,
    Sender,
    Server,
    SyncTimeoutError,
    exception_guard,
)

from .helpers import WAIT, Collector

SLOW = 60.0
"""A send_sync timeout far longer than the test's own bound: only an error reply can end the call in time."""


async def raise_or_echo(sender: Sender, msg: Message[MessageV1]) -> None:
    if msg.payload.message == "reply then raise":
        await sender.send(ReplyV1(message="replied"))
    raise RuntimeError("boom")


def guarded_server(caught: list[tuple[str, str]], errors: Collector) -> Server:
    server = Server()
    server.on_error(errors)
    server.middleware(exception_guard(lambda error, msg: caught.append((type(error).__name__, msg.kind))))
    server.handle(MessageV1, raise_or_echo)
    return server


@pytest.mark.parametrize("guarded", [True, False])
async def test_a_raising_sync_handler_answers_the_caller_at_once(guarded: bool) -> None:
    caught: list[tuple[str, str]] = []
    errors = Collector()
    server = guarded_server(caught, errors) if guarded else Server()
    if not guarded:
        server.on_error(errors)
        server.handle(MessageV1, raise_or_echo)
    async with server, Client(server=server.addr) as client, asyncio.timeout(WAIT):
        with pytest.raises(RemoteHandlerError) as info:
            await client.send_sync(MessageV1(message="x"), timeout=SLOW)
        assert info.value.request_kind == "goomerang.example.MessageV1"
        assert info.value.error_type == "RuntimeError"
        assert info.value.detail == "boom"
        assert client.pending_sync == 0
    if guarded:  # the guard took the error: not reported as a handler error
        assert caught == [("RuntimeError", "goomerang.example.MessageV1")]
        assert errors.of(HandlerError) == []
    else:
        assert len(errors.of(HandlerError)) == 1


async def test_a_handler_that_replied_before_raising_keeps_its_reply() -> None:
    caught: list[tuple[str, str]] = []
    server = guarded_server(caught, Collector())
    async with server, Client(server=server.addr) as client, asyncio.timeout(WAIT):
        reply = await client.send_sync(MessageV1(message="reply then raise"), timeout=SLOW, expect=ReplyV1)
        assert reply.payload.message == "replied"
        # Nothing else came for that request: the next call is answered as usual.
        with pytest.raises(RemoteHandlerError):
            await client.send_sync(MessageV1(message="x"), timeout=SLOW)
    assert len(caught) == 2


async def test_a_go_caller_still_waits_for_its_timeout_as_with_a_go_server() -> None:
    caught: list[tuple[str, str]] = []
    server = guarded_server(caught, Collector())
    async with server, Client(server=server.addr, extensions=False) as client, asyncio.timeout(WAIT):
        with pytest.raises(SyncTimeoutError):
            await client.send_sync(MessageV1(message="x"), timeout=0.2)
    assert len(caught) == 1


class Failing(chat.ChatBase):
    async def join(self, request: JoinRequest, ctx: chat.ChatJoinContext) -> chat.ChatJoinReply:
        raise LookupError(f"no room {request.room}")

    async def say(self, request: SayRequest, ctx: chat.Context) -> None:
        pass


async def test_a_guarded_generated_service_answers_the_typed_stub_at_once() -> None:
    caught: list[Exception] = []

    def keep(error: Exception, msg: Message[ProtoMessage]) -> None:
        caught.append(error)

    server = Server()
    server.middleware(exception_guard(keep))
    chat.add_chat(server, Failing())
    async with server, Client(server=server.addr) as client, asyncio.timeout(WAIT):
        with pytest.raises(RemoteHandlerError, match="LookupError: no room go"):
            await chat.ChatStub(client).join(JoinRequest(room="go", user="ana"), timeout=SLOW)
    assert [type(error) for error in caught] == [LookupError]
