"""Validated configuration of servers and clients.

`Server(**options)` and `Client(**options)` take keyword arguments; they are
validated here by pydantic models, and a bad one raises :class:`ConfigError`
naming the field. The `*Options` TypedDicts let mypy check the keyword names
and types at the call site.
"""

from __future__ import annotations

import importlib.util
import os
import ssl
from typing import Annotated, Any, Literal, Self, TypeAlias, TypedDict

from pydantic import ConfigDict, Field, ValidationError, ValidationInfo, field_validator

from ._history import DEFAULT_HISTORY_MAX_BYTES, MIN_HISTORY_MAX_BYTES
from ._validated import _Validated, config_error
from .auth import Authenticator, Authorizer
from .brokers.base import Broker
from .errors import ConfigError

__all__ = [
    "DEFAULT_CLOSE_WAIT",
    "DEFAULT_HANDSHAKE_TIMEOUT",
    "DEFAULT_HISTORY_LINGER",
    "DEFAULT_HEARTBEAT_INTERVAL",
    "DEFAULT_SERVER_HEARTBEAT_INTERVAL",
    "DEFAULT_LISTEN",
    "DEFAULT_MAX_CONCURRENCY",
    "DEFAULT_MAX_CONNECTIONS",
    "DEFAULT_MAX_PENDING_SYNC",
    "DEFAULT_MAX_SUBSCRIPTIONS",
    "DEFAULT_MAX_MESSAGE_SIZE",
    "DEFAULT_SEND_QUEUE_BYTES",
    "DEFAULT_SEND_QUEUE_SIZE",
    "DEFAULT_SLOW_CONSUMER_TIMEOUT",
    "ClientConfig",
    "ClientOptions",
    "ReconnectPolicy",
    "ServerConfig",
    "ServerOptions",
    "TRANSPORT_ENV",
    "Transport",
    "default_transport",
    "parse_address",
]

DEFAULT_LISTEN = "127.0.0.1:0"
"""Where a server listens by default: loopback, any free port."""
DEFAULT_MAX_CONCURRENCY = 10
"""Handlers running at once per peer (the Go library's default)."""
DEFAULT_MAX_MESSAGE_SIZE = 4 * 1024 * 1024
"""Largest incoming WebSocket message: 4 MiB."""
DEFAULT_HANDSHAKE_TIMEOUT = 10.0
"""Seconds for the TLS and WebSocket opening handshakes."""
DEFAULT_HISTORY_LINGER = 60.0
"""Seconds a replica with a history and no history_ttl stays subscribed at the broker after its last
client of a topic left, so that a client coming back finds the topic's history whole."""
DEFAULT_CLOSE_WAIT = 5.0
"""Seconds to wait for the peer's close frame."""
DEFAULT_HEARTBEAT_INTERVAL = 5.0
"""Seconds between a client's pings (as in Go)."""
DEFAULT_SERVER_HEARTBEAT_INTERVAL = 20.0
"""Seconds between a server's pings to each client (Go servers send none)."""
DEFAULT_SEND_QUEUE_SIZE = 1024
"""Frames that may wait in a connection's outgoing queue."""
DEFAULT_SEND_QUEUE_BYTES = 8 * 1024 * 1024
"""Bytes that may wait in a connection's outgoing queue: 8 MiB."""
DEFAULT_SLOW_CONSUMER_TIMEOUT = 5.0
"""Seconds a client's outgoing queue may stay full before it is disconnected."""
DEFAULT_MAX_CONNECTIONS = 10_000
"""Clients a server accepts at once."""
DEFAULT_MAX_PENDING_SYNC = 1_000
"""Sync requests of one client a server handles at once."""
DEFAULT_MAX_SUBSCRIPTIONS = 1_000
"""Topics one client may subscribe to."""

Transport: TypeAlias = Literal["websockets", "picows"]
"""The WebSocket library under a peer's connections."""
TRANSPORT_ENV = "GOOMERANG_TRANSPORT"
"""The environment variable naming the transport of peers that pass no ``transport=``."""


def default_transport() -> str:
    """The transport of a peer that passes no ``transport=``: ``$GOOMERANG_TRANSPORT``, else ``websockets``."""
    return os.environ.get(TRANSPORT_ENV) or "websockets"


PositiveFloat = Annotated[float, Field(gt=0)]
PositiveInt = Annotated[int, Field(gt=0)]


