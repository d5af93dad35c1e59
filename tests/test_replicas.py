"""Several replicas sharing pub/sub and broadcasts through real NATS and Redis servers.

Each test starts its broker on a free loopback port. Replica B runs in its
own process (`tests/replica.py`), replica A in the test's; clients connect
to each. A missing broker binary skips, or fails under
GOOMERANG_REQUIRE_BROKERS=1.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest

from generated.goomerang.example.messages_pb2 import MessageV1, ReplyV1
from goomerang_runtime import BrokerError, BrokerState, EnvelopeDecodeError, Message, Server

from .brokers import KINDS, BrokerServer, Replica, require_binary
from .brokers import broker_server as broker_server
from .helpers import WAIT, Collector, wait_until
from .inbox import barrier, listening_client
from .replica import add_handlers, make_broker


@pytest.fixture
async def replica_b(broker_server: BrokerServer) -> AsyncIterator[Replica]:
    replica = await Replica.start(broker_server.kind, broker_server.url)
    yield replica
    await replica.stop()


class StateWatch:
    """Lets a test await a broker state of replica A."""

    def __init__(self) -> None:
        self.seen: list[BrokerState] = []
        self.changed = asyncio.Event()

    def __call__(self, state: BrokerState) -> None:
        self.seen.append(state)
        self.changed.set()

    async def wait_for(self, state: BrokerState, times: int = 1) -> None:
        await wait_until(lambda: self.seen.count(state) >= times, self.changed)


ReplicaA = tuple[Server, Collector, StateWatch]


@contextlib.asynccontextmanager
async def replica_a(
    broker_server: BrokerServer, *, connected: bool = True, **options: float
) -> AsyncIterator[ReplicaA]:
    broker = make_broker(broker_server.kind, broker_server.url, **options)
    watch = StateWatch()
    broker.on_state_change(watch)
    server = Server(broker=broker, close_wait=1.0)
    errors = Collector()
    server.on_error(errors)
    add_handlers(server, "A")
    async with server:
        assert broker.connected is connected
        yield server, errors, watch


async def test_publications_and_broadcasts_reach_every_replica(broker_server: BrokerServer, replica_b: Replica) -> None:
    async with replica_a(broker_server) as (a, a_errors, _):
        a1, a1_inbox = listening_client(a.addr)
        b1, b1_inbox = listening_client(replica_b.addr)
        b2, b2_inbox = listening_client(replica_b.addr)
        async with a1, b1, b2:
            await a1.subscribe("chat.room1")
            await b1.subscribe("chat.*")
            await b1.subscribe("chat.room1")  # overlaps chat.*: one copy per publication still
            await b2.subscribe("other")
            for client in (a1, b1, b2):
                await barrier(client)  # the subscription is live at the broker once this returns

            # A client on A publishes: subscribers on B get it, in order, with headers, once.
            for n in range(200):
                await a1.publish("chat.room1", Message(ReplyV1(message=str(n)), {"n": str(n)}))
            await a1.publish("other", ReplyV1(message="marker"))
            await b1_inbox.wait_for(200)
            await b2_inbox.wait_until("marker")
            await a1_inbox.wait_for(200)
            assert b1_inbox.texts() == [str(n) for n in range(200)]
            assert [m.headers for m in b1_inbox.messages] == [{"n": str(n)} for n in range(200)]
            assert b2_inbox.texts() == ["marker"]
            assert a1_inbox.texts() == [str(n) for n in range(200)]

            # A client broadcast on either replica reaches clients on both, the sender included.
            await a1.broadcast(Message(ReplyV1(message="broadcast from A"), {"k": "a"}))
            await b2.broadcast(Message(ReplyV1(message="broadcast from B"), {"k": "b"}))
            for inbox in (a1_inbox, b1_inbox, b2_inbox):
                await inbox.wait_until("broadcast from A")
                await inbox.wait_until("broadcast from B")
                headers = {m.payload.message: m.headers for m in inbox.messages}
                assert headers["broadcast from A"] == {"k": "a"}
                assert headers["broadcast from B"] == {"k": "b"}

            # server.broadcast and server.publish on either replica reach all.
            await a.broadcast(ReplyV1(message="A broadcast"))
            await a.publish("chat.room1", ReplyV1(message="A publish"))
            await b2.send_sync(MessageV1(message="broadcast:B broadcast"), timeout=WAIT)
            await b2.send_sync(MessageV1(message="publish:chat.room1:B publish"), timeout=WAIT)
            for inbox in (a1_inbox, b1_inbox):
                for text in ("A broadcast", "A publish", "B broadcast", "B publish"):
                    await inbox.wait_until(text)
            await b2_inbox.wait_until("A broadcast")
            await b2_inbox.wait_until("B broadcast")
            # Each reached each client once.
            assert b1_inbox.texts().count("A publish") == 1
            assert a1_inbox.texts().count("B publish") == 1
            assert a1_inbox.messages[a1_inbox.texts().index("B publish")].headers == {"from": "B"}
            assert "B publish" not in b2_inbox.texts()
    assert a_errors.items == []
    assert replica_b.errors() == []


async def test_odd_topics_and_wildcards_map_onto_the_broker(broker_server: BrokerServer) -> None:
    """Go topics are any string: spaces, empty tokens, glob characters, non-ASCII."""
    topics = ["a b", "a..b", "x[1]*?.y", "ü.ñ", "100%", "a.b.c"]
    patterns = {"a b": ["a b"], "*.*.*": ["a..b", "a.b.c"], "x[1]*?.>": ["x[1]*?.y"], "ü.*": ["ü.ñ"], ">": topics}
    async with replica_a(broker_server) as (a, a_errors, _), replica_a(broker_server) as (b, b_errors, _):
        publisher, _ = listening_client(a.addr)
        subscribers = {pattern: listening_client(b.addr) for pattern in patterns}
        async with publisher, contextlib.AsyncExitStack() as stack:
            for pattern, (client, _) in subscribers.items():
                await stack.enter_async_context(client)
                await client.subscribe(pattern)
                await client.subscribe("end")
                await barrier(client)
            for topic in topics:
                await publisher.publish(topic, ReplyV1(message=topic))
            await publisher.publish("end", ReplyV1(message="end"))
            for pattern, (_, inbox) in subscribers.items():
                texts = await inbox.wait_until("end")
                assert texts == [*patterns[pattern], "end"], pattern
    assert a_errors.items == b_errors.items == []


async def test_broker_outage_is_reported_local_delivery_goes_on_and_it_recovers(
    broker_server: BrokerServer, replica_b: Replica
) -> None:
    async with replica_a(broker_server, buffer_size=4) as (a, a_errors, a_state):
        a1, a1_inbox = listening_client(a.addr)
        a2, _ = listening_client(a.addr)
        b1, b1_inbox = listening_client(replica_b.addr)
        b2, b2_inbox = listening_client(replica_b.addr)
        async with a1, a2, b1, b2:
            for client in (a1, b1):
                await client.subscribe("t")
                await barrier(client)
            await a2.publish("t", ReplyV1(message="before"))
            await b1_inbox.wait_until("before")

            broker_server.kill()
            lost = (await a_errors.wait_for(BrokerError))[0]
            assert "connection lost" in str(lost)
            assert broker_server.url.removeprefix(f"{broker_server.kind}://") in lost.broker
            await a_state.wait_for(BrokerState.DISCONNECTED)
            await replica_b.expect("BROKER DISCONNECTED")

            # Local delivery does not depend on the broker.
            for n in range(10):
                await a2.publish("t", ReplyV1(message=f"during {n}"))
            await a1_inbox.wait_until("during 9")
            assert a1_inbox.texts() == ["before", *(f"during {n}" for n in range(10))]
            reported = await a_errors.wait_for(BrokerError, 2)
            assert any("dropping" in str(e) for e in reported)
            # A subscription made while the broker is down is made when it is back.
            await b2.subscribe("late")
            await barrier(b2)

            await asyncio.to_thread(broker_server.start)  # same port
            await a_state.wait_for(BrokerState.CONNECTED, 2)
            await replica_b.expect("BROKER CONNECTED")
            [summary] = [e for e in a_errors.of(BrokerError) if e.dropped]
            assert summary.dropped == 6  # 10 published, 4 buffered
            assert "reconnected" in str(summary)

            await a2.publish("t", ReplyV1(message="after"))
            await a2.publish("late", ReplyV1(message="late"))
            await b1.publish("t", ReplyV1(message="from B"))
            await b1_inbox.wait_until("after")
            texts = [t for t in b1_inbox.texts() if t != "from B"]  # its own, delivered locally
            # The 4 buffered ones reach B only if it re-subscribed before A sent them.
            assert texts[0] == "before"
            assert texts[-1] == "after"
            assert set(texts[1:-1]) <= {f"during {n}" for n in range(4)}
            assert await b2_inbox.wait_until("late") == ["late"]
            await a1_inbox.wait_until("from B")
    assert replica_b.errors()  # B reported the outage too
    assert all(isinstance(e, BrokerError) for e in a_errors.items)


async def test_foreign_data_on_our_subjects_is_reported(broker_server: BrokerServer) -> None:
    async with replica_a(broker_server) as (a, errors, _):
        client, inbox = listening_client(a.addr)
        async with client:
            await client.subscribe("t")
            await barrier(client)
            await publish_raw(broker_server, "t", b"\xff not an envelope")
            [err] = await errors.wait_for(EnvelopeDecodeError)
            assert err.size == len(b"\xff not an envelope")
            await client.publish("t", ReplyV1(message="still fine"))
            assert (await inbox.wait_for(1))[0].payload.message == "still fine"


async def publish_raw(broker_server: BrokerServer, topic: str, data: bytes) -> None:
    """Publish bytes on a topic's subject or channel with the broker's own client library."""
    if broker_server.kind == "nats":
        from nats.aio.client import Client as NatsClient

        from goomerang_runtime.brokers._names import nats_subject

        nc = NatsClient()
        await nc.connect(servers=[broker_server.url])
        await nc.publish(nats_subject("goomerang", topic), data)
        await nc.flush()
        await nc.close()
    else:
        from redis.asyncio import Redis

        from goomerang_runtime.brokers._names import redis_channel

        redis = Redis.from_url(broker_server.url)
        await redis.publish(redis_channel("goomerang", topic), data)
        await redis.aclose()


@pytest.mark.parametrize("kind", KINDS)
async def test_a_server_starts_without_its_broker_and_connects_when_it_comes(kind: str) -> None:
    broker_server = BrokerServer(kind, require_binary(kind))  # not started yet
    try:
        async with replica_a(broker_server, connected=False) as (a, errors, state):
            first = (await errors.wait_for(BrokerError))[0]
            assert "cannot connect" in str(first)
            client, inbox = listening_client(a.addr)
            async with client:
                await client.subscribe("t")
                await client.publish("t", ReplyV1(message="local"))
                await inbox.wait_until("local")
                await asyncio.to_thread(broker_server.start)
                await state.wait_for(BrokerState.CONNECTED)
        unreachable = [e for e in errors.of(BrokerError) if "cannot connect" in str(e)]
        assert len(unreachable) == 1, errors.items  # reported once, not per attempt
    finally:
        broker_server.kill()


async def test_go_clients_plain_topics_cross_replicas_as_plain_strings(
    broker_server: BrokerServer, replica_b: Replica
) -> None:
    """Clients speaking only the Go wire: `*` and `>` are characters on every replica."""
    async with replica_a(broker_server) as (a, a_errors, _):
        sub, inbox = listening_client(a.addr, extensions=False)
        pub, _ = listening_client(replica_b.addr, extensions=False)
        async with sub, pub:
            for topic in ("w.*", "a.>.b", ">", "end"):
                await sub.subscribe(topic)
            await barrier(sub)
            await barrier(pub)
            for topic in ("w.x", "w.*", "a.>.b", "a.x.b", ">", "q"):
                await pub.publish(topic, ReplyV1(message=topic))
            # The subscription may reach replica B's broker a moment later: repeat the marker.
            async with asyncio.timeout(WAIT):
                while "end" not in inbox.texts():
                    await pub.publish("end", ReplyV1(message="end"))
                    await barrier(pub)
            texts = [text for text in inbox.texts() if text != "end"]
            assert texts == ["w.*", "a.>.b", ">"]
    assert a_errors.items == []
