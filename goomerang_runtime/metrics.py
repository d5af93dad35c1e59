"""Prometheus metrics for servers and clients, with the Go library's names.

Needs the ``metrics`` extra (``pip install 'goomerang[metrics]'``); the rest
of ``goomerang_runtime`` does not import this module. ::

    from prometheus_client import CollectorRegistry
    from goomerang_runtime.metrics import ServerMetrics, metered_server

    registry = CollectorRegistry()            # or leave it out: the global one
    metrics = ServerMetrics().register(registry)
    server = metered_server(metrics, listen="0.0.0.0:8080", expose=True)
    # GET /metrics and GET /healthz now answer on port 8080, beside /ws.

Every metric is in namespace ``goomerang``, subsystem ``server`` or
``client`` (``server_pubsub`` / ``client_pubsub`` for pub/sub counters, as
in Go), so dashboards made for the Go library work unchanged. Histograms
are labelled ``kind`` (the message's full protobuf name); pub/sub counters
``topic`` (and ``message``, the kind, for publications); the error counters
``error_type`` (the class name of the reported error, e.g.
``SlowConsumerError``). Topics become label values: keep their number
bounded. Beyond Go, ``goomerang_server_connected_clients`` gauges the
clients connected now.
"""

from __future__ import annotations

import itertools
from typing import Annotated, Self, TypedDict, Unpack

from pydantic import AfterValidator

try:
    from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram
    from prometheus_client.exposition import choose_encoder
except ImportError as exc:  # pragma: no cover - exercised in a subprocess test
    raise ImportError("goomerang_runtime.metrics needs prometheus-client: pip install 'goomerang[metrics]'") from exc

from .client import Client
from .config import ClientConfig, ClientOptions, ServerConfig, ServerOptions, _Config
from .errors import GoomerangError
from .handler import PeerInfo
from .middleware import metrics_middleware
from .routes import HttpRequest, HttpResponse, Route, health_route
from .server import BroadcastResult, Server
from .status import Status

__all__ = [
    "DEFAULT_DURATION_BUCKETS",
    "DEFAULT_SIZE_BUCKETS",
    "HEALTH_PATH",
    "METRICS_PATH",
    "NAMESPACE",
    "ClientMetrics",
    "ClientMetricsConfig",
    "ClientMetricsOptions",
    "ServerMetrics",
    "ServerMetricsConfig",
    "ServerMetricsOptions",
    "metered_client",
    "metered_server",
    "metrics_route",
]

NAMESPACE = "goomerang"
"""The Prometheus namespace of every metric (as in the Go library)."""
METRICS_PATH = "/metrics"
"""Where an exposing server answers the Prometheus scrape."""
HEALTH_PATH = "/healthz"
"""Where an exposing server answers its status (200 when RUNNING, else 503)."""
DEFAULT_DURATION_BUCKETS: tuple[float, ...] = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
"""Prometheus' default buckets, in seconds (the Go library's default too)."""
DEFAULT_SIZE_BUCKETS: tuple[float, ...] = (10, 20, 40, 80, 160, 320, 640, 1280, 2560, 5120, 10240, 50000)
"""The Go library's buckets for message sizes, in bytes."""
_ERRORS_ALSO = {"client": ", and failed send_sync calls"}


def _check_buckets(value: tuple[float, ...]) -> tuple[float, ...]:
    if not value:
        raise ValueError("give at least one bucket")
    if any(upper <= lower for lower, upper in itertools.pairwise(value)):
        raise ValueError("bucket bounds must be strictly increasing")
    return value


Buckets = Annotated[tuple[float, ...], AfterValidator(_check_buckets)]


class _BucketsConfig(_Config):
    inflight_buckets: Buckets = DEFAULT_DURATION_BUCKETS
    """Seconds a received message spent between its sender and the handler chain."""
    received_size_buckets: Buckets = DEFAULT_SIZE_BUCKETS
    """Payload bytes of received messages."""
    sent_size_buckets: Buckets = DEFAULT_SIZE_BUCKETS
    """Payload bytes of sent messages."""
    sent_duration_buckets: Buckets = DEFAULT_DURATION_BUCKETS
    """Seconds spent queuing a sent message on its connection."""
    processing_buckets: Buckets = DEFAULT_DURATION_BUCKETS
    """Seconds in the handler chain."""