def parse_address(value: str) -> tuple[str, int]:
    """Split ``host:port`` (IPv6 as ``[::1]:port``); raises ValueError."""
    host, sep, port_text = value.rpartition(":")
    if not sep or not host:
        raise ValueError(f"{value!r} is not host:port")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        raise ValueError(f"{value!r}: write IPv6 hosts in brackets, [::1]:port")
    if not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise ValueError(f"{value!r}: port must be a number from 0 to 65535")
    return host, int(port_text)


class _Config(_Validated):
    """A validated, frozen options object: however it is built, a bad value raises :class:`ConfigError`.

    Never pydantic's ``ValidationError``: ``ReconnectPolicy(jitter=3)``,
    ``ServerConfig.model_validate({...})`` and ``Server(**options)`` all
    raise a :class:`ConfigError` whose `problems` name each field.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)

    @classmethod
    def from_options(cls, owner: str, options: dict[str, Any]) -> Self:
        """Validate keyword options; raises :class:`ConfigError` naming each bad field."""
        try:
            return cls.model_validate(options)
        except ValidationError as exc:  # pydantic's own, where model_validate is not ours (type checkers)
            raise config_error(owner, exc) from None
        except ConfigError as exc:
            raise ConfigError(owner, exc.problems) from None


class _Common(_Config):
    transport: Transport = Field(default_factory=default_transport, validate_default=True)
    """``websockets`` (the default; ``$GOOMERANG_TRANSPORT`` changes it) or ``picows`` (``goomerang[fast]``):
    the same wire, semantics and options, but compression, which picows does not have."""
    tls: ssl.SSLContext | None = None
    """TLS context; with it the endpoint is ``wss://host:port/wss``."""
    max_concurrency: Annotated[int, Field(ge=0)] = DEFAULT_MAX_CONCURRENCY
    """Handlers running at once; 0 or 1 runs them inline in the read loop, in order."""
    max_message_size: PositiveInt = DEFAULT_MAX_MESSAGE_SIZE
    """Largest incoming WebSocket message in bytes; a larger one closes with 1009."""
    handshake_timeout: PositiveFloat = DEFAULT_HANDSHAKE_TIMEOUT
    """Seconds allowed for the TLS and WebSocket opening handshakes."""
    compression: bool = False
    """permessage-deflate; off by default, as in the Go library."""
    close_wait: PositiveFloat = DEFAULT_CLOSE_WAIT
    """Seconds to wait for the peer's close frame before dropping TCP."""
    send_queue_size: PositiveInt = DEFAULT_SEND_QUEUE_SIZE
    """Frames that may wait in a connection's outgoing queue."""
    send_queue_bytes: PositiveInt = DEFAULT_SEND_QUEUE_BYTES
    """Bytes that may wait in a connection's outgoing queue (a larger frame still goes alone)."""
    extensions: bool = True
    """Agree on this library's extensions with peers that have them; False: the Go wire only, with everyone."""

    @field_validator("transport")
    @classmethod
    def _check_transport(cls, value: str) -> str:
        if value == "picows" and importlib.util.find_spec("picows") is None:
            raise ValueError("picows is not installed: pip install 'goomerang[fast]'")
        return value

    @field_validator("compression")
    @classmethod
    def _check_compression(cls, value: bool, info: ValidationInfo) -> bool:
        if value and info.data.get("transport") == "picows":
            raise ValueError("permessage-deflate is not available with transport='picows'; use 'websockets'")
        return value


