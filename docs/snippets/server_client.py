"""A server and a client with the runtime API, no code generation (the Go library's shape)."""

import asyncio

from generated.goomerang.example.messages_pb2 import MessageV1, ReplyV1
from goomerang_runtime import Client, Message, Sender, Server


async def on_message(sender: Sender, msg: Message[MessageV1]) -> None:
    # msg.payload is a MessageV1; mypy knows it.
    reply = Message(ReplyV1(message="hi " + msg.payload.message)).set_header("status", "200")
    await sender.send(reply)  # for a sync request, the first send is the reply


async def main() -> None:
    server = Server(listen="127.0.0.1:0")  # port 0: any free port, see server.addr
    server.handle(MessageV1, on_message)
    async with server:  # or: await server.run() until server.shutdown()
        client = Client(server=server.addr)
        client.register_message(ReplyV1)  # kinds the client receives without a handler
        async with client:  # connect() ... close()
            await client.send(MessageV1(message="fire and forget"))
            reply = await client.send_sync(
                Message(MessageV1(message="ana")).set_header("user", "ana"),
                timeout=2.0,
                expect=ReplyV1,  # reply is Message[ReplyV1]; another kind raises
            )
            print(reply.payload.message, reply.headers)


asyncio.run(main())
