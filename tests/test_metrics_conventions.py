"""Metrics beyond Go's: a gauge of connected clients, and the error counters labelled by error type."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from generated.goomerang.example.messages_pb2 import MessageV1, PingPong, ReplyV1
from goomerang_runtime import Client, Message, Sender, SyncTimeoutError, UnknownKindError
from goomerang_runtime.metrics import ClientMetrics, ServerMetrics, metered_client, metered_server

from .helpers import WAIT, Collector, Counter

CONNECTED = "goomerang_server_connected_clients"


def sample(registry: CollectorRegistry, name: str, **labels: str) -> float:
    return registry.get_sample_value(name, labels) or 0.0


async def test_the_connected_clients_gauge_follows_connections() -> None:
    registry = CollectorRegistry()
    server = metered_server(ServerMetrics().register(registry))
    joined = Counter()
    left = Counter()
    server.on_connect(lambda peer: joined.hit())
    server.on_disconnect(lambda peer: left.hit())
    async with server, asyncio.timeout(WAIT):
        assert sample(registry, CONNECTED) == 0
        first, second = Client(server=server.addr), Client(server=server.addr)
        await first.connect()
        await second.connect()
        await joined.wait_for(2)
        assert sample(registry, CONNECTED) == 2
        await first.close()
        await left.wait_for(1)
        assert sample(registry, CONNECTED) == 1
        await server.disconnect(server.peers[0].id)
        await left.wait_for(2)
        assert sample(registry, CONNECTED) == 0
        await second.wait_closed()


async def test_error_counters_are_labelled_with_the_error_type() -> None:
    sreg, creg = CollectorRegistry(), CollectorRegistry()
    server = metered_server(ServerMetrics().register(sreg))
    errors = Collector()
    server.on_error(errors)

    async def silent(sender: Sender, msg: Message[MessageV1]) -> None:
        pass  # never replies: the caller times out

    server.handle(MessageV1, silent)
    async with server, asyncio.timeout(WAIT):
        client = metered_client(ClientMetrics().register(creg), server=server.addr)
        async with client:
            await client.send(PingPong(sequence=1))  # a kind the server does not know
            await errors.wait_for(UnknownKindError)
            with pytest.raises(SyncTimeoutError):
                await client.send_sync(MessageV1(message="x"), timeout=0.05, expect=ReplyV1)
    assert sample(sreg, "goomerang_server_errors_total", error_type="UnknownKindError") == 1
    assert sample(creg, "goomerang_client_errors_total", error_type="SyncTimeoutError") == 1
    assert sample(creg, "goomerang_client_errors_total", error_type="UnknownKindError") == 0


def test_the_dashboard_shows_connected_clients_and_errors_by_type() -> None:
    dashboard = json.loads((Path(__file__).resolve().parent.parent / "grafana" / "goomerang.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    assert any(CONNECTED in expr for expr in exprs)
    for side in ("server", "client"):
        assert any("by (error_type)" in e and f"goomerang_{side}_errors_total" in e for e in exprs), side
