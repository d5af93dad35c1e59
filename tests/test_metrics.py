"""Prometheus metrics after real traffic over loopback, and their HTTP exposition."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from prometheus_client import REGISTRY, CollectorRegistry

from generated.goomerang.example.messages_pb2 import MessageV1, PingPong, ReplyV1
from goomerang_runtime import Client, ConfigError, Message, RemoteHandlerError, Sender, Server, Status
from goomerang_runtime.metrics import (
    DEFAULT_SIZE_BUCKETS,
    ClientMetrics,
    ClientMetricsConfig,
    ClientMetricsOptions,
    ServerMetrics,
    ServerMetricsConfig,
    ServerMetricsOptions,
    metered_client,
    metered_server,
)

from .helpers import WAIT, Counter, http_get

ROOT = Path(__file__).resolve().parent.parent
MESSAGE_V1 = "goomerang.example.MessageV1"
REPLY_V1 = "goomerang.example.ReplyV1"
PING_PONG = "goomerang.example.PingPong"


def sample(registry: CollectorRegistry, name: str, **labels: str) -> float:
    """A sample's value, 0 when it does not exist (yet)."""
    return registry.get_sample_value(name, labels) or 0.0


async def test_every_metric_moves_with_the_right_labels_after_real_traffic() -> None:
    sreg, creg = CollectorRegistry(), CollectorRegistry()
    server = metered_server(ServerMetrics().register(sreg), max_concurrency=4)
    workers_seen: list[float] = []

    async def on_message(sender: Sender, msg: Message[MessageV1]) -> None:
        workers_seen.append(sample(sreg, "goomerang_server_concurrent_workers"))
        await sender.send(ReplyV1(message="re: " + msg.payload.message))  # a reply, or a push

    async def on_ping(sender: Sender, msg: Message[PingPong]) -> None:
        raise RuntimeError("the error case")

    server.handle(MessageV1, on_message)
    server.handle(PingPong, on_ping)
    server.register_message(ReplyV1)  # passes through client broadcasts and publications
    unsubscribed = Counter()
    server.on_unsubscribe(lambda topic: unsubscribed.hit())

    async with server:
        assert sample(sreg, "goomerang_server_status") == Status.RUNNING
        assert sample(sreg, "goomerang_server_config_max_concurrency") == 4
        client = metered_client(ClientMetrics().register(creg), server=server.addr)
        received = Counter()

        async def on_reply(sender: Sender, msg: Message[ReplyV1]) -> None:
            received.hit()

        client.handle(ReplyV1, on_reply)
        async with client:
            assert sample(creg, "goomerang_client_status") == Status.RUNNING
            await client.send(MessageV1(message="plain"))  # pushes one ReplyV1 back
            await client.send_sync(MessageV1(message="sync"), timeout=WAIT)
            await received.wait_for(1)
            await server.broadcast(ReplyV1(message="from the server"))
            await client.broadcast(ReplyV1(message="from the client"))
            await client.subscribe("news")
            await client.publish("news", ReplyV1(message="client publication"))
            await received.wait_for(4)  # subscribed by now: the server keeps a connection's order
            await server.publish("news", ReplyV1(message="server publication"))
            await received.wait_for(5)
            await client.unsubscribe("news")
            with pytest.raises(RemoteHandlerError):
                await client.send_sync(PingPong(sequence=1), timeout=WAIT)
            await unsubscribed.wait_for(1)
        assert sample(creg, "goomerang_client_status") == Status.CLOSED
    assert sample(sreg, "goomerang_server_status") == Status.CLOSED

    s = "goomerang_server_"
    # Received: two MessageV1 (plain, sync) and one PingPong; the metrics middleware times each.
    for name in ("message_received_size_bytes", "message_received_inflight_duration_seconds"):
        assert sample(sreg, s + name + "_count", kind=MESSAGE_V1) == 2
        assert sample(sreg, s + name + "_count", kind=PING_PONG) == 1
    assert sample(sreg, s + "message_received_size_bytes_sum", kind=MESSAGE_V1) == (
        MessageV1(message="plain").ByteSize() + MessageV1(message="sync").ByteSize()
    )
    assert sample(sreg, s + "message_processing_duration_seconds_count", kind=MESSAGE_V1) == 2
    assert sample(sreg, s + "message_processing_duration_seconds_count", kind=PING_PONG) == 1
    # Sent: the push, the sync reply, and the server broadcast to its one client.
    assert sample(sreg, s + "message_sent_size_bytes_count", kind=REPLY_V1) == 3
    assert sample(sreg, s + "message_sent_duration_seconds_count", kind=REPLY_V1) == 3
    assert sample(sreg, s + "message_broadcast_sent_duration_seconds_count", kind=REPLY_V1) == 1
    assert sample(sreg, s + "broadcast_client_total", kind=REPLY_V1) == 1
    assert sample(sreg, s + "pubsub_subscribe_total", topic="news") == 1
    assert sample(sreg, s + "pubsub_publish_total", topic="news", message=REPLY_V1) == 2
    assert sample(sreg, s + "pubsub_unsubscribe_total", topic="news") == 1
    assert sample(sreg, s + "errors_total", error_type="HandlerError") == 1  # the raising PingPong handler
    assert sample(sreg, s + "config_max_concurrency") == 4
    assert sample(sreg, s + "concurrent_workers") == 0
    assert workers_seen
    assert all(seen >= 1 for seen in workers_seen)

    c = "goomerang_client_"
    # Received by handlers: push, two broadcasts, two publications (sync replies go to their callers).
    for name in (
        "message_received_size_bytes",
        "message_received_inflight_duration_seconds",
        "message_processing_duration_seconds",
    ):
        assert sample(creg, c + name + "_count", kind=REPLY_V1) == 5
    assert sample(creg, c + "message_sent_size_bytes_count", kind=MESSAGE_V1) == 2
    assert sample(creg, c + "message_sent_size_bytes_count", kind=PING_PONG) == 1
    assert sample(creg, c + "message_sent_duration_seconds_count", kind=MESSAGE_V1) == 2
    assert sample(creg, c + "message_sent_sync_duration_seconds_count", kind=MESSAGE_V1) == 1
    assert sample(creg, c + "message_sent_sync_duration_seconds_count", kind=PING_PONG) == 0  # failed: an error
    assert sample(creg, c + "broadcast_cmd_sent_total", kind=REPLY_V1) == 1
    assert sample(creg, c + "pubsub_subscribe_cmd_sent_total", topic="news") == 1
    assert sample(creg, c + "pubsub_publish_cmd_sent_total", topic="news", message=REPLY_V1) == 1
    assert sample(creg, c + "pubsub_unsubscribe_cmd_sent_total", topic="news") == 1
    assert sample(creg, c + "errors_total", error_type="RemoteHandlerError") == 1  # the failed send_sync
    assert sample(creg, c + "config_max_concurrency") == 10
    assert sample(creg, c + "concurrent_workers") == 0


