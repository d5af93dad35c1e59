"""Handlers and middlewares registered with decorators."""

import asyncio

from generated.goomerang.example.messages_pb2 import MessageV1, ReplyV1
from goomerang_runtime import Client, Handler, Message, ProtoMessage, Sender, Server

server = Server()


# --8<-- [start:decorators]
@server.middleware
def log_kinds(next_handler: Handler[ProtoMessage]) -> Handler[ProtoMessage]:
    async def wrapped(sender: Sender, msg: Message[ProtoMessage]) -> None:
        print("received", msg.kind)
        await next_handler(sender, msg)

    return wrapped


@server.handler(MessageV1)  # the same as server.handle(MessageV1, on_message)
async def on_message(sender: Sender, msg: Message[MessageV1]) -> None:
    await sender.send(ReplyV1(message="hi " + msg.payload.message))  # msg.payload: MessageV1


# --8<-- [end:decorators]


async def main() -> None:
    async with server, Client(server=server.addr) as client:
        reply = await client.send_sync(MessageV1(message="ana"), timeout=2.0, expect=ReplyV1)
        print(reply.payload.message)


asyncio.run(main())
