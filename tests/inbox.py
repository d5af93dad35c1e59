"""A client-side handler that records what it receives, for the fan-out tests."""

from __future__ import annotations

import asyncio
from typing import Generic, TypeVar

from generated.goomerang.example.messages_pb2 import MessageV1, PingPong, ReplyV1
from goomerang_runtime import Client, Message, ProtoMessage, Sender, Server

from .helpers import WAIT, Collector
from .replica import add_handlers

P = TypeVar("P", bound=ProtoMessage)


class Inbox(Generic[P]):
    """Handler recording every message of one kind, in arrival order."""

    def __init__(self) -> None:
        self.messages: list[Message[P]] = []
        self._changed = asyncio.Event()

    async def __call__(self, sender: Sender, msg: Message[P]) -> None:
        self.messages.append(msg)
        self._changed.set()

    async def wait_for(self, count: int, timeout: float = WAIT) -> list[Message[P]]:
        """Wait until `count` messages arrived; returns all of them."""
        async with asyncio.timeout(timeout):
            while len(self.messages) < count:
                self._changed.clear()
                await self._changed.wait()
        return self.messages

    async def wait_until(self, text: str, timeout: float = WAIT) -> list[str]:
        """Wait until a message whose text is `text` arrived; returns every text so far."""
        async with asyncio.timeout(timeout):
            while text not in self.texts():
                self._changed.clear()
                await self._changed.wait()
        return self.texts()

    def texts(self) -> list[str]:
        """The `message` field of MessageV1/ReplyV1 payloads, ``#n`` for PingPong."""
        out: list[str] = []
        for msg in self.messages:
            payload = msg.payload
            if isinstance(payload, PingPong):
                out.append(f"#{payload.sequence}")
            else:
                out.append(getattr(payload, "message", ""))
        return out


def listening_client(addr: str, **options: object) -> tuple[Client, Inbox[ReplyV1]]:
    """A client whose ReplyV1 deliveries land in an inbox (it also knows MessageV1 replies)."""
    client = Client(server=addr, heartbeat_interval=None, **options)  # type: ignore[arg-type]
    inbox: Inbox[ReplyV1] = Inbox()
    client.handle(ReplyV1, inbox)
    client.register_message(MessageV1)
    return client, inbox


async def barrier(client: Client) -> None:
    """A sync round trip: the server has run every command this client sent before.

    Needs the server's MessageV1 echo handler (see `tests.replica.add_handlers`).
    """
    reply = await client.send_sync(MessageV1(message="barrier"), timeout=WAIT)
    assert reply.kind == "goomerang.example.ReplyV1"


def handlers_server(**options: object) -> tuple[Server, Collector]:
    """A server with the test handlers (`add_handlers`, name "S"), its errors in a collector."""
    server = Server(**options)  # type: ignore[arg-type]
    errors = Collector()
    server.on_error(errors)
    add_handlers(server, "S")
    return server, errors