def test_buckets_are_configurable_and_validated() -> None:
    registry = CollectorRegistry()
    metrics = ServerMetrics(processing_buckets=(0.5, 2.0), received_size_buckets=(100,)).register(registry)
    metrics.message_processed("k", 1.0)
    metrics.message_received("k", 150, None)
    name = "goomerang_server_message_processing_duration_seconds_bucket"
    assert sample(registry, name, kind="k", le="0.5") == 0
    assert sample(registry, name, kind="k", le="2.0") == 1
    assert sample(registry, name, kind="k", le="+Inf") == 1
    assert sample(registry, "goomerang_server_message_received_size_bytes_bucket", kind="k", le="100.0") == 0
    assert metrics.config.sent_size_buckets == DEFAULT_SIZE_BUCKETS
    assert ClientMetrics(sync_buckets=(1.0,)).config.sync_buckets == (1.0,)
    for bad in ((), (1.0, 1.0), (2.0, 1.0)):
        with pytest.raises(ConfigError) as info:
            ClientMetrics(sync_buckets=bad)
        assert "sync_buckets" in info.value.problems
    with pytest.raises(ConfigError):
        ServerMetrics(bogus_buckets=(1.0,))  # type: ignore[call-arg]


def test_typed_options_mirror_the_models() -> None:
    import typing

    assert set(typing.get_type_hints(ServerMetricsOptions)) == set(ServerMetricsConfig.model_fields)
    assert set(typing.get_type_hints(ClientMetricsOptions)) == set(ClientMetricsConfig.model_fields)


def test_register_defaults_to_the_global_registry_and_happens_once() -> None:
    metrics = ServerMetrics().register()
    try:
        assert metrics.registry is REGISTRY
        assert REGISTRY.get_sample_value("goomerang_server_status") == 0
        with pytest.raises(ValueError, match="registered already"):
            metrics.register(CollectorRegistry())
    finally:
        for collector in metrics.collectors:
            REGISTRY.unregister(collector)
    assert len(metrics.collectors) == 15
    assert len(ClientMetrics().collectors) == 14


async def test_metrics_and_healthz_answer_on_the_server_port_while_ws_keeps_working() -> None:
    registry = CollectorRegistry()
    server = metered_server(ServerMetrics().register(registry), expose=True)

    async def echo(sender: Sender, msg: Message[MessageV1]) -> None:
        await sender.send(ReplyV1(message=msg.payload.message))

    server.handle(MessageV1, echo)
    async with server:
        client = Client(server=server.addr)
        client.register_message(ReplyV1)
        async with client:
            await client.send_sync(MessageV1(message="before"), timeout=WAIT)
            scraped = await http_get(server.addr, "/metrics")
            health = await http_get(server.addr, "/healthz")
            openmetrics = await http_get(server.addr, "/metrics", {"Accept": "application/openmetrics-text"})
            reply = await client.send_sync(MessageV1(message="after"), timeout=WAIT, expect=ReplyV1)
    assert reply.payload.message == "after"
    assert scraped.status == 200
    assert scraped.headers["content-type"].startswith("text/plain; version=")
    text = scraped.body.decode()
    assert "goomerang_server_status 1.0" in text
    assert f'goomerang_server_message_received_size_bytes_count{{kind="{MESSAGE_V1}"}} 1.0' in text
    assert (health.status, health.body) == (200, b"RUNNING\n")
    assert openmetrics.headers["content-type"].startswith("application/openmetrics-text")
    assert openmetrics.body.rstrip().endswith(b"# EOF")


def test_exposing_needs_registered_metrics() -> None:
    with pytest.raises(ValueError, match="register the metrics"):
        metered_server(ServerMetrics(), expose=True)


def test_goomerang_runtime_imports_without_prometheus_client() -> None:
    code = (
        "import sys; sys.modules['prometheus_client'] = None\n"
        "import goomerang_runtime\n"
        "assert goomerang_runtime.exception_guard and goomerang_runtime.metrics_middleware\n"
        "try:\n"
        "    import goomerang_runtime.metrics\n"
        "except ImportError as exc:\n"
        "    print(exc)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=ROOT, check=True
    )
    assert "pip install 'goomerang[metrics]'" in done.stdout


async def test_instrument_wires_a_server_built_elsewhere() -> None:
    """instrument() wires the same set into a server built elsewhere (e.g. by generated code)."""
    registry = CollectorRegistry()
    metrics = ServerMetrics().register(registry)
    server = Server()
    assert metrics.instrument(server) is server
    async with server:
        assert sample(registry, "goomerang_server_status") == Status.RUNNING
