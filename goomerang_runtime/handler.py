"""The handler contract: who receives a message, how to answer, middlewares."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeAlias, TypeVar, cast

from .message import Message, ProtoMessage

__all__ = [
    "Handler",
    "HandlerObject",
    "HasPeer",
    "Middleware",
    "PeerInfo",
    "PeerRef",
    "Responder",
    "Sender",
    "build_chain",
    "to_handler",
]

P = TypeVar("P", bound=ProtoMessage)
P_contra = TypeVar("P_contra", bound=ProtoMessage, contravariant=True)


@dataclass(frozen=True, slots=True)
class PeerInfo:
    """Who is on the other end of a connection."""

    id: str
    """Unique per connection within a process."""
    remote_address: str
    """``host:port`` of the other end."""
    principal: object | None = None
    """What the server's authentication hook returned for this connection."""
    headers: dict[str, str] = field(default_factory=dict)
    """Headers of the WebSocket handshake request (server side)."""
    extensions: frozenset[str] = frozenset()
    """What this connection uses beyond the Go wire (:mod:`goomerang_runtime.extensions`); empty for a Go peer."""


class Sender(Protocol):
    """Sends messages back over the connection a message came from.

    On the server, the sender of a sync request answers it: its first send is
    the reply (carrying the request's uuid); later sends are plain frames.
    """

    @property
    def peer(self) -> PeerInfo:
        """Who the connection leads to."""
        ...

    async def send(self, msg: Message[ProtoMessage] | ProtoMessage) -> int:
        """Send `msg`; returns the payload size in bytes."""
        ...


Handler: TypeAlias = Callable[[Sender, Message[P]], Awaitable[None]]
"""An async callable ``(sender, message) -> None`` for one kind of message."""


Responder: TypeAlias = Callable[[Sender, Message[P]], Awaitable[ProtoMessage | Message[ProtoMessage] | None]]
"""A client handler that may answer: ``(sender, message) -> reply or None``.

What it returns is the reply when the message is a server's request
(``Server.send_sync``); for a plain message it is ignored. Every
:data:`Handler` is a Responder that never answers.
"""


class HasPeer(Protocol):
    """Anything bound to one connection: a handler's sender, a service method's context."""

    @property
    def peer(self) -> PeerInfo:
        """Who the connection leads to."""
        ...


PeerRef: TypeAlias = HasPeer | PeerInfo | str
"""One client connection of a server: a handler's sender or context, its :class:`PeerInfo`, or its id."""


class HandlerObject(Protocol[P_contra]):
    """An object whose ``handle`` method is a :data:`Handler`."""

    def handle(self, sender: Sender, msg: Message[P_contra], /) -> Awaitable[None]:
        """Handle one message."""
        ...


Middleware: TypeAlias = Callable[[Handler[ProtoMessage]], Handler[ProtoMessage]]
"""Wraps the next handler of the chain; it runs for messages of every kind."""


def to_handler(handler: Handler[P] | HandlerObject[P]) -> Handler[P]:
    """Normalize a handler object to its bound ``handle`` method."""
    handle = getattr(handler, "handle", None)
    if handle is not None and callable(handle):
        return cast("Handler[P]", handle)
    if callable(handler):
        return handler
    raise TypeError(f"{handler!r} is neither an async callable nor has a handle() method")


def build_chain(handler: Handler[Any], middlewares: Sequence[Middleware]) -> Handler[Any]:
    """Wrap `handler` so that middlewares run in registration order around it."""
    chain: Handler[Any] = handler
    for middleware in reversed(middlewares):
        chain = middleware(chain)
    return chain
