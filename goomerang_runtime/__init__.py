"""goomerang for Python: protocol buffers over WebSocket, wire-compatible with Go.

The public API is re-exported here; modules prefixed ``_`` are private.
"""

from __future__ import annotations

from .brokers import Broker, BrokerState, MemoryBroker, MemoryBus, NatsBroker, RedisBroker
from .client import Client
from .config import ClientConfig, ClientOptions, ServerConfig, ServerOptions
from .errors import (
    AlreadyRunningError,
    BrokerError,
    ConfigError,
    ConnectError,
    ConnectionLostError,
    DuplicateHandlerError,
    DuplicateKindError,
    EnvelopeDecodeError,
    FrameDecodeError,
    GoomerangError,
    HandlerError,
    HeartbeatTimeoutError,
    HookError,
    InvalidTopicError,
    MessageTooBigError,
    NoHandlerError,
    NotRunningError,
    PayloadDecodeError,
    ProtocolError,
    RegistrationClosedError,
    RemoteHandlerError,
    SlowConsumerError,
    SyncTimeoutError,
    TextFrameError,
    TransportError,
    UnexpectedReplyError,
    UnknownKindError,
    UnknownReplyError,
    UsageError,
)
from .handler import Handler, HandlerObject, Middleware, PeerInfo, Sender
from .message import Message, Metadata, ProtoMessage, kind_of
from .registry import MessageRegistry
from .server import BroadcastResult, Server
from .status import Status

__all__ = [
    "AlreadyRunningError",
    "BroadcastResult",
    "Broker",
    "BrokerError",
    "BrokerState",
    "Client",
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
    "Handler",
    "HandlerError",
    "HandlerObject",
    "HeartbeatTimeoutError",
    "HookError",
    "InvalidTopicError",
    "Message",
    "MessageRegistry",
    "MemoryBroker",
    "MemoryBus",
    "MessageTooBigError",
    "Metadata",
    "Middleware",
    "NatsBroker",
    "NoHandlerError",
    "NotRunningError",
    "PayloadDecodeError",
    "PeerInfo",
    "ProtoMessage",
    "ProtocolError",
    "RedisBroker",
    "RegistrationClosedError",
    "RemoteHandlerError",
    "Sender",
    "Server",
    "ServerConfig",
    "ServerOptions",
    "SlowConsumerError",
    "Status",
    "SyncTimeoutError",
    "TextFrameError",
    "TransportError",
    "UnexpectedReplyError",
    "UnknownKindError",
    "UnknownReplyError",
    "UsageError",
    "kind_of",
]
