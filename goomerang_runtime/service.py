"""Typed building blocks for generated code: rpcs, contexts, pushers, topics.

The protoc plugin generates thin classes that bind names and message types to
these generics, so the typing lives here and generated modules stay small.
They are usable by hand too.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Generic, cast, overload

from typing_extensions import TypeVar

from .client import Client
from .errors import TopicError, UsageError
from .handler import Handler, HandlerObject, PeerInfo, PeerRef, Responder, Sender
from .message import Message, Metadata, ProtoMessage, kind_of
from .server import BroadcastResult, Server
from .subscription import DEFAULT_MAX_PENDING, DEFAULT_MAX_PENDING_BYTES, Subscription
from .topics import is_pattern, pattern_covers, pattern_matches, validate_pattern

__all__ = [
    "ClientContext",
    "ClientStub",
    "ClientSyncContext",
    "Pusher",
    "SendRpc",
    "ServerContext",
    "SyncContext",
    "SyncRpc",
    "Topic",
    "TopicPeer",
]

Req = TypeVar("Req", bound=ProtoMessage)
Req_co = TypeVar("Req_co", bound=ProtoMessage, covariant=True)
Rep = TypeVar("Rep", bound=ProtoMessage)
P = TypeVar("P", bound=ProtoMessage)
TopicPeer = TypeVar("TopicPeer", bound=Client | Server, default=Client | Server)
"""The peer a :class:`Topic` is bound to; subscribing needs a :class:`Client`."""


def _message(msg: P | Message[P], headers: Mapping[str, str] | None) -> Message[P]:
    """`msg` as a message with `headers` added (a new one: the caller's is left alone)."""
    if isinstance(msg, Message):
        return Message(msg.payload, {**msg.headers, **headers}) if headers else msg
    return Message(msg, headers)


class _ClientSender:
    """A plain sender to one client: every send is a plain frame, never a sync reply."""

    __slots__ = ("_peer", "_server")

    def __init__(self, server: Server, peer: PeerInfo) -> None:
        self._server = server
        self._peer = peer

    @property
    def peer(self) -> PeerInfo:
        """The client this sender writes to."""
        return self._peer

    async def send(self, msg: Message[ProtoMessage] | ProtoMessage) -> int:
        """Send `msg` to the client as a plain frame; returns the payload size."""
        return await self._server.send_to(self._peer.id, msg)


class ServerContext(Generic[Req_co]):
    """What a server-side service method gets besides its request.

    Generic in the request type, so ``ctx.message.payload`` is typed; covariant,
    so ``ServerContext[ProtoMessage]`` accepts the context of any method.
    """

    __slots__ = ("_message", "_plain", "_sender", "_server")

    def __init__(self, message: Message[Req_co], sender: Sender, server: Server) -> None:
        self._message = message
        self._sender = sender
        self._server = server
        self._plain: Sender | None = None

    @property
    def message(self) -> Message[Req_co]:
        """The whole incoming message: payload, headers and metadata."""
        return self._message

    @property
    def sender(self) -> Sender:
        """Sends plain messages to the client the request came from.

        Never the reply: what a sync method returns is its reply, and every
        send through this sender is an ordinary message (a push).
        """
        plain = self._plain
        if plain is None:
            sender = self._sender
            # The handler's own sender answers a sync request with its first send.
            plain = self._plain = _ClientSender(self._server, sender.peer) if self._message.metadata.is_sync else sender
        return plain

    @property
    def server(self) -> Server:
        """The server, e.g. to broadcast or publish."""
        return self._server

    @property
    def headers(self) -> dict[str, str]:
        """The request's headers."""
        return self._message.headers

    @property
    def metadata(self) -> Metadata:
        """The request's metadata (kind, uuid, creation...)."""
        return self._message.metadata

    @property
    def peer(self) -> PeerInfo:
        """The client the request came from."""
        return self._sender.peer


class SyncContext(ServerContext[Req_co]):
    """The context of a sync method: a server context plus the reply's headers."""

    __slots__ = ("reply_headers",)

    def __init__(self, message: Message[Req_co], sender: Sender, server: Server) -> None:
        super().__init__(message, sender, server)
        self.reply_headers: dict[str, str] = {}
        """Headers to put on the reply (the method's return value)."""


class ClientContext(Generic[Req_co]):
    """What a client-side service method gets besides the pushed message (typed like ServerContext)."""

    __slots__ = ("_client", "_message", "_sender")

    def __init__(self, message: Message[Req_co], sender: Sender, client: Client) -> None:
        self._message = message
        self._sender = sender
        self._client = client

    @property
    def message(self) -> Message[Req_co]:
        """The whole incoming message: payload, headers and metadata."""
        return self._message

    @property
    def sender(self) -> Sender:
        """Sends to the server."""
        return self._sender

    @property
    def client(self) -> Client:
        """The client that received the message."""
        return self._client

    @property
    def headers(self) -> dict[str, str]:
        """The message's headers."""
        return self._message.headers

    @property
    def metadata(self) -> Metadata:
        """The message's metadata."""
        return self._message.metadata


class ClientSyncContext(ClientContext[Req_co]):
    """The context of a client-side sync method (a server's request): a client context plus the reply's headers."""

    __slots__ = ("reply_headers",)

    def __init__(self, message: Message[Req_co], sender: Sender, client: Client) -> None:
        super().__init__(message, sender, client)
        self.reply_headers: dict[str, str] = {}
        """Headers to put on the reply (the method's return value)."""


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

    async def call_message(
        self, client: Client, request: Req, *, headers: Mapping[str, str] | None = None, timeout: float | None = None
    ) -> Message[Rep]:
        """Send `request` and return the whole reply: payload (one of `replies`), headers and metadata."""
        sent = Message(request, headers) if headers else request
        reply = await client.send_sync(sent, timeout=timeout, expect=self.replies)
        return cast("Message[Rep]", reply)

    def serve(self, server: Server, method: Callable[[Req, SyncContext[Req]], Awaitable[Rep]]) -> Handler[Req]:
        """A handler that runs `method` and sends what it returns as the reply."""
        replies = self.replies
        name = self.name

        async def handle(sender: Sender, msg: Message[Req]) -> None:
            ctx = SyncContext(msg, sender, server)
            reply = await method(msg.payload, ctx)
            if not isinstance(reply, replies):
                expected = ", ".join(kind_of(cls) for cls in replies)
                raise TypeError(f"{name} returned {type(reply).__name__}, expected one of {expected}")
            headers = ctx.reply_headers
            await sender.send(Message(reply, headers) if headers else reply)

        return handle

    async def ask(
        self,
        server: Server,
        to: PeerRef,
        request: Req,
        *,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
    ) -> Rep:
        """Send `request` to one client (a client-handled rpc) and return its reply payload (one of `replies`)."""
        sent = Message(request, headers) if headers else request
        reply = await server.send_sync(to, sent, timeout=timeout, expect=self.replies)
        return cast("Rep", reply.payload)

    async def ask_message(
        self,
        server: Server,
        to: PeerRef,
        request: Req,
        *,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
    ) -> Message[Rep]:
        """Send `request` to one client and return its whole reply: payload, headers and metadata."""
        sent = Message(request, headers) if headers else request
        reply = await server.send_sync(to, sent, timeout=timeout, expect=self.replies)
        return cast("Message[Rep]", reply)

    def serve_client(
        self, client: Client, method: Callable[[Req, ClientSyncContext[Req]], Awaitable[Rep]]
    ) -> Responder[Req]:
        """A client handler that runs `method` and answers the server's request with what it returns."""
        replies = self.replies
        name = self.name

        async def handle(sender: Sender, msg: Message[Req]) -> Message[ProtoMessage] | ProtoMessage:
            ctx = ClientSyncContext(msg, sender, client)
            reply = await method(msg.payload, ctx)
            if not isinstance(reply, replies):
                expected = ", ".join(kind_of(cls) for cls in replies)
                raise TypeError(f"{name} returned {type(reply).__name__}, expected one of {expected}")
            headers = ctx.reply_headers
            return Message(reply, headers) if headers else reply

        return handle


class ClientStub:
    """What a generated server-side stub of a client-handled service builds on: one client connection.

    Bind it to a connection with a server handler's context,
    ``DeviceStub(ctx)``, or with the server and a handler's sender, a
    :class:`PeerInfo` or a connection id, ``DeviceStub(server, peer)``.
    Each call waits for that client's reply (:meth:`Server.send_sync`).
    """

    __slots__ = ("_peer_id", "_server")

    @overload
    def __init__(self, ctx: ServerContext[ProtoMessage], /) -> None: ...

    @overload
    def __init__(self, server: Server, to: PeerRef, /) -> None: ...

    def __init__(self, server: Server | ServerContext[ProtoMessage], to: PeerRef | None = None, /) -> None:
        if isinstance(server, ServerContext):
            ctx: ServerContext[Any] = server
            self._server = ctx.server
            self._peer_id = ctx.peer.id
            return
        if to is None:
            raise TypeError("a stub bound to a server needs the connection too: a sender, a PeerInfo or an id")
        self._server = server
        self._peer_id = to if isinstance(to, str) else to.id if isinstance(to, PeerInfo) else to.peer.id

    @property
    def peer_id(self) -> str:
        """The id of the connection this stub asks."""
        return self._peer_id


class SendRpc(Generic[Req]):
    """A fire-and-forget rpc: `Req` in, nothing back."""

    __slots__ = ("name", "request")

    def __init__(self, name: str, request: type[Req]) -> None:
        self.name = name
        self.request = request

    async def send(self, client: Client, request: Req, *, headers: Mapping[str, str] | None = None) -> int:
        """Send `request`; returns the payload size."""
        return await client.send(Message(request, headers))

    def serve(self, server: Server, method: Callable[[Req, ServerContext[Req]], Awaitable[None]]) -> Handler[Req]:
        """A server handler that runs `method`."""

        async def handle(sender: Sender, msg: Message[Req]) -> None:
            await method(msg.payload, ServerContext(msg, sender, server))

        return handle

    def serve_client(
        self, client: Client, method: Callable[[Req, ClientContext[Req]], Awaitable[None]]
    ) -> Handler[Req]:
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


class Topic(Generic[P, TopicPeer]):
    """A typed topic family (a topic or a wildcard pattern) bound to a peer.

    Only `P` can be published on it and its subscribers get `Message[P]`.
    Publish from a client or a server; subscribe from a client: on a topic
    bound to a server, `subscribe` and `unsubscribe` are type errors.
    """

    __slots__ = ("_peer", "kind", "pattern")

    def __init__(self, peer: TopicPeer, pattern: str, kind: type[P]) -> None:
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

    async def subscribe(
        self: Topic[P, Client], topic: str, handler: Handler[P] | HandlerObject[P], *, group: str | None = None
    ) -> None:
        """Call `handler` for what is published on `topic` (or a narrower pattern).

        With `group`, as a member of that queue group: each publication goes
        to one member (see :meth:`Client.subscribe <goomerang_runtime.Client.subscribe>`).
        """
        client = _client_of(self._peer, "subscribe")
        if not pattern_covers(self.pattern, validate_pattern(topic)):
            raise TopicError(topic, f"not within the family {self.pattern!r}")
        await client.subscribe(topic, self.kind, handler, group=group)

    async def unsubscribe(self: Topic[P, Client], topic: str, *, group: str | None = None) -> None:
        """Stop the subscription to `topic` (or leave queue `group` on it, once the server confirmed)."""
        await _client_of(self._peer, "unsubscribe").unsubscribe(topic, group=group)

    def subscription(
        self: Topic[P, Client],
        topic: str,
        *,
        max_pending: int = DEFAULT_MAX_PENDING,
        max_pending_bytes: int = DEFAULT_MAX_PENDING_BYTES,
        group: str | None = None,
    ) -> Subscription[P]:
        """What is published on `topic` (or a narrower pattern), read as an async iterator of ``Message[P]``.

        ::

            async with chat.RoomsTopic(client).subscription("rooms.go") as sub:
                async for msg in sub:  # Message[Said]
                    ...

        The iterator form of :meth:`subscribe`; see
        :meth:`Client.subscription <goomerang_runtime.Client.subscription>`.
        """
        client = _client_of(self._peer, "subscribe")
        if not pattern_covers(self.pattern, validate_pattern(topic)):
            raise TopicError(topic, f"not within the family {self.pattern!r}")
        return client.subscription(
            topic, self.kind, max_pending=max_pending, max_pending_bytes=max_pending_bytes, group=group
        )


def _client_of(peer: object, operation: str) -> Client:
    """The client a topic is bound to; untyped callers may have bound it to a server."""
    if not isinstance(peer, Client):
        raise UsageError(f"cannot {operation} on a server: topics are subscribed by clients")
    return peer
