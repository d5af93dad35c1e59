"""Misuses of the generated chat code that mypy --strict must reject, each on its marked line."""

from __future__ import annotations

import goomerang_runtime as rt
from generated.chat.v1 import chat_goomerang as chat
from generated.chat.v1.chat_pb2 import JoinAccepted, JoinRequest, Said, SayRequest


class WrongReply(chat.ChatBase):
    async def join(self, request: JoinRequest, ctx: chat.Context) -> Said:  # E: override
        return Said()

    async def say(self, request: SayRequest, ctx: chat.Context) -> None:
        pass


class ReturnsWrongValue(chat.ChatBase):
    async def join(self, request: JoinRequest, ctx: chat.Context) -> chat.ChatJoinReply:
        return Said()  # E: return-value

    async def say(self, request: SayRequest, ctx: chat.Context) -> None:
        pass


class WrongRequest(chat.ChatBase):
    async def join(self, request: Said, ctx: chat.Context) -> chat.ChatJoinReply:  # E: override
        return JoinAccepted()

    async def say(self, request: SayRequest, ctx: chat.Context) -> None:
        pass


class MissingSay(chat.ChatBase):
    async def join(self, request: JoinRequest, ctx: chat.Context) -> chat.ChatJoinReply:
        return JoinAccepted()


async def on_join(sender: rt.Sender, msg: rt.Message[JoinRequest]) -> None:
    pass


async def misuse(server: rt.Server, client: rt.Client) -> None:
    chat.add_chat(server, MissingSay())  # E: abstract
    stub = chat.ChatStub(client)
    await stub.join(SayRequest())  # E: arg-type
    await stub.say(JoinRequest())  # E: arg-type
    reply = await stub.join(JoinRequest())
    print(reply.members)  # E: union-attr
    await stub.say(SayRequest(), timeout=1.0)  # E: call-arg
    rooms = chat.RoomsTopic(client)
    await rooms.publish("rooms.go", JoinRequest())  # E: arg-type
    await rooms.subscribe("rooms.go", on_join)  # E: arg-type
    await chat.ChatPushSender(server).broadcast(JoinRequest())  # E: arg-type
    chat.add_chat_push(server, chat.ChatPushBase())  # E: arg-type, abstract
    chat.add_chat(client, WrongReply())  # E: arg-type
