"""goomerang for Python: protocol buffers over WebSocket, wire-compatible with Go.

The public API is re-exported here; modules prefixed ``_`` are private.
Prometheus support needs the ``metrics`` extra and is imported on its own:
``from goomerang_runtime.metrics import ServerMetrics, metered_server``.

Logging goes to the ``goomerang`` logger and its children (``goomerang.server``,
``goomerang.client``, ``goomerang.messages``), which have a
:class:`logging.NullHandler`, as libraries do: configure logging (e.g.
``logging.basicConfig(level=logging.INFO)``) to see the records.
"""

from __future__ import annotations

import logging

from ._version import __version__ as __version__
from .auth import Action, Authenticator, Authorizer, HandshakeRequest
from .brokers import Broker, BrokerState, MemoryBroker, MemoryBus, NatsBroker, RedisBroker
from .client import Client
from .config import ClientConfig, ClientOptions, ReconnectPolicy, ServerConfig, ServerOptions
from .errors import (
    AccessError,
    AlreadyRunningError,
    AuthenticationError,
    AuthorizationError,
    BrokerError,
    ConfigError,
    ConnectError,
    ConnectionLostError,
    DuplicateHandlerError,
    DuplicateKindError,
    EnvelopeDecodeError,
    FrameDecodeError,
    GoomerangError,
    GroupError,
    HandlerError,
    HeartbeatTimeoutError,
    HookError,
    LimitError,
    MessageTooBigError,
    NoHandlerError,
    NoReplyError,
    NotRunningError,
    PayloadDecodeError,
    ProtocolError,
    ReconnectFailedError,
    RecoveryError,
    RegistrationClosedError,
    RemoteHandlerError,
    RouteError,
    SlowConsumerError,
    SlowSubscriptionError,
    SyncTimeoutError,
    TextFrameError,
    TopicError,
    TransportError,
    UnexpectedReplyError,
    UnknownKindError,
    UnknownReplyError,
    UnsupportedPeerError,
    UsageError,
)
from .handler import Handler, HandlerObject, HasPeer, Middleware, PeerInfo, PeerRef, Responder, Sender
from .message import Message, Metadata, ProtoMessage, kind_of
from .middleware import MessageObserver, exception_guard, logging_middleware, metrics_middleware
from .registry import MessageRegistry
from .routes import HttpRequest, HttpResponse, Route, health_route, text_response
from .server import BroadcastResult, Server
from .service import (
    ClientContext,
    ClientStub,
    ClientSyncContext,
    Pusher,
    SendRpc,
    ServerContext,
    SyncContext,
    SyncRpc,
    Topic,
    TopicPeer,
)
from .signals import GracefulExit, graceful_exit
from .status import Status
from .subscription import Subscription

logging.getLogger("goomerang").addHandler(logging.NullHandler())

__all__ = [
    "AccessError",
    "Action",
    "AlreadyRunningError",
    "AuthenticationError",
    "Authenticator",
    "AuthorizationError",
    "Authorizer",
    "BroadcastResult",
    "Broker",
    "BrokerError",
    "BrokerState",
    "Client",
    "ClientContext",
    "ClientStub",
    "ClientSyncContext",
    "ClientConfig",
    "ClientOptions",
    "ConfigError",
    "ConnectError",
    "ConnectionLostError",
    "DuplicateHandlerError",
    "DuplicateKindError",
    "EnvelopeDecodeError",
    "FrameDecodeError",
    "GoomerangError",
    "GracefulExit",
    "GroupError",
    "Handler",
    "HandlerError",
    "HandlerObject",
    "HeartbeatTimeoutError",
    "HandshakeRequest",
    "HasPeer",
    "HookError",
    "LimitError",
    "HttpRequest",
    "HttpResponse",
    "Message",
    "MessageObserver",
    "MemoryBroker",
    "MemoryBus",
    "MessageRegistry",
    "MessageTooBigError",
    "Metadata",
    "Middleware",
    "NoHandlerError",
    "NoReplyError",
    "NotRunningError",
    "PayloadDecodeError",
    "PeerInfo",
    "PeerRef",
    "ProtoMessage",
    "ProtocolError",
    "NatsBroker",
    "Pusher",
    "RedisBroker",
    "ReconnectFailedError",
    "RecoveryError",
    "ReconnectPolicy",
    "RegistrationClosedError",
    "RemoteHandlerError",
    "Responder",
    "Route",
    "RouteError",
    "SendRpc",
    "Sender",
    "Server",
    "ServerConfig",
    "ServerContext",
    "ServerOptions",
    "SlowConsumerError",
    "SlowSubscriptionError",
    "Status",
    "Subscription",
    "SyncContext",
    "SyncRpc",
    "SyncTimeoutError",
    "TextFrameError",
    "Topic",
    "TopicError",
    "TopicPeer",
    "TransportError",
    "UnexpectedReplyError",
    "UnknownKindError",
    "UnknownReplyError",
    "UnsupportedPeerError",
    "UsageError",
    "exception_guard",
    "graceful_exit",
    "health_route",
    "kind_of",
    "logging_middleware",
    "metrics_middleware",
    "text_response",
]
