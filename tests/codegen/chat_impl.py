"""A small chat built on the generated code, shared by the end-to-end tests."""

from __future__ import annotations

import asyncio

from generated.chat.v1 import chat_goomerang as chat
from generated.chat.v1.chat_pb2 import JoinAccepted, JoinRejected, JoinRequest, Said, SayRequest


class ChatService(chat.ChatBase):
    """Rooms with members; 'closed' rejects, 'boom' raises, 'liar' returns a wrong type."""

    def __init__(self) -> None:
        self.members: dict[str, list[str]] = {}

    async def join(self, request: JoinRequest, ctx: chat.ChatJoinContext) -> chat.ChatJoinReply:
        if request.room == "closed":
            return JoinRejected(reason="room closed")
        if request.room == "boom":
            raise RuntimeError("the room exploded")
        if request.room == "liar":
            return Said()  # type: ignore[return-value]  # checked at runtime too
        ctx.reply_headers["room"] = request.room
        members = self.members.setdefault(request.room, [])
        members.append(request.user)
        return JoinAccepted(members=members)

    async def say(self, request: SayRequest, ctx: chat.Context) -> None:
        said = Said(room=request.room, user=ctx.headers.get("user", "?"), text=request.text)
        await chat.ChatPushSender(ctx.server).broadcast(said)
        await chat.RoomsTopic(ctx.server).publish(f"rooms.{request.room}", said)


class Listener(chat.ChatPushBase):
    """Collects what the server pushes."""

    def __init__(self) -> None:
        self.heard: asyncio.Queue[Said] = asyncio.Queue()

    async def hear(self, request: Said, ctx: chat.ClientContext) -> None:
        await self.heard.put(request)