class ServerConfig(_Common):
    """Options of a :class:`~goomerang_runtime.Server`."""

    listen: str = DEFAULT_LISTEN
    """``host:port`` to listen on; port 0 picks a free one (see ``server.addr``)."""
    slow_consumer_timeout: PositiveFloat = DEFAULT_SLOW_CONSUMER_TIMEOUT
    """Seconds a client's outgoing queue may stay full before it is disconnected."""
    error_details: bool = True
    """Send the exception message of a failed sync handler to the caller."""
    authenticate: Authenticator | None = None
    """Called on each handshake; returns the connection's principal or raises AuthenticationError."""
    authorize: Authorizer | None = None
    """Called before a client's subscribe, publish or broadcast; False drops the command."""
    max_connections: PositiveInt = DEFAULT_MAX_CONNECTIONS
    """Clients connected at once; more are refused with HTTP 503."""
    max_pending_sync: PositiveInt = DEFAULT_MAX_PENDING_SYNC
    """Sync requests of one client being handled at once; more get an immediate error reply."""
    max_subscriptions: PositiveInt = DEFAULT_MAX_SUBSCRIPTIONS
    """Topics one client may subscribe to; more are refused and reported."""
    rate_limit: PositiveFloat | None = None
    """Frames per second one client may send (a token bucket); faster clients are slowed down."""
    rate_burst: PositiveInt = 100
    """Frames a client may send at once above `rate_limit`."""
    heartbeat_interval: PositiveFloat | None = DEFAULT_SERVER_HEARTBEAT_INTERVAL
    """Seconds between server pings to each client (dead or stalled peers are dropped); None sends none, as Go."""
    heartbeat_timeout: PositiveFloat | None = None
    """Seconds to wait for a client's pong before dropping it; default: the interval."""
    broker: Broker | None = None
    """Shares broadcasts and pub/sub with other replicas (NATS, Redis); None: this server only."""
    history_size: Annotated[int, Field(ge=0)] = 0
    """Publications kept per topic for reconnecting clients to catch up (``recovery``); 0 keeps none."""
    history_ttl: PositiveFloat | None = None
    """Seconds a publication stays in the history; None: until `history_size` newer ones push it out.

    With a broker, also how long the server stays subscribed to a topic after
    its last client left (None: ``DEFAULT_HISTORY_LINGER``), so the topic's
    history has no hole when a client comes back in time; later, the loss is
    reported as unknown."""
    history_max_bytes: Annotated[int, Field(ge=MIN_HISTORY_MAX_BYTES)] = DEFAULT_HISTORY_MAX_BYTES
    """Bytes the history may hold across all topics (frames and bookkeeping); past it the oldest frames go.

    A client is told the offsets it lost to the bound (``RecoveryError``), as
    for `history_size`. Only when no frame is left and the topics'
    bookkeeping alone is over it does the least recently published topic
    forget its offsets (its old positions are then an unknown loss)."""

    @field_validator("listen")
    @classmethod
    def _check_listen(cls, value: str) -> str:
        parse_address(value)
        return value


class ReconnectPolicy(_Config):
    """How a client reconnects after losing its connection: exponential backoff with jitter."""

    initial_delay: PositiveFloat = 0.1
    """Seconds before the first attempt."""
    max_delay: PositiveFloat = 10.0
    """Longest wait between attempts."""
    multiplier: Annotated[float, Field(ge=1.0)] = 2.0
    """Each wait is this much longer than the previous one (up to max_delay)."""
    jitter: Annotated[float, Field(ge=0.0, le=1.0)] = 0.2
    """Each wait varies randomly by up to this fraction, so clients do not come back all at once."""
    max_attempts: PositiveInt | None = None
    """Give up after this many failed attempts; None tries forever."""


class ClientConfig(_Common):
    """Options of a :class:`~goomerang_runtime.Client`."""

    server: str
    """``host:port`` of the server."""
    heartbeat_interval: PositiveFloat | None = DEFAULT_HEARTBEAT_INTERVAL
    """Seconds between pings; None disables them."""
    heartbeat_timeout: PositiveFloat | None = None
    """Seconds to wait for a pong before the server is deemed gone; default: the interval."""
    headers: dict[str, str] = Field(default_factory=dict)
    """Extra headers of the WebSocket handshake request (e.g. Authorization)."""
    reconnect: ReconnectPolicy | None = None
    """Reconnect after an unexpected disconnection (re-subscribing topics); None never does."""
    max_pending_sync: PositiveInt | None = None
    """send_sync calls waiting at once; one more raises LimitError. None: no limit."""

    @field_validator("server")
    @classmethod
    def _check_server(cls, value: str) -> str:
        _, port = parse_address(value)
        if port == 0:
            raise ValueError("the server port cannot be 0")
        return value


class _CommonOptions(TypedDict, total=False):
    transport: Transport
    tls: ssl.SSLContext | None
    max_concurrency: int
    max_message_size: int
    handshake_timeout: float
    compression: bool
    close_wait: float
    send_queue_size: int
    send_queue_bytes: int
    extensions: bool


class ServerOptions(_CommonOptions, total=False):
    """Keyword options of `Server(...)`; see :class:`ServerConfig` for each."""

    listen: str
    slow_consumer_timeout: float
    error_details: bool
    authenticate: Authenticator | None
    authorize: Authorizer | None
    max_connections: int
    max_pending_sync: int
    max_subscriptions: int
    rate_limit: float | None
    rate_burst: int
    heartbeat_interval: float | None
    heartbeat_timeout: float | None
    broker: Broker | None
    history_size: int
    history_ttl: float | None
    history_max_bytes: int


class ClientOptions(_CommonOptions, total=False):
    """Keyword options of `Client(...)`; see :class:`ClientConfig` for each."""

    server: str
    heartbeat_interval: float | None
    heartbeat_timeout: float | None
    headers: dict[str, str]
    reconnect: ReconnectPolicy | None
    max_pending_sync: int | None
