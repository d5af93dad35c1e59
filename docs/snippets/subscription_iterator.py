"""Subscriptions as async iterators, beside the callback form."""

import asyncio

from generated.chat.v1 import chat_goomerang as chat
from generated.chat.v1.chat_pb2 import Said
from goomerang_runtime import Client, Server, SlowSubscriptionError


async def main() -> None:
    server = Server()
    server.register_message(Said)
    subscribed = asyncio.Event()
    server.on_subscribe(lambda topic: subscribed.set())
    async with server, Client(server=server.addr) as client:
        # --8<-- [start:iterate]
        async with client.subscription("rooms.*", Said) as sub:  # subscribes; unsubscribes on exit
            await subscribed.wait()  # (here: the server took the subscription)
            await server.publish("rooms.go", Said(room="go", user="ana", text="hi"))
            async for msg in sub:  # msg: Message[Said]; also `async for msg in sub.messages`
                print(msg.metadata.topic, msg.payload.user, msg.payload.text)
                break
        # --8<-- [end:iterate]

        subscribed.clear()
        ended = asyncio.Event()
        client.on_error(lambda error: ended.set())  # a slow subscription is reported too
        # --8<-- [start:typed]
        rooms = chat.RoomsTopic(client)  # generated: only Said, only topics of "rooms.*"
        async with rooms.subscription("rooms.go", max_pending=2) as go:
            await subscribed.wait()
            for n in range(3):
                await chat.RoomsTopic(server).publish("rooms.go", Said(room="go", text=str(n)))
            await ended.wait()  # nobody read yet: the third did not fit, the subscription ended
            try:
                async for said in go:
                    print("read", said.payload.text)  # the two buffered ones
            except SlowSubscriptionError as error:
                print("then:", error)
        # --8<-- [end:typed]


asyncio.run(main())
