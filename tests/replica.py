"""A goomerang server replica for the multi-replica tests, also runnable as its own process.

``python tests/replica.py nats nats://127.0.0.1:4222`` starts a server with
that broker and prints, one per line: ``BROKER <state>`` on each broker
state change, ``ADDR <host:port>`` once serving, ``ERROR <class> <text>``
for each reported error. It stops when its standard input closes.

Its MessageV1 handler answers every sync request (a barrier for the tests)
and runs commands: ``broadcast:<text>`` and ``publish:<topic>:<text>`` make
the server broadcast or publish a ReplyV1 carrying the header ``from``.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from generated.goomerang.example.messages_pb2 import MessageV1, PingPong, ReplyV1
from goomerang_runtime import Broker, Message, NatsBroker, RedisBroker, Sender, Server

__all__ = ["add_handlers", "make_broker"]


def make_broker(kind: str, url: str, **options: float) -> Broker:
    """A NATS or Redis broker reconnecting fast, as the tests need."""
    fast = {"reconnect_delay": 0.05, "reconnect_max_delay": 0.2, **options}
    if kind == "nats":
        return NatsBroker(url, **fast)  # type: ignore[arg-type]
    if kind == "redis":
        return RedisBroker(url, **fast)  # type: ignore[arg-type]
    raise ValueError(f"unknown broker kind {kind!r}")


def add_handlers(server: Server, name: str) -> None:
    """Echo/command handler for MessageV1; registers the kinds that pass through pub/sub."""

    async def on_message(sender: Sender, msg: Message[MessageV1]) -> None:
        text = msg.payload.message
        if text.startswith("broadcast:"):
            await server.broadcast(Message(ReplyV1(message=text.removeprefix("broadcast:")), {"from": name}))
        elif text.startswith("publish:"):
            _, topic, body = text.split(":", 2)
            await server.publish(topic, Message(ReplyV1(message=body), {"from": name}))
        await sender.send(ReplyV1(message=f"{name}: {text}"))

    server.handle(MessageV1, on_message)
    server.register_message(ReplyV1, PingPong)


async def _serve(kind: str, url: str) -> None:
    broker = make_broker(kind, url)
    broker.on_state_change(lambda state: print("BROKER", state.name, flush=True))
    server = Server(broker=broker, close_wait=1.0)
    server.on_error(lambda err: print("ERROR", type(err).__name__, err, flush=True))
    add_handlers(server, "B")
    async with server:
        print("ADDR", server.addr, flush=True)
        # Until the test closes our stdin.
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)


if __name__ == "__main__":
    asyncio.run(_serve(sys.argv[1], sys.argv[2]))