class ServerMetricsConfig(_BucketsConfig):
    """Histogram buckets of :class:`ServerMetrics`."""

    broadcast_buckets: Buckets = DEFAULT_DURATION_BUCKETS
    """Seconds a whole broadcast took."""


class ClientMetricsConfig(_BucketsConfig):
    """Histogram buckets of :class:`ClientMetrics`."""

    sync_buckets: Buckets = DEFAULT_DURATION_BUCKETS
    """Seconds from a send_sync call to its reply."""


class _BucketsOptions(TypedDict, total=False):
    inflight_buckets: tuple[float, ...]
    received_size_buckets: tuple[float, ...]
    sent_size_buckets: tuple[float, ...]
    sent_duration_buckets: tuple[float, ...]
    processing_buckets: tuple[float, ...]


class ServerMetricsOptions(_BucketsOptions, total=False):
    """Keyword options of `ServerMetrics(...)`; see :class:`ServerMetricsConfig`."""

    broadcast_buckets: tuple[float, ...]


class ClientMetricsOptions(_BucketsOptions, total=False):
    """Keyword options of `ClientMetrics(...)`; see :class:`ClientMetricsConfig`."""

    sync_buckets: tuple[float, ...]


class _PeerMetrics:
    """The metrics servers and clients share; collectors start unregistered."""

    def __init__(self, side: str, config: _BucketsConfig) -> None:
        self._side = side
        self._registry: CollectorRegistry | None = None
        self.message_received_inflight_duration = self._histogram(
            "message_received_inflight_duration_seconds",
            "Seconds a received message spent between its sender and the handler chain.",
            config.inflight_buckets,
        )
        self.message_received_size = self._histogram(
            "message_received_size_bytes", "Payload bytes of received messages.", config.received_size_buckets
        )
        self.message_sent_size = self._histogram(
            "message_sent_size_bytes", "Payload bytes of sent messages.", config.sent_size_buckets
        )
        self.message_sent_duration = self._histogram(
            "message_sent_duration_seconds",
            "Seconds spent encoding a sent message and queuing it on its connection.",
            config.sent_duration_buckets,
        )
        self.message_processing_duration = self._histogram(
            "message_processing_duration_seconds",
            "Seconds a message spent in the handler chain.",
            config.processing_buckets,
        )
        self.status = self._gauge("status", f"The {side}'s status: 0 new, 1 running, 2 closing, 3 closed.")
        self.concurrent_workers = self._gauge("concurrent_workers", f"Handlers running now in the {side}.")
        self.config_max_concurrency = self._gauge(
            "config_max_concurrency", f"The {side}'s configured maximum of handlers running at once."
        )
        self.errors = self._counter(
            "errors_total",
            f"Errors reported to the {side}'s error hooks{_ERRORS_ALSO.get(side, '')}, by error class.",
            ("error_type",),
            side,
        )

    def _histogram(self, name: str, documentation: str, buckets: tuple[float, ...]) -> Histogram:
        return Histogram(
            name, documentation, ["kind"], namespace=NAMESPACE, subsystem=self._side, buckets=buckets, registry=None
        )

    def _gauge(self, name: str, documentation: str) -> Gauge:
        return Gauge(name, documentation, namespace=NAMESPACE, subsystem=self._side, registry=None)

    def _counter(self, name: str, documentation: str, labels: tuple[str, ...], subsystem: str) -> Counter:
        return Counter(name, documentation, labels, namespace=NAMESPACE, subsystem=subsystem, registry=None)

    @property
    def collectors(self) -> tuple[Histogram | Gauge | Counter, ...]:
        """Every collector of the set, in registration order."""
        return tuple(value for value in vars(self).values() if isinstance(value, Histogram | Gauge | Counter))

    @property
    def registry(self) -> CollectorRegistry | None:
        """Where :meth:`register` put the collectors, or None before."""
        return self._registry

    def register(self, registry: CollectorRegistry = REGISTRY) -> Self:
        """Register every collector in `registry` (default: the global one); returns self."""
        if self._registry is not None:
            raise ValueError(f"these {self._side} metrics are registered already")
        for collector in self.collectors:
            registry.register(collector)
        self._registry = registry
        return self

    # MessageObserver (the metrics middleware) and the on_send hook.

    def message_received(self, kind: str, size: int, inflight: float | None) -> None:
        """Observe a received message's size and time in flight."""
        self.message_received_size.labels(kind).observe(size)
        if inflight is not None:
            self.message_received_inflight_duration.labels(kind).observe(inflight)

    def message_processed(self, kind: str, duration: float) -> None:
        """Observe the time a message spent in the handler chain."""
        self.message_processing_duration.labels(kind).observe(duration)

    def message_sent(self, kind: str, size: int, duration: float) -> None:
        """Observe a sent message's size and the time spent queuing it."""
        self.message_sent_size.labels(kind).observe(size)
        self.message_sent_duration.labels(kind).observe(duration)

    # Hooks shared by both sides.

    def _on_status(self, status: Status) -> None:
        self.status.set(int(status))

    def _on_configuration(self, config: ServerConfig | ClientConfig) -> None:
        self.config_max_concurrency.set(config.max_concurrency)

    def _on_error(self, error: BaseException) -> None:
        self.errors.labels(type(error).__name__).inc()

    def _instrument(self, peer: Server | Client) -> None:
        peer.middleware(metrics_middleware(self))
        peer.on_status_change(self._on_status)
        peer.on_configuration(self._on_configuration)
        peer.on_worker_start(self.concurrent_workers.inc)
        peer.on_worker_end(self.concurrent_workers.dec)
        peer.on_error(self._on_error)
        peer.on_send(self.message_sent)
        self.status.set(int(peer.status))


