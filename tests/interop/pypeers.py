"""The Python ends: goomerang_runtime's Server and Client with the scripted handlers (see peers.py)."""

from __future__ import annotations

import asyncio
import contextlib

from generated.goomerang.example.messages_pb2 import BadReplyV1, MessageV1, ReplyV1
from goomerang_runtime import Client, Message, ProtoMessage, Sender, Server, Status

from ..helpers import WAIT
from .model import BARRIER, KINDS, CommandFailed, Delivery, HookEvent, Inbox, Msg, SyncFailed, make, text_of
from .peers import ClientSide, Lang, ServerSide

__all__ = ["PythonClient", "PythonServer"]


def _record_server(received: Inbox[Delivery], msg: Message[ProtoMessage]) -> None:
    if not text_of(msg.payload).startswith(BARRIER):
        received.put(Delivery.of_message(msg))


class PythonServer(ServerSide):
    """A goomerang_runtime Server with the scripted handlers."""

    lang: Lang = "python"

    def __init__(self, **options: object) -> None:
        super().__init__()
        self.exceptions: list[BaseException] = []
        server = self.server = Server(**options)  # type: ignore[arg-type]
        server.on_error(self._on_error)
        server.on_status_change(lambda status: self.statuses.put(int(status)))
        server.on_subscribe(lambda topic: self.hooks.put(HookEvent("subscribed", topic)))
        server.on_unsubscribe(lambda topic: self.hooks.put(HookEvent("unsubscribed", topic)))
        server.on_publish(lambda topic, kind: self.hooks.put(HookEvent("published", topic, kind)))
        server.on_client_broadcast(lambda kind: self.hooks.put(HookEvent("client_broadcast", kind=kind)))
        self.disconnects: Inbox[str] = Inbox("python server on_disconnect")
        server.on_disconnect(lambda peer: self.disconnects.put(peer.id))
        server.handle(MessageV1, self._on_message)
        server.register_message(ReplyV1, BadReplyV1)

    def _on_error(self, error: BaseException) -> None:
        self.exceptions.append(error)
        self.hooks.put(HookEvent("error", kind=type(error).__name__))

    async def _on_message(self, sender: Sender, msg: Message[MessageV1]) -> None:
        _record_server(self.received, msg)
        text = msg.payload.message
        if msg.metadata.is_sync:
            if text.startswith("silent:"):
                return
            if text.startswith("raise:"):
                raise RuntimeError(f"raised on purpose for {text!r}")
            cls = BadReplyV1 if text.startswith("bad:") else ReplyV1
            await sender.send(Message(make(cls, "re:" + text), {"reply": "yes"}))
        elif text.startswith("echo:"):
            await sender.send(Message(ReplyV1(message="re:" + text), dict(msg.headers)))

    @property
    def errors(self) -> list[str]:
        return [f"{type(e).__name__}: {e}" for e in self.exceptions]

    async def start(self) -> PythonServer:
        await self.server.start()
        self.addr = self.server.addr
        return self

    async def broadcast(self, msg: Msg) -> None:
        results = await self.server.broadcast(msg.message(), timeout=WAIT)
        failed = [r for r in results if r.error is not None]
        if failed:
            raise CommandFailed(f"broadcast failed for {failed}")

    async def publish(self, topic: str, msg: Msg) -> None:
        try:
            await self.server.publish(topic, msg.message())
        except Exception as exc:
            raise CommandFailed(f"{type(exc).__name__}: {exc}") from exc

    async def shutdown(self) -> None:
        await self.server.shutdown()

    async def stop(self) -> None:
        if self.server.status is Status.RUNNING:
            with contextlib.suppress(Exception):  # teardown: a failed shutdown was the test's business
                await asyncio.wait_for(self.server.shutdown(timeout=2), WAIT)


class PythonClient(ClientSide):
    """A goomerang_runtime Client with recording handlers."""

    lang: Lang = "python"

    def __init__(self, **options: object) -> None:
        super().__init__()
        self.exceptions: list[BaseException] = []
        client = self.client = Client(**options)  # type: ignore[arg-type]
        client.on_error(self.exceptions.append)
        client.on_status_change(lambda status: self.statuses.put(int(status)))
        for kind in KINDS.values():
            client.handle(kind, self._on_message)

    async def _on_message(self, sender: Sender, msg: Message[ProtoMessage]) -> None:
        self.received.put(Delivery.of_message(msg))  # no await: runs inline, in arrival order

    @property
    def errors(self) -> list[str]:
        return [f"{type(e).__name__}: {e}" for e in self.exceptions]

    async def connect(self) -> None:
        await self.client.connect(timeout=WAIT)

    async def close(self) -> None:
        await asyncio.wait_for(self.client.close(timeout=WAIT), WAIT)

    async def send(self, msg: Msg) -> None:
        await self.client.send(msg.message())

    async def send_sync(self, msg: Msg, timeout: float = WAIT) -> Delivery:
        try:
            reply = await self.client.send_sync(msg.message(), timeout=timeout, expect=(ReplyV1, BadReplyV1))
        except Exception as exc:
            raise SyncFailed(f"{type(exc).__name__}: {exc}") from exc
        return Delivery.of_message(reply)

    async def broadcast(self, msg: Msg) -> None:
        await self.client.broadcast(msg.message())

    async def publish(self, topic: str, msg: Msg) -> None:
        try:
            await self.client.publish(topic, msg.message())
        except Exception as exc:
            raise CommandFailed(f"{type(exc).__name__}: {exc}") from exc

    async def subscribe(self, topic: str) -> None:
        try:
            await self.client.subscribe(topic)
        except Exception as exc:
            raise CommandFailed(f"{type(exc).__name__}: {exc}") from exc

    async def unsubscribe(self, topic: str) -> None:
        await self.client.unsubscribe(topic)

    async def stop(self) -> None:
        if self.client.status is Status.RUNNING:
            with contextlib.suppress(Exception):  # teardown: a failed close was the test's business
                await asyncio.wait_for(self.client.close(timeout=2), WAIT)
