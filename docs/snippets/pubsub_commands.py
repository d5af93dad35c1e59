"""Broadcast and pub/sub: client commands and server calls."""

import asyncio

from generated.goomerang.example.messages_pb2 import MessageV1, ReplyV1
from goomerang_runtime import Client, Message, Sender, Server


async def main() -> None:
    server = Server()
    server.register_message(ReplyV1)  # the server decodes what passes through it
    heard: asyncio.Queue[str] = asyncio.Queue()

    async def on_reply(sender: Sender, msg: Message[ReplyV1]) -> None:
        await heard.put(f"{msg.metadata.topic or 'broadcast'}: {msg.payload.message}")

    async def echo(sender: Sender, msg: Message[MessageV1]) -> None:
        await sender.send(ReplyV1(message=msg.payload.message))

    server.handle(MessageV1, echo)
    async with server:
        client = Client(server=server.addr)
        client.handle(ReplyV1, on_reply)  # deliveries are plain frames, handled by kind
        async with client:
            # --8<-- [start:client]
            # Client side: commands to the server (headers travel prefixed `message-`, restored on delivery).
            await client.broadcast(Message(ReplyV1(message="hi")).set_header("room", "go"))  # all, this one too
            await client.subscribe("rooms.go")
            await client.subscribe("rooms.*")  # wildcards, see below
            await client.publish("rooms.go", ReplyV1(message="hello"))  # every subscriber of the topic
            await client.unsubscribe("rooms.go")
            # --8<-- [end:client]
            await client.send_sync(MessageV1(message="sync"), timeout=2.0, expect=ReplyV1)  # commands ran

            # --8<-- [start:server]
            # Server side.
            results = await server.broadcast(ReplyV1(message="maintenance at 5"), timeout=2.0)
            for r in results:  # one per connected client: r.peer, r.size, r.duration, r.error
                assert r.error is None
            await server.publish("rooms.go", Message(ReplyV1(message="from the server"), {"k": "v"}))
            # --8<-- [end:server]
            for _ in range(4):
                print(await asyncio.wait_for(heard.get(), 2.0))


asyncio.run(main())