class ServerMetrics(_PeerMetrics):
    """The server's metric set (``goomerang_server_*``).

    ``ServerMetrics(processing_buckets=(...))`` overrides buckets; a bad
    value raises :class:`~goomerang_runtime.ConfigError`. Collectors are
    attributes named after their metrics, usable directly.
    """

    def __init__(self, **buckets: Unpack[ServerMetricsOptions]) -> None:
        self.config = ServerMetricsConfig.from_options("server metrics", dict(buckets))
        super().__init__("server", self.config)
        self.message_broadcast_sent_duration = self._histogram(
            "message_broadcast_sent_duration_seconds", "Seconds a whole broadcast took.", self.config.broadcast_buckets
        )
        self.broadcast_client = self._counter(
            "broadcast_client_total", "Broadcast commands received from clients.", ("kind",), "server"
        )
        self.subscribe = self._counter(
            "subscribe_total", "Subscribe commands processed by the server.", ("topic",), "server_pubsub"
        )
        self.publish = self._counter(
            "publish_total", "Publications (from clients or the server).", ("topic", "message"), "server_pubsub"
        )
        self.unsubscribe = self._counter(
            "unsubscribe_total", "Unsubscribe commands processed by the server.", ("topic",), "server_pubsub"
        )
        self.connected_clients = self._gauge("connected_clients", "Clients connected to the server now.")

    def instrument(self, server: Server) -> Server:
        """Wire the metrics middleware and every hook into `server` (before it starts).

        The middleware lands where this is called in the chain;
        :func:`metered_server` calls it first, so it times every middleware
        added after. Returns `server`.
        """
        self._instrument(server)
        server.on_broadcast(self._on_broadcast)
        server.on_client_broadcast(self._on_client_broadcast)
        server.on_subscribe(self._on_subscribe)
        server.on_unsubscribe(self._on_unsubscribe)
        server.on_publish(self._on_publish)
        server.on_connect(self._on_connect)
        server.on_disconnect(self._on_disconnect)
        return server

    def _on_connect(self, peer: PeerInfo) -> None:
        self.connected_clients.inc()

    def _on_disconnect(self, peer: PeerInfo) -> None:
        self.connected_clients.dec()

    def _on_broadcast(self, kind: str, results: list[BroadcastResult], duration: float) -> None:
        self.message_broadcast_sent_duration.labels(kind).observe(duration)
        for result in results:
            if result.error is None:
                self.message_sent(kind, result.size, result.duration)

    def _on_client_broadcast(self, kind: str) -> None:
        self.broadcast_client.labels(kind).inc()

    def _on_subscribe(self, topic: str) -> None:
        self.subscribe.labels(topic).inc()

    def _on_unsubscribe(self, topic: str) -> None:
        self.unsubscribe.labels(topic).inc()

    def _on_publish(self, topic: str, kind: str) -> None:
        self.publish.labels(topic, kind).inc()


