"""Misuses of the generated chat code that mypy --strict and pyright strict must reject, each on its marked line."""

from __future__ import annotations

import goomerang_runtime as rt
from generated.chat.v1 import chat_goomerang as chat
from generated.chat.v1.chat_pb2 import JoinAccepted, JoinRequest, Said, SayRequest


class WrongReply(chat.ChatBase):
    async def join(self, request: JoinRequest, ctx: chat.Context) -> Said:  # E: override  # P: reportIncompatibleMethodOverride
        return Said()

    async def say(self, request: SayRequest, ctx: chat.Context) -> None:
        pass


class ReturnsWrongValue(chat.ChatBase):
    async def join(self, request: JoinRequest, ctx: chat.Context) -> chat.ChatJoinReply:
        return Said()  # E: return-value  # P: reportReturnType

    async def say(self, request: SayRequest, ctx: chat.Context) -> None:
        pass


class WrongRequest(chat.ChatBase):
    async def join(self, request: Said, ctx: chat.Context) -> chat.ChatJoinReply:  # E: override  # P: reportIncompatibleMethodOverride
        return JoinAccepted()

    async def say(self, request: SayRequest, ctx: chat.Context) -> None:
        pass


class MissingSay(chat.ChatBase):
    async def join(self, request: JoinRequest, ctx: chat.Context) -> chat.ChatJoinReply:
        return JoinAccepted()


class ContextMisuse(chat.ChatBase):
    async def join(self, request: JoinRequest, ctx: chat.ChatJoinContext) -> chat.ChatJoinReply:
        print(ctx.message.payload.text)  # E: attr-defined  # P: reportAttributeAccessIssue, reportUnknownMemberType, reportUnknownArgumentType
        return JoinAccepted()

    async def say(self, request: SayRequest, ctx: chat.ChatSayContext) -> None:
        ctx.reply_headers["status"] = "200"  # E: attr-defined  # P: reportAttributeAccessIssue, reportUnknownMemberType


class NarrowContext(chat.ChatBase):
    async def join(self, request: JoinRequest, ctx: chat.ChatJoinContext) -> chat.ChatJoinReply:
        return JoinAccepted()

    async def say(self, request: SayRequest, ctx: chat.ChatJoinContext) -> None:  # E: override  # P: reportIncompatibleMethodOverride
        pass


async def on_join(sender: rt.Sender, msg: rt.Message[JoinRequest]) -> None:
    pass


async def on_said(sender: rt.Sender, msg: rt.Message[Said]) -> None:
    pass


async def misuse(server: rt.Server, client: rt.Client) -> None:
    chat.add_chat(server, MissingSay())  # E: abstract  # P: reportAbstractUsage
    stub = chat.ChatStub(client)
    await stub.join(SayRequest())  # E: arg-type  # P: reportArgumentType
    await stub.say(JoinRequest())  # E: arg-type  # P: reportArgumentType
    reply = await stub.join(JoinRequest())
    print(reply.members)  # E: union-attr  # P: reportAttributeAccessIssue, reportUnknownMemberType, reportUnknownArgumentType
    whole = await stub.join_with_reply(JoinRequest())
    print(whole.payload.members)  # E: union-attr  # P: reportAttributeAccessIssue, reportUnknownMemberType, reportUnknownArgumentType
    await stub.say(SayRequest(), timeout=1.0)  # E: call-arg  # P: reportCallIssue
    await stub.join(JoinRequest(), timeout="soon")  # E: arg-type  # P: reportArgumentType
    await stub.join(JoinRequest(), headers={"n": 1})  # E: dict-item  # P: reportArgumentType
    rooms = chat.RoomsTopic(client)
    await rooms.publish("rooms.go", JoinRequest())  # E: arg-type  # P: reportArgumentType
    await rooms.subscribe("rooms.go", on_join)  # E: arg-type  # P: reportArgumentType
    await rooms.subscribe("rooms.go", on_said, group=1)  # E: arg-type  # P: reportArgumentType
    await chat.RoomsTopic(server).subscribe("rooms.go", on_said)  # E: misc  # P: reportAttributeAccessIssue, reportUnknownMemberType
    await chat.RoomsTopic(server).unsubscribe("rooms.go")  # E: misc  # P: reportAttributeAccessIssue, reportUnknownMemberType
    await chat.ChatPushSender(server).broadcast(JoinRequest())  # E: arg-type  # P: reportArgumentType
    chat.add_chat_push(server, chat.ChatPushBase())  # E: arg-type, abstract  # P: reportArgumentType, reportAbstractUsage
    chat.add_chat(client, WrongReply())  # E: arg-type  # P: reportArgumentType
    chat.register_topic_kinds(client)  # E: arg-type  # P: reportArgumentType
