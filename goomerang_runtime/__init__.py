"""goomerang for Python: protocol buffers over WebSocket, wire-compatible with Go.

The public API is re-exported here; modules prefixed ``_`` are private.
Prometheus support needs the ``metrics`` extra and is imported on its own:
``from goomerang_runtime.metrics import ServerMetrics, metered_server``.
"""

from __future__ import annotations

from .auth import Action, Authenticator, Authorizer, HandshakeRequest
from .client import Client
from .config import ClientConfig, ClientOptions, ReconnectPolicy, ServerConfig, ServerOptions
from .errors import (
    AccessError,
    AlreadyRunningError,
    AuthenticationError,
    AuthorizationError,
    ConfigError,
    ConnectError,
    ConnectionLostError,
    DuplicateHandlerError,
    DuplicateKindError,
    FrameDecodeError,
    GoomerangError,
    HandlerError,
    HeartbeatTimeoutError,
    HookError,
    LimitError,
    MessageTooBigError,
    NoHandlerError,
    NotRunningError,
    PayloadDecodeError,
    ProtocolError,
    ReconnectFailedError,
    RegistrationClosedError,
    RemoteHandlerError,
    RouteError,
    SlowConsumerError,
    SyncTimeoutError,
    TextFrameError,
    TopicError,
    TransportError,
    UnexpectedReplyError,
    UnknownKindError,
    UnknownReplyError,
    UsageError,
)
from .handler import Handler, HandlerObject, Middleware, PeerInfo, Sender
from .message import Message, Metadata, ProtoMessage, kind_of
from .middleware import MessageObserver, exception_guard, logging_middleware, metrics_middleware
from .registry import MessageRegistry
from .routes import HttpRequest, HttpResponse, Route, health_route, text_response
from .server import BroadcastResult, Server
from .service import ClientContext, Pusher, SendRpc, ServerContext, SyncRpc, Topic
from .status import Status

__all__ = [
    "AccessError",
    "Action",
    "AlreadyRunningError",
    "AuthenticationError",
    "Authenticator",
    "AuthorizationError",
    "Authorizer",
    "BroadcastResult",
    "Client",
    "ClientContext",
    "ClientConfig",
    "ClientOptions",
    "ConfigError",
    "ConnectError",
    "ConnectionLostError",
    "DuplicateHandlerError",
    "DuplicateKindError",
    "FrameDecodeError",
    "GoomerangError",
    "Handler",
    "HandlerError",
    "HandlerObject",
    "HeartbeatTimeoutError",
    "HandshakeRequest",
    "HookError",
    "LimitError",
    "HttpRequest",
    "HttpResponse",
    "Message",
    "MessageObserver",
    "MessageRegistry",
    "MessageTooBigError",
    "Metadata",
    "Middleware",
    "NoHandlerError",
    "NotRunningError",
    "PayloadDecodeError",
    "PeerInfo",
    "ProtoMessage",
    "ProtocolError",
    "Pusher",
    "ReconnectFailedError",
    "ReconnectPolicy",
    "RegistrationClosedError",
    "RemoteHandlerError",
    "Route",
    "RouteError",
    "SendRpc",
    "Sender",
    "Server",
    "ServerConfig",
    "ServerContext",
    "ServerOptions",
    "SlowConsumerError",
    "Status",
    "SyncRpc",
    "SyncTimeoutError",
    "TextFrameError",
    "Topic",
    "TopicError",
    "TransportError",
    "UnexpectedReplyError",
    "UnknownKindError",
    "UnknownReplyError",
    "UsageError",
    "exception_guard",
    "health_route",
    "kind_of",
    "logging_middleware",
    "metrics_middleware",
    "text_response",
]
