"""Uses of the generated chat code that mypy --strict and pyright strict must accept."""

from __future__ import annotations

from typing import Literal, assert_type

import goomerang_runtime as rt
from generated.chat.v1 import chat_goomerang as chat
from generated.chat.v1.chat_pb2 import JoinAccepted, JoinRejected, JoinRequest, Said, SayRequest


class ChatService(chat.ChatBase):
    async def join(self, request: JoinRequest, ctx: chat.ChatJoinContext) -> chat.ChatJoinReply:
        assert_type(ctx.headers, dict[str, str])
        assert_type(ctx.server, rt.Server)
        assert_type(ctx.peer, rt.PeerInfo)
        assert_type(ctx.message, rt.Message[JoinRequest])
        assert_type(ctx.message.payload.room, str)
        if not request.user:
            return JoinRejected(reason="who are you?")
        await ctx.sender.send(Said(text="welcome"))  # a push to the caller, not the reply
        ctx.reply_headers["status"] = "200"
        return JoinAccepted(members=[request.user])

    async def say(self, request: SayRequest, ctx: chat.ChatSayContext) -> None:
        assert_type(ctx.message.payload, SayRequest)
        pusher = chat.ChatPushSender(ctx.server)
        results = await pusher.broadcast(Said(room=request.room, text=request.text))
        assert_type(results, list[rt.BroadcastResult])
        await pusher.send(ctx.sender, rt.Message(Said(text="just you")))
        await chat.RoomsTopic(ctx.server).publish(f"rooms.{request.room}", Said(text=request.text))


class Narrower(chat.ChatBase):
    """A method may promise less than the base (only acceptances) and take any context."""

    async def join(self, request: JoinRequest, ctx: chat.Context) -> JoinAccepted:
        return JoinAccepted()

    async def say(self, request: SayRequest, ctx: chat.Context) -> None:
        return None


class Renamed(chat.ChatBase):
    """The runtime passes request and context by position: any parameter names will do."""

    async def join(self, req: JoinRequest, _ctx: chat.ChatJoinContext) -> chat.ChatJoinReply:
        return JoinAccepted(members=[req.user])

    async def say(self, msg: SayRequest, context: chat.Context) -> None:
        return None


class Ears(chat.ChatPushBase):
    async def hear(self, request: Said, ctx: chat.ChatPushHearContext) -> None:
        assert_type(ctx.client, rt.Client)
        assert_type(ctx.message.payload, Said)


async def on_said(sender: rt.Sender, msg: rt.Message[Said]) -> None:
    assert_type(msg.payload, Said)


async def use(server: rt.Server, client: rt.Client) -> None:
    chat.add_chat(server, ChatService())
    chat.add_chat(server, Narrower())
    chat.add_chat(server, Renamed())
    chat.add_chat_push(client, Ears())
    chat.register_topic_kinds(server)
    stub = chat.ChatStub(client)
    reply = await stub.join(JoinRequest(room="go", user="ana"), headers={"k": "v"}, timeout=1.0)
    assert_type(reply, JoinAccepted | JoinRejected)
    match reply:
        case JoinAccepted(members=members):
            assert_type(reply, JoinAccepted)
            print(list(members))
        case JoinRejected(reason=reason):
            assert_type(reason, str)
    if isinstance(reply, JoinAccepted):
        print(reply.members)
    whole = await stub.join_with_reply(JoinRequest(room="go"), headers={"k": "v"}, timeout=1.0)
    assert_type(whole, rt.Message[JoinAccepted | JoinRejected])
    assert_type(whole.headers, dict[str, str])
    assert_type(whole.metadata, rt.Metadata)
    if isinstance(whole.payload, JoinAccepted):
        print(whole.payload.members, whole.headers.get("status"))
    size = await stub.say(SayRequest(room="go", text="hi"))
    assert_type(size, int)
    rooms = chat.RoomsTopic(client)
    assert_type(rooms, chat.RoomsTopic[rt.Client])
    await rooms.subscribe("rooms.go", on_said)
    await rooms.publish("rooms.go", Said(text="hi"))
    await rooms.unsubscribe("rooms.go")
    await rooms.subscribe("rooms.*", on_said, group="workers")  # a queue group member
    await rooms.unsubscribe("rooms.*", group="workers")
    await chat.RoomsTopic(server).publish("rooms.go", Said(text="from the server"))
    assert_type(rooms.PATTERN, Literal["rooms.*"])
    either: chat.RoomsTopic = chat.RoomsTopic(server)  # a bare annotation: bound to a client or a server
    await either.publish("rooms.go", Said())
