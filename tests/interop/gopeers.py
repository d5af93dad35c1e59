"""The Go ends: the Go library's server and client, each in a ``gopeer`` process (see gopeer/main.go)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from ..helpers import WAIT
from .goproc import Event, GoProcess
from .model import BARRIER, CommandFailed, Delivery, HookEvent, Msg, SyncFailed
from .peers import ClientSide, Lang, ServerSide, Side

__all__ = ["GoClient", "GoServer"]


class _GoSide:
    """Glue from a Go peer's events to a Side's inboxes."""

    proc: GoProcess

    def _wire(self, side: Side, on_other: Callable[[Event], None] | None = None) -> None:
        def route(event: Event) -> None:
            name = event["event"]
            if name == "received":
                text = event.get("payload")
                if not (isinstance(text, str) and text.startswith(BARRIER)) or isinstance(side, ClientSide):
                    side.received.put(Delivery.of_event(event))
            elif name == "status":
                side.statuses.put(int(event["value"]))
            elif on_other is not None:
                on_other(event)

        self.proc.on_event(route)

    async def _call(self, op: str, timeout: float = WAIT, **fields: object) -> Event:
        event = await self.proc.call(op, timeout, **fields)
        if event["error"]:
            raise CommandFailed(f"Go {op}: {event['error']}")
        return event


class GoServer(_GoSide, ServerSide):
    """The Go library's server, in a ``gopeer -mode server`` process."""

    lang: Lang = "go"

    def __init__(self, proc: GoProcess) -> None:
        ServerSide.__init__(self)
        self.proc = proc
        hook_names = ("subscribed", "unsubscribed", "published", "client_broadcast")

        def hook(event: Event) -> None:
            if event["event"] in (*hook_names, "error"):
                self.hooks.put(HookEvent(event["event"], str(event.get("topic", "")), str(event.get("kind", ""))))

        self._wire(self, hook)

    async def start(self) -> GoServer:
        await self.proc.start()
        self.addr = str(self.proc.find("ready")[0]["addr"])
        return self

    @property
    def errors(self) -> list[str]:
        return self.proc.errors

    async def broadcast(self, msg: Msg) -> None:
        await self._call("broadcast", **msg.command())

    async def publish(self, topic: str, msg: Msg) -> None:
        await self._call("publish", topic=topic, **msg.command())

    async def shutdown(self) -> None:
        await self._call("shutdown", timeout_ms=int(WAIT * 1000), timeout=WAIT + 1)

    async def stop(self) -> None:
        await self.proc.stop()


class GoClient(_GoSide, ClientSide):
    """The Go library's client, in a ``gopeer -mode client`` process (handlers run in order)."""

    lang: Lang = "go"

    def __init__(self, proc: GoProcess) -> None:
        ClientSide.__init__(self)
        self.proc = proc
        self._wire(self)

    async def start(self) -> GoClient:
        await self.proc.start()
        return self

    @property
    def errors(self) -> list[str]:
        return self.proc.errors

    async def connect(self) -> None:
        await self._call("connect")

    async def close(self) -> None:
        await self._call("close", timeout_ms=int(WAIT * 1000), timeout=WAIT + 1)

    async def send(self, msg: Msg) -> None:
        await self._call("send", **msg.command())

    async def send_sync(self, msg: Msg, timeout: float = WAIT) -> Delivery:
        event = await self.proc.call("send_sync", timeout + 2, timeout_ms=int(timeout * 1000), **msg.command())
        if event["error"]:
            raise SyncFailed(str(event["error"]))
        return Delivery.of_event(event["reply"])

    def send_sync_nowait(self, msg: Msg, timeout: float = WAIT) -> asyncio.Future[Event]:
        """Start a sync call in the Go process without waiting (calls run concurrently there)."""
        return self.proc.send_command("send_sync", timeout_ms=int(timeout * 1000), **msg.command())

    async def broadcast(self, msg: Msg) -> None:
        await self._call("broadcast", **msg.command())

    async def publish(self, topic: str, msg: Msg) -> None:
        await self._call("publish", topic=topic, **msg.command())

    async def subscribe(self, topic: str) -> None:
        await self._call("subscribe", topic=topic)

    async def unsubscribe(self, topic: str) -> None:
        await self._call("unsubscribe", topic=topic)

    async def block(self) -> None:
        """From now on, the next handler blocks (and with it the client's reading) until :meth:`release`."""
        await self._call("block")

    async def release(self) -> None:
        await self._call("release")

    async def stop(self) -> None:
        await self.proc.stop()
