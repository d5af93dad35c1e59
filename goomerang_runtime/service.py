"""Typed building blocks for generated code: rpcs, contexts, pushers, topics.

The protoc plugin generates thin classes that bind names and message types to
these generics, so the typing lives here and generated modules stay small.
They are usable by hand too.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Generic, TypeVar, cast

from .client import Client
from .errors import TopicError, UsageError
from .handler import Handler, HandlerObject, PeerInfo, Sender
from .message import Message, Metadata, ProtoMessage, kind_of
from .server import BroadcastResult, Server
from .topics import is_pattern, pattern_covers, pattern_matches, validate_pattern

__all__ = ["ClientContext", "Pusher", "SendRpc", "ServerContext", "SyncRpc", "Topic"]

Req = TypeVar("Req", bound=ProtoMessage)
Rep = TypeVar("Rep", bound=ProtoMessage)
P = TypeVar("P", bound=ProtoMessage)


def _message(msg: P | Message[P], headers: Mapping[str, str] | None) -> Message[P]:
    """`msg` as a message with `headers` added (a new one: the caller's is left alone)."""
    if isinstance(msg, Message):
        return Message(msg.payload, {**msg.headers, **headers}) if headers else msg
    return Message(msg, headers)


@dataclass(slots=True)
class ServerContext:
    """What a server-side service method gets besides its request."""

    message: Message[ProtoMessage]
    """The whole incoming message: headers and metadata."""
    sender: Sender
    """Sends to the client the request came from (the reply is sent for you)."""
    server: Server
    """The server, e.g. to broadcast or publish."""
    reply_headers: dict[str, str] = field(default_factory=dict)
    """Headers to put on the reply of a sync method."""

    @property
    def headers(self) -> dict[str, str]:
        """The request's headers."""
        return self.message.headers

    @property
    def metadata(self) -> Metadata:
        """The request's metadata (kind, uuid, creation...)."""
        return self.message.metadata

    @property
    def peer(self) -> PeerInfo:
        """The client the request came from."""
        return self.sender.peer


@dataclass(slots=True)
class ClientContext:
    """What a client-side service method gets besides the pushed message."""

    message: Message[ProtoMessage]
    """The whole incoming message: headers and metadata."""
    sender: Sender
    """Sends to the server."""
    client: Client
    """The client that received the message."""

    @property
    def headers(self) -> dict[str, str]:
        """The message's headers."""
        return self.message.headers

    @property
    def metadata(self) -> Metadata:
        """The message's metadata."""
        return self.message.metadata


class SyncRpc(Generic[Req, Rep]):
    """A request/reply rpc: `Req` in, one of `replies` (typed `Rep`) back."""

    __slots__ = ("name", "replies", "request")

    def __init__(self, name: str, request: type[Req], replies: tuple[type[ProtoMessage], ...]) -> None:
        self.name = name
        self.request = request
        self.replies = replies

    async def call(
        self, client: Client, request: Req, *, headers: Mapping[str, str] | None = None, timeout: float | None = None
    ) -> Rep:
        """Send `request` and return the reply payload (one of `replies`)."""
        sent = Message(request, headers) if headers else request
        reply = await client.send_sync(sent, timeout=timeout, expect=self.replies)
        return cast("Rep", reply.payload)

    def serve(self, server: Server, method: Callable[[Req, ServerContext], Awaitable[Rep]]) -> Handler[Req]:
        """A handler that runs `method` and sends what it returns as the reply."""
        replies = self.replies
        name = self.name

        async def handle(sender: Sender, msg: Message[Req]) -> None:
            ctx = ServerContext(msg, sender, server)
            reply = await method(msg.payload, ctx)
            if not isinstance(reply, replies):
                expected = ", ".join(kind_of(cls) for cls in replies)
                raise TypeError(f"{name} returned {type(reply).__name__}, expected one of {expected}")
            headers = ctx.reply_headers
            await sender.send(Message(reply, headers) if headers else reply)

        return handle


class SendRpc(Generic[Req]):
    """A fire-and-forget rpc: `Req` in, nothing back."""

    __slots__ = ("name", "request")

    def __init__(self, name: str, request: type[Req]) -> None:
        self.name = name
        self.request = request

    async def send(self, client: Client, request: Req, *, headers: Mapping[str, str] | None = None) -> int:
        """Send `request`; returns the payload size."""
        return await client.send(Message(request, headers))

    def serve(self, server: Server, method: Callable[[Req, ServerContext], Awaitable[None]]) -> Handler[Req]:
        """A server handler that runs `method`."""

        async def handle(sender: Sender, msg: Message[Req]) -> None:
            await method(msg.payload, ServerContext(msg, sender, server))

        return handle

    def serve_client(self, client: Client, method: Callable[[Req, ClientContext], Awaitable[None]]) -> Handler[Req]:
        """A client handler that runs `method`."""

        async def handle(sender: Sender, msg: Message[Req]) -> None:
            await method(msg.payload, ClientContext(msg, sender, client))

        return handle


class Pusher(Generic[P]):
    """Server-side sends of the messages a client-handled service receives."""

    __slots__ = ("_server",)

    def __init__(self, server: Server) -> None:
        self._server = server

    async def send(
        self, to: Sender | PeerInfo | str, msg: P | Message[P], *, headers: Mapping[str, str] | None = None
    ) -> int:
        """Send `msg` to one client: a handler's sender, a peer or a peer id."""
        message = _message(msg, headers)
        if isinstance(to, str):
            return await self._server.send_to(to, message)
        if isinstance(to, PeerInfo):
            return await self._server.send_to(to.id, message)
        return await to.send(message)

    async def broadcast(
        self, msg: P | Message[P], *, headers: Mapping[str, str] | None = None, timeout: float | None = None
    ) -> list[BroadcastResult]:
        """Send `msg` to every connected client."""
        return await self._server.broadcast(_message(msg, headers), timeout)

    async def publish(self, topic: str, msg: P | Message[P], *, headers: Mapping[str, str] | None = None) -> None:
        """Send `msg` to the subscribers of `topic`."""
        await self._server.publish(topic, _message(msg, headers))


class Topic(Generic[P]):
    """A typed topic family (a topic or a wildcard pattern) bound to a peer.

    Only `P` can be published on it and its subscribers get `Message[P]`.
    Publish from a client or a server; subscribe from a client.
    """

    __slots__ = ("_peer", "kind", "pattern")

    def __init__(self, peer: Client | Server, pattern: str, kind: type[P]) -> None:
        self._peer = peer
        self.pattern = validate_pattern(pattern)
        self.kind = kind

    def _check_topic(self, topic: str) -> str:
        if is_pattern(topic) or not pattern_matches(self.pattern, topic):
            raise TopicError(topic, f"not a topic of the family {self.pattern!r}")
        return topic

    async def publish(self, topic: str, msg: P | Message[P], *, headers: Mapping[str, str] | None = None) -> None:
        """Publish `msg` on `topic`, which must belong to the family."""
        await self._peer.publish(self._check_topic(topic), _message(msg, headers))

    async def subscribe(self, topic: str, handler: Handler[P] | HandlerObject[P]) -> None:
        """Call `handler` for what is published on `topic` (or a narrower pattern)."""
        client = self._client("subscribe")
        if not pattern_covers(self.pattern, validate_pattern(topic)):
            raise TopicError(topic, f"not within the family {self.pattern!r}")
        await client.subscribe(topic, self.kind, handler)

    async def unsubscribe(self, topic: str) -> None:
        """Stop the subscription to `topic`."""
        await self._client("unsubscribe").unsubscribe(topic)

    def _client(self, operation: str) -> Client:
        if not isinstance(self._peer, Client):
            raise UsageError(f"cannot {operation} on a server: topics are subscribed by clients")
        return self._peer
