"""Catching up after a reconnect: the server's history, the client's recovery hook."""

import asyncio

from generated.chat.v1.chat_pb2 import Said
from goomerang_runtime import (
    Client,
    Message,
    PeerInfo,
    ReconnectPolicy,
    RecoveryError,
    Sender,
    Server,
)


async def main() -> None:
    # --8<-- [start:server]
    server = Server(history_size=100, history_ttl=300)  # the last 100 per topic, for 5 minutes at most
    # --8<-- [end:server]
    server.register_message(Said)
    peers: list[PeerInfo] = []
    server.on_connect(peers.append)
    subscribed = asyncio.Event()
    server.on_subscribe(lambda topic: subscribed.set())
    async with server:
        # --8<-- [start:client]
        client = Client(server=server.addr, reconnect=ReconnectPolicy(initial_delay=0.05))
        done = asyncio.Event()

        async def on_said(sender: Sender, msg: Message[Said]) -> None:
            print("got", msg.payload.text)

        def on_recovery(topic: str, replayed: int, error: RecoveryError | None) -> None:
            print(f"{topic}: {replayed} replayed, lost: {error.missed if error else 0}")
            done.set()

        client.on_recovery(on_recovery)  # after each replay; a loss also goes to on_error
        await client.connect()
        await client.subscribe("rooms.go", Said, on_said)  # exact topics are recovered
        # --8<-- [end:client]
        await subscribed.wait()
        await server.publish("rooms.go", Said(text="1"))
        subscribed.clear()
        await server.disconnect(peers[0].id, "a network failure")  # the client is away ...
        await server.publish("rooms.go", Said(text="2"))  # ... while these are published
        await server.publish("rooms.go", Said(text="3"))
        await done.wait()  # back: 2 and 3 replayed, in order, before anything newer
        await client.close()


asyncio.run(main())
