"""The two ends of an interop test, one interface whichever language runs them.

A scenario is written once against :class:`ServerSide` and
:class:`ClientSide` and runs in both directions: a Python client against a
Go server, and a Go client against a Python server. The Python peers have
the same scripted handlers as the Go peer (``gopeer/main.go``):

- a server's handler for ``MessageV1`` records it; for a sync request whose
  text is ``t`` it replies ``ReplyV1("re:" + t)`` with headers
  ``{"reply": "yes"}`` (``BadReplyV1`` if ``t`` starts with ``bad:``, no
  reply if it starts with ``silent:``; the Python server raises for
  ``raise:``); a plain ``MessageV1`` whose text starts with ``echo:`` is sent
  back as a plain ``ReplyV1("re:" + t)`` with the same headers;
- a client's handlers record every ``MessageV1``, ``ReplyV1`` and
  ``BadReplyV1`` they get, in arrival order.

Sync round trips whose text starts with ``barrier:`` (see
:meth:`ClientSide.barrier`) are not recorded by servers.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import itertools
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Generic, Literal, TypeVar

from generated.goomerang.example.messages_pb2 import BadReplyV1, MessageV1, ReplyV1
from goomerang_runtime import Client, Message, ProtoMessage, Sender, Server, Status

from ..helpers import WAIT
from .goproc import Event, GoProcess

__all__ = [
    "BARRIER",
    "ClientSide",
    "CommandFailed",
    "Delivery",
    "GoClient",
    "GoServer",
    "HookEvent",
    "Inbox",
    "Msg",
    "PythonClient",
    "PythonServer",
    "ServerSide",
    "SyncFailed",
    "digest",
]

T = TypeVar("T")
Lang = Literal["go", "python"]
SHORT = 256
"""Payload texts up to this length are compared as text; longer ones by length and digest."""
BARRIER = "barrier:"
KINDS: dict[str, type[ProtoMessage]] = {"MessageV1": MessageV1, "ReplyV1": ReplyV1, "BadReplyV1": BadReplyV1}
FULL = {name: f"goomerang.example.{name}" for name in KINDS}


def text_of(payload: ProtoMessage) -> str:
    """The string field number 1 of an example message (``message``; ``reason`` in Python's BadReplyV1)."""
    return str(getattr(payload, payload.DESCRIPTOR.fields_by_number[1].name))


def make(kind: type[ProtoMessage], text: str) -> ProtoMessage:
    """An example message of `kind` whose field number 1 is `text`."""
    return kind(**{kind.DESCRIPTOR.fields_by_number[1].name: text})


def digest(text: str) -> str:
    """The SHA-256 hex digest of a payload text (what the Go peer reports for long ones)."""
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class Msg:
    """What to send: an example message kind (short name), its text and headers."""

    kind: str
    text: str
    headers: dict[str, str] = field(default_factory=dict)

    def proto(self) -> ProtoMessage:
        return make(KINDS[self.kind], self.text)

    def message(self) -> Message[ProtoMessage]:
        return Message(self.proto(), dict(self.headers))

    def command(self) -> dict[str, object]:
        """The fields of a Go peer command carrying this message."""
        return {"kind": self.kind, "payload": self.text, "headers": self.headers}


@dataclass(frozen=True)
class Delivery:
    """A message as one side's handler (or sync caller) got it."""

    kind: str
    headers: dict[str, str]
    uuid: str
    is_sync: bool
    length: int
    sha256: str
    text: str | None
    """The payload text, when it is at most SHORT characters."""
    topic: str = ""
    """Metadata.topic (Python receivers only; Go has no such thing)."""

    @staticmethod
    def of_text(kind: str, text: str, headers: dict[str, str], uuid: str, is_sync: bool, topic: str) -> Delivery:
        return Delivery(
            kind, headers, uuid, is_sync, len(text), digest(text), text if len(text) <= SHORT else None, topic
        )

    @staticmethod
    def of_message(msg: Message[ProtoMessage]) -> Delivery:
        text = text_of(msg.payload)
        meta = msg.metadata
        return Delivery.of_text(msg.kind, text, dict(msg.headers), meta.uuid, meta.is_sync, meta.topic)

    @staticmethod
    def of_event(event: Event) -> Delivery:
        text = event.get("payload")
        return Delivery(
            str(event.get("kind", "")),
            dict(event.get("headers") or {}),
            str(event.get("uuid", "")),
            bool(event.get("is_sync", False)),
            int(event.get("payload_len", 0)),
            str(event.get("payload_sha256", "")),
            None if text is None else str(text),
        )

    def has_text(self, text: str) -> bool:
        """Whether the payload text is `text` (by digest for long texts)."""
        return self.length == len(text) and self.sha256 == digest(text)


@dataclass(frozen=True)
class HookEvent:
    """A server-side pub/sub hook: subscribed, unsubscribed, published or client_broadcast."""

    name: str
    topic: str = ""
    kind: str = ""


class Inbox(Generic[T]):
    """Items in arrival order, with bounded waits."""

    def __init__(self, what: str) -> None:
        self.what = what
        self.items: list[T] = []
        self._changed = asyncio.Event()

    def put(self, item: T) -> None:
        self.items.append(item)
        self._changed.set()

    async def wait(self, predicate: Callable[[list[T]], bool], what: str, timeout: float = WAIT) -> list[T]:
        """Wait until `predicate(items)` holds; returns the items."""
        try:
            async with asyncio.timeout(timeout):
                while not predicate(self.items):
                    self._changed.clear()
                    await self._changed.wait()
        except TimeoutError:
            raise AssertionError(f"{self.what}: timed out waiting for {what}; got {self.items}") from None
        return self.items

    async def wait_for(self, count: int, timeout: float = WAIT) -> list[T]:
        """Wait until at least `count` items arrived."""
        return await self.wait(lambda items: len(items) >= count, f"{count} item(s)", timeout)


class SyncFailed(Exception):
    """A sync call got no reply (its text says why, in the caller's words)."""


class CommandFailed(Exception):
    """A client or server operation failed at the caller."""


class Side(ABC):
    """What servers and clients share: language, statuses, errors."""

    lang: Lang

    def __init__(self) -> None:
        self.received: Inbox[Delivery] = Inbox(f"{self.lang} {type(self).__name__} deliveries")
        self.statuses: Inbox[int] = Inbox(f"{self.lang} {type(self).__name__} statuses")

    @property
    @abstractmethod
    def errors(self) -> list[str]:
        """The error hooks' reports, as text."""

    async def wait_status(self, status: Status, timeout: float = WAIT) -> None:
        await self.statuses.wait(lambda s: int(status) in s, f"status {status.name}", timeout)

    @abstractmethod
    async def stop(self) -> None:
        """Teardown: end everything at once (bounded)."""


class ServerSide(Side):
    """A server under test."""

    addr: str

    def __init__(self) -> None:
        super().__init__()
        self.hooks: Inbox[HookEvent] = Inbox(f"{self.lang} server hooks")

    async def wait_hook(
        self, name: str, topic: str | None = None, count: int = 1, errors_since: int | None = None
    ) -> None:
        """Wait until the hook `name` (for `topic`) ran `count` times.

        With `errors_since` (a past ``len(self.errors)``), an error the server
        reported since then ends the wait at once (and fails it).
        """
        errors = len(self.errors) if errors_since is None else errors_since
        fail_on_error = errors_since is not None

        def seen(items: list[HookEvent]) -> bool:
            return sum(1 for h in items if h.name == name and topic in (None, h.topic)) >= count

        what = f"{count} {name} {topic or ''}"
        try:
            await self.hooks.wait(lambda items: seen(items) or (fail_on_error and len(self.errors) > errors), what)
        except AssertionError as exc:
            raise AssertionError(f"{exc}; server errors: {self.errors}") from None
        if not seen(self.hooks.items):
            raise AssertionError(f"{self.lang} server reported errors instead of {what}: {self.errors[errors:]}")

    @abstractmethod
    async def broadcast(self, msg: Msg) -> None: ...

    @abstractmethod
    async def publish(self, topic: str, msg: Msg) -> None: ...

    @abstractmethod
    async def shutdown(self) -> None:
        """Graceful shutdown; raises on error; bounded by the caller."""


class ClientSide(Side):
    """A client under test."""

    _barriers = itertools.count(1)

    @abstractmethod
    async def connect(self) -> None: ...

    @abstractmethod
    async def close(self) -> None:
        """Close; raises :class:`CommandFailed` if the close reported an error."""

    @abstractmethod
    async def send(self, msg: Msg) -> None: ...

    @abstractmethod
    async def send_sync(self, msg: Msg, timeout: float = WAIT) -> Delivery:
        """The reply; raises :class:`SyncFailed` if none came."""

    @abstractmethod
    async def broadcast(self, msg: Msg) -> None: ...

    @abstractmethod
    async def publish(self, topic: str, msg: Msg) -> None: ...

    @abstractmethod
    async def subscribe(self, topic: str) -> None: ...

    @abstractmethod
    async def unsubscribe(self, topic: str) -> None: ...

    async def barrier(self) -> None:
        """A sync round trip: the server registered this connection and ran what it sent before."""
        text = f"{BARRIER}{next(self._barriers)}"
        reply = await self.send_sync(Msg("MessageV1", text))
        assert reply.text == "re:" + text, reply


# Python peers.


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


# Go peers.


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
