"""Two servers of one process joined by memory brokers: the replica logic without a network."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import pytest

from generated.goomerang.example.messages_pb2 import ReplyV1
from goomerang_runtime import (
    AlreadyRunningError,
    BrokerState,
    ConfigError,
    EnvelopeDecodeError,
    MemoryBroker,
    MemoryBus,
    Message,
    Server,
)
from goomerang_runtime._codec import encode_message
from goomerang_runtime._envelope import encode_envelope

from .helpers import Collector
from .inbox import barrier, listening_client
from .replica import add_handlers


@contextlib.asynccontextmanager
async def two_replicas() -> AsyncIterator[tuple[Server, Server, MemoryBus, Collector]]:
    bus = MemoryBus()
    errors = Collector()
    servers = []
    for name in ("A", "B"):
        server = Server(broker=MemoryBroker(bus))
        server.on_error(errors)
        add_handlers(server, name)
        servers.append(server)
    async with servers[0], servers[1]:
        yield servers[0], servers[1], bus, errors


async def test_publications_and_broadcasts_cross_servers_once_and_in_order() -> None:
    async with two_replicas() as (a, b, _, errors):
        assert a.replica_id != b.replica_id
        a1, a1_inbox = listening_client(a.addr)
        b1, b1_inbox = listening_client(b.addr)
        b2, b2_inbox = listening_client(b.addr)
        async with a1, b1, b2:
            await a1.subscribe("rooms.go")
            await b1.subscribe("rooms.*")
            await b1.subscribe("rooms.go")  # two subscriptions match: still one copy
            await b2.subscribe("other")
            for client in (a1, b1, b2):
                await barrier(client)
            for n in range(100):
                await a1.publish("rooms.go", Message(ReplyV1(message=str(n)), {"n": str(n)}))
            await a1.publish("other", ReplyV1(message="marker"))
            await b1_inbox.wait_for(100)
            await b2_inbox.wait_until("marker")
            await a1_inbox.wait_for(100)
            assert b1_inbox.texts() == [str(n) for n in range(100)]
            assert [m.headers for m in b1_inbox.messages] == [{"n": str(n)} for n in range(100)]
            assert b2_inbox.texts() == ["marker"]
            assert a1_inbox.texts() == [str(n) for n in range(100)]  # local delivery, not echoed back

            await b2.broadcast(ReplyV1(message="client broadcast"))
            await a.broadcast(ReplyV1(message="server broadcast"))
            await b.publish("rooms.go", ReplyV1(message="server publish"))
            # Three publishers: each one's order holds, not an order among them.
            for inbox in (a1_inbox, b1_inbox):
                await inbox.wait_for(103)
                assert sorted(inbox.texts()[100:]) == ["client broadcast", "server broadcast", "server publish"]
            await b2_inbox.wait_for(3)
            assert sorted(b2_inbox.texts()[1:]) == ["client broadcast", "server broadcast"]
    assert errors.items == []


async def test_a_foreign_writer_on_the_bus_is_reported_and_lost_nothing() -> None:
    async with two_replicas() as (a, _, bus, errors):
        client, inbox = listening_client(a.addr)
        async with client:
            await client.subscribe("t")
            await barrier(client)
            intruder = MemoryBroker(bus)
            await intruder.start(a._pubsub)  # any receiver: it only writes
            intruder.publish("t", b"not an envelope")
            intruder.broadcast(b"\xff")
            reported = await errors.wait_for(EnvelopeDecodeError, 3)  # A's subscriber, then A and B
            assert [e.size for e in reported] == [15, 1, 1]
            assert all(e.broker == "memory" for e in reported)
            frame = Message(ReplyV1(message="valid"))
            intruder.publish("t", encode_envelope("intruder", 1, "t", encode_message(frame)[0]))
            assert (await inbox.wait_for(1))[0].payload.message == "valid"
            await intruder.close()


async def test_broker_option_is_validated_and_a_broker_serves_one_server() -> None:
    with pytest.raises(ConfigError) as info:
        Server(broker="nats://127.0.0.1:4222")  # type: ignore[arg-type]
    assert "broker" in info.value.problems
    broker = MemoryBroker()
    states: list[BrokerState] = []
    broker.on_state_change(states.append)
    async with Server(broker=broker) as server:
        assert broker.connected
        with pytest.raises(AlreadyRunningError):
            await broker.start(server._pubsub)
    assert states == [BrokerState.CONNECTED, BrokerState.CLOSED]
