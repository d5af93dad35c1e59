"""Queue groups: each publication goes to one member of the group, and to every plain subscriber."""

import asyncio
from collections import Counter

from generated.chat.v1 import chat_goomerang as chat
from generated.chat.v1.chat_pb2 import Said
from goomerang_runtime import Client, Handler, MemoryBroker, MemoryBus, Message, Sender, Server


async def main() -> None:
    bus = MemoryBus()  # two replicas in one process; NatsBroker or RedisBroker across machines
    a, b = Server(broker=MemoryBroker(bus)), Server(broker=MemoryBroker(bus))
    subscribed = asyncio.Semaphore(0)
    for server in (a, b):
        server.register_message(Said)
        server.on_subscribe(lambda topic: subscribed.release())
    all_in = asyncio.Event()
    async with a, b:
        workers = [Client(server=server.addr) for server in (a, a, b, b)]
        audit = Client(server=b.addr)
        for client in (*workers, audit):
            await client.connect()
        # --8<-- [start:groups]
        done: Counter[str] = Counter()
        seen: list[str] = []

        def worker(name: str) -> Handler[Said]:
            async def on_said(sender: Sender, msg: Message[Said]) -> None:
                done[name] += 1  # msg.metadata.group == "workers"
                if sum(done.values()) == 100 and len(seen) == 100:
                    all_in.set()

            return on_said

        for n, client in enumerate(workers):  # two members on each replica
            await chat.RoomsTopic(client).subscribe("rooms.*", worker(f"w{n}"), group="workers")

        async def on_audit(sender: Sender, msg: Message[Said]) -> None:
            seen.append(msg.payload.text)  # a plain subscriber: every publication
            if sum(done.values()) == 100 and len(seen) == 100:
                all_in.set()

        await chat.RoomsTopic(audit).subscribe("rooms.*", on_audit)
        # --8<-- [end:groups]
        for _ in range(5):
            await subscribed.acquire()  # (the servers took the five subscriptions)
        # --8<-- [start:publish]
        rooms = chat.RoomsTopic(a)
        for n in range(100):
            await rooms.publish("rooms.go", Said(room="go", text=str(n)))
        await all_in.wait()
        print(sorted(done.items()), len(seen))  # [('w0', 25), ('w1', 25), ('w2', 25), ('w3', 25)] 100
        # --8<-- [end:publish]
        # --8<-- [start:leave]
        await chat.RoomsTopic(workers[0]).unsubscribe("rooms.*", group="workers")
        # Returns once the server confirmed: what it had routed to w0 reached w0; later ones go to the others.
        # --8<-- [end:leave]
        assert sorted(done.values()) == [25, 25, 25, 25]
        for client in (*workers, audit):
            await client.close()


asyncio.run(main())
