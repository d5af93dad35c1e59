"""A server and two clients in one process, printing what happens.

Run it with ``scripts/demo`` from a fresh clone.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from generated.goomerang.example.messages_pb2 import MessageV1, ReplyV1
from goomerang_runtime import Client, Message, Sender, Server, Status


def log(who: str, what: str) -> None:
    print(f"[{who:>8}] {what}", flush=True)


async def main() -> None:
    server = Server(listen="127.0.0.1:0")
    pushed = asyncio.Event()

    async def on_message(sender: Sender, msg: Message[MessageV1]) -> None:
        log("server", f"got {msg.payload.message!r} headers={msg.headers} sync={msg.metadata.is_sync}")
        if msg.metadata.is_sync:
            reply = Message(ReplyV1(message=f"hello {msg.get_header('user')}")).set_header("status", "200")
            await sender.send(reply)
        else:
            await sender.send(ReplyV1(message="a push from the server"))

    server.handle(MessageV1, on_message)
    server.on_status_change(lambda s: log("server", f"status {s.name}"))
    server.on_error(lambda e: log("server", f"error: {e}"))

    async with server:
        log("server", f"listening on {server.url}")
        ana = Client(server=server.addr)
        bob = Client(server=server.addr)

        async def on_push(sender: Sender, msg: Message[ReplyV1]) -> None:
            log("ana", f"push: {msg.payload.message!r}")
            pushed.set()

        ana.handle(ReplyV1, on_push)
        bob.register_message(ReplyV1)
        ana.on_status_change(lambda s: log("ana", f"status {s.name}"))
        bob.on_status_change(lambda s: log("bob", f"status {s.name}"))

        async with ana, bob:
            size = await ana.send(Message(MessageV1(message="fire and forget")).set_header("user", "ana"))
            log("ana", f"sent a plain message ({size} payload bytes)")
            await asyncio.wait_for(pushed.wait(), 5)

            request = Message(MessageV1(message="who am I?")).set_header("user", "bob")
            reply = await bob.send_sync(request, timeout=5, expect=ReplyV1)
            log("bob", f"sync reply {reply.payload.message!r} headers={reply.headers}")
            log("demo", f"{len(server.peers)} clients connected; closing gracefully")
        log("demo", f"clients {ana.status.name}/{bob.status.name}; shutting the server down")
    assert server.status is Status.CLOSED
    log("demo", "done")


if __name__ == "__main__":
    asyncio.run(main())
