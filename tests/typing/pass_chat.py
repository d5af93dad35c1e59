"""Uses of the generated chat code that mypy --strict must accept."""

from __future__ import annotations

from typing import Literal, assert_type

import goomerang_runtime as rt
from generated.chat.v1 import chat_goomerang as chat
from generated.chat.v1.chat_pb2 import JoinAccepted, JoinRejected, JoinRequest, Said, SayRequest


class ChatService(chat.ChatBase):
    async def join(self, request: JoinRequest, ctx: chat.Context) -> chat.ChatJoinReply:
        assert_type(ctx.headers, dict[str, str])
        assert_type(ctx.server, rt.Server)
        assert_type(ctx.peer, rt.PeerInfo)
        if not request.user:
            return JoinRejected(reason="who are you?")
        ctx.reply_headers["status"] = "200"
        return JoinAccepted(members=[request.user])

    async def say(self, request: SayRequest, ctx: chat.Context) -> None:
        pusher = chat.ChatPushSender(ctx.server)
        results = await pusher.broadcast(Said(room=request.room, text=request.text))
        assert_type(results, list[rt.BroadcastResult])
        await pusher.send(ctx.sender, rt.Message(Said(text="just you")))
        await chat.RoomsTopic(ctx.server).publish(f"rooms.{request.room}", Said(text=request.text))


class Narrower(chat.ChatBase):
    """A method may promise less than the base: only acceptances."""

    async def join(self, request: JoinRequest, ctx: chat.Context) -> JoinAccepted:
        return JoinAccepted()

    async def say(self, request: SayRequest, ctx: chat.Context) -> None:
        return None


class Ears(chat.ChatPushBase):
    async def hear(self, request: Said, ctx: chat.ClientContext) -> None:
        assert_type(ctx.client, rt.Client)


async def on_said(sender: rt.Sender, msg: rt.Message[Said]) -> None:
    assert_type(msg.payload, Said)


async def use(server: rt.Server, client: rt.Client) -> None:
    chat.add_chat(server, ChatService())
    chat.add_chat(server, Narrower())
    chat.add_chat_push(client, Ears())
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
    size = await stub.say(SayRequest(room="go", text="hi"))
    assert_type(size, int)
    rooms = chat.RoomsTopic(client)
    await rooms.subscribe("rooms.go", on_said)
    await rooms.publish("rooms.go", Said(text="hi"))
    assert_type(rooms.PATTERN, Literal["rooms.*"])
