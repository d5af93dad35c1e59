"""Misuses of the issue 16 conventions that mypy --strict and pyright strict must reject, each on its marked line."""

from __future__ import annotations

from generated.chat.v1 import chat_goomerang as chat
from generated.chat.v1.chat_pb2 import JoinRequest, Said
from generated.goomerang.example.messages_pb2 import MessageV1, ReplyV1
from goomerang_runtime import Client, Message, Sender, Server


def register(server: Server) -> None:
    @server.handler(MessageV1)  # E: arg-type  # P: reportArgumentType
    async def on_reply(sender: Sender, msg: Message[ReplyV1]) -> None:
        pass

    @server.handler(MessageV1)  # E: arg-type  # P: reportArgumentType
    def not_async(sender: Sender, msg: Message[MessageV1]) -> None:
        pass

    @server.handler(MessageV1)
    async def reads_a_wrong_field(sender: Sender, msg: Message[MessageV1]) -> None:
        print(msg.payload.members)  # E: attr-defined  # P: reportAttributeAccessIssue, reportUnknownMemberType, reportUnknownArgumentType


async def iterate(client: Client, server: Server) -> None:
    async with client.subscription("rooms.*", Said) as sub:
        async for msg in sub:
            request: JoinRequest = msg.payload  # E: assignment  # P: reportAssignmentType
            print(request)
    chat.RoomsTopic(server).subscription("rooms.go")  # E: misc  # P: reportAttributeAccessIssue, reportUnknownMemberType
    client.subscription("rooms.*", "Said")  # E: arg-type  # P: reportArgumentType
