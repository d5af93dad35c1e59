"""Misuses of the runtime API that mypy --strict and pyright strict must reject, each on its marked line."""

from __future__ import annotations

from generated.goomerang.example.messages_pb2 import MessageV1, PingPong, ReplyV1
from goomerang_runtime import Client, Message, Sender, Server


async def on_reply(sender: Sender, msg: Message[ReplyV1]) -> None:
    pass


async def misuse() -> None:
    server = Server(max_concurency=4)  # E: call-arg  # P: reportCallIssue
    server.handle(MessageV1, on_reply)  # E: arg-type  # P: reportArgumentType
    client = Client(server=8080)  # E: arg-type  # P: reportArgumentType
    reply = await client.send_sync(MessageV1(), expect=ReplyV1)
    print(reply.payload.reason)  # E: attr-defined  # P: reportAttributeAccessIssue, reportUnknownMemberType, reportUnknownArgumentType
    await client.send("not a message")  # E: arg-type  # P: reportArgumentType
    either = await client.send_sync(MessageV1(), expect=(ReplyV1, PingPong))
    print(either.payload.sequence)  # E: union-attr  # P: reportAttributeAccessIssue, reportUnknownMemberType, reportUnknownArgumentType