class ClientMetrics(_PeerMetrics):
    """The client's metric set (``goomerang_client_*``).

    ``ClientMetrics(sync_buckets=(...))`` overrides buckets; a bad value
    raises :class:`~goomerang_runtime.ConfigError`. Collectors are
    attributes named after their metrics, usable directly.
    """

    def __init__(self, **buckets: Unpack[ClientMetricsOptions]) -> None:
        self.config = ClientMetricsConfig.from_options("client metrics", dict(buckets))
        super().__init__("client", self.config)
        self.message_sent_sync_duration = self._histogram(
            "message_sent_sync_duration_seconds",
            "Seconds from a send_sync call to its reply.",
            self.config.sync_buckets,
        )
        self.broadcast_cmd_sent = self._counter(
            "broadcast_cmd_sent_total", "Broadcast commands sent to the server.", ("kind",), "client"
        )
        self.subscribe_cmd_sent = self._counter(
            "subscribe_cmd_sent_total", "Subscribe commands sent to the server.", ("topic",), "client_pubsub"
        )
        self.publish_cmd_sent = self._counter(
            "publish_cmd_sent_total", "Publish commands sent to the server.", ("topic", "message"), "client_pubsub"
        )
        self.unsubscribe_cmd_sent = self._counter(
            "unsubscribe_cmd_sent_total", "Unsubscribe commands sent to the server.", ("topic",), "client_pubsub"
        )

    def instrument(self, client: Client) -> Client:
        """Wire the metrics middleware and every hook into `client` (before it connects).

        The middleware lands where this is called in the chain;
        :func:`metered_client` calls it first. Returns `client`.
        """
        self._instrument(client)
        client.on_send_sync(self._on_send_sync)
        client.on_broadcast(self._on_broadcast)
        client.on_publish(self._on_publish)
        client.on_subscribe(self._on_subscribe)
        client.on_unsubscribe(self._on_unsubscribe)
        return client

    def _on_send_sync(self, kind: str, duration: float, error: GoomerangError | None) -> None:
        if error is None:
            self.message_sent_sync_duration.labels(kind).observe(duration)
        else:
            self.errors.labels(type(error).__name__).inc()

    def _on_broadcast(self, kind: str) -> None:
        self.broadcast_cmd_sent.labels(kind).inc()

    def _on_publish(self, topic: str, kind: str) -> None:
        self.publish_cmd_sent.labels(topic, kind).inc()

    def _on_subscribe(self, topic: str) -> None:
        self.subscribe_cmd_sent.labels(topic).inc()

    def _on_unsubscribe(self, topic: str) -> None:
        self.unsubscribe_cmd_sent.labels(topic).inc()


def metrics_route(registry: CollectorRegistry = REGISTRY) -> Route:
    """A route answering the Prometheus exposition of `registry`.

    The format follows the request's ``Accept`` header (text or OpenMetrics),
    as ``prometheus_client`` does.
    """

    def metrics(request: HttpRequest) -> HttpResponse:
        encoder, content_type = choose_encoder(request.headers.get("accept", ""))
        return HttpResponse(200, {"Content-Type": content_type}, encoder(registry))

    return metrics


def metered_server(metrics: ServerMetrics, *, expose: bool = False, **options: Unpack[ServerOptions]) -> Server:
    """A :class:`~goomerang_runtime.Server` built from `options`, instrumented by `metrics`.

    With `expose`, the server also answers ``GET /metrics`` (the registry
    the metrics are registered in) and ``GET /healthz`` (its status name;
    200 when RUNNING, 503 otherwise) on its own listener, beside ``/ws``.
    """
    server = metrics.instrument(Server(**options))
    if expose:
        if metrics.registry is None:
            raise ValueError("register the metrics (metrics.register(registry)) before exposing them")
        server.route(METRICS_PATH, metrics_route(metrics.registry))
        server.route(HEALTH_PATH, health_route(server))
    return server


def metered_client(metrics: ClientMetrics, **options: Unpack[ClientOptions]) -> Client:
    """A :class:`~goomerang_runtime.Client` built from `options`, instrumented by `metrics`."""
    return metrics.instrument(Client(**options))
