"""Who gets in, and what they may do: the authentication and authorisation hooks.

Authentication runs on the WebSocket handshake::

    async def authenticate(request: HandshakeRequest) -> str:
        token = request.headers.get("authorization", "")
        if token != "Bearer s3cret":
            raise AuthenticationError(401, "bad token")
        return "ana"                      # the principal of the connection

    server = Server(authenticate=authenticate)

What it returns becomes ``sender.peer.principal`` for every message of that
connection. Authorisation is asked before a client's subscribe, publish or
broadcast command is carried out; a denied command is dropped and reported.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, TypeAlias

from .handler import PeerInfo

__all__ = ["Action", "Authenticator", "Authorizer", "HandshakeRequest"]

Action: TypeAlias = Literal["subscribe", "publish", "broadcast"]
"""What a client asks the server to do for it."""


@dataclass(frozen=True, slots=True)
class HandshakeRequest:
    """The WebSocket opening handshake, as the authentication hook sees it."""

    path: str
    """The request path, without the query: ``/ws`` or ``/wss``."""
    query: Mapping[str, list[str]]
    """The parsed query string: ``?token=a`` -> ``{"token": ["a"]}``."""
    headers: Mapping[str, str]
    """Request headers with lower-cased names (repeated ones joined by ``,``)."""
    remote_address: str
    """``host:port`` of the client."""
    peer_certificate: Mapping[str, Any] | None = field(default=None)
    """The client's TLS certificate (``ssl.SSLSocket.getpeercert()``) when one was presented."""


Authenticator: TypeAlias = Callable[[HandshakeRequest], Awaitable[object] | object]
"""Returns the connection's principal (never None) or raises AuthenticationError to refuse."""

Authorizer: TypeAlias = Callable[[PeerInfo, Action, str, str], Awaitable[bool] | bool]
"""``(peer, action, topic, kind) -> allowed``; topic is "" for broadcasts, kind "" for subscriptions."""
