"""A history kept in the broker (Redis Streams, NATS JetStream): a client that reconnects to ANY replica catches up.

Real redis-server and nats-server (JetStream, its store in a temporary
directory) on loopback; replicas A and B (and C) in this process, each with
its own broker connection; clients reach them through a TCP balancer
(:mod:`tests.balancer`), so a client cut on one replica comes back on
another. Each test counts what was sent, received and reported
(``sent == received + reported``) and prints it.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager

import pytest

from generated.goomerang.example.messages_pb2 import MessageV1
from goomerang_runtime import Client, ConfigError, Message, RecoveryError, Sender, Server

from .balancer import Balancer
from .brokers import KINDS, ROOT, BrokerServer, require_binary, start_broker
from .helpers import WAIT, wait_until
from .replica import make_broker
from .test_recovery import FAST, Feed, check


@pytest.fixture(params=KINDS)
def history_broker(request: pytest.FixtureRequest) -> Iterator[BrokerServer]:
    """A broker server that keeps the history, for the test; killed after it."""
    server = start_broker(request.param)
    yield server
    server.remove()


def replica(broker: BrokerServer, size: int, ttl: float | None = None) -> Server:
    server = Server(broker=make_broker(broker.kind, broker.url, history=True), history_size=size, history_ttl=ttl)
    server.register_message(MessageV1)
    return server


@asynccontextmanager
async def balanced(target: Server) -> AsyncIterator[Balancer]:
    balancer = Balancer(target.addr)
    await balancer.start()
    try:
        yield balancer
    finally:
        await balancer.close()


class Publisher:
    """Publishes numbered MessageV1 on one replica, counting them."""

    def __init__(self, server: Server, topic: str = "feed") -> None:
        self.server = server
        self.topic = topic
        self.sent = 0

    async def publish(self, count: int, pace: bool = True) -> None:
        for _ in range(count):
            await self.server.publish(self.topic, MessageV1(message=str(self.sent)))
            self.sent += 1
            if pace:
                await asyncio.sleep(0)  # a stream, not a burst


async def settled(feed: Feed, sent: int) -> None:
    """Until `feed` received or was told of `sent` publications."""
    await wait_until(lambda: len(feed.received) + feed.reported >= sent, feed.changed)


async def test_a_client_cut_on_one_replica_catches_up_on_another(history_broker: BrokerServer) -> None:
    """A streams; B's client is cut and comes back on A (which never had the topic): every one, once, in order."""
    a, b = replica(history_broker, 10_000), replica(history_broker, 10_000)
    async with a, b, balanced(b) as balancer:
        feed = Feed(Client(server=balancer.addr, reconnect=FAST))
        await feed.start(b, "feed")
        pub = Publisher(a)
        recovered = asyncio.Event()
        feed.client.on_recovery(lambda topic, replayed, error: recovered.set())

        async def stream() -> None:
            await pub.publish(300)
            async with asyncio.timeout(WAIT):  # the stream goes on while the client is away
                while not recovered.is_set():
                    await pub.publish(10)
            await pub.publish(300)

        streaming = asyncio.create_task(stream())
        await wait_until(lambda: len(feed.received) >= 100, feed.changed)
        balancer.point(a.addr)
        feed.cut()
        before = len(feed.received)
        await asyncio.wait_for(streaming, WAIT)
        await wait_until(lambda: len(feed.received) + feed.reported >= pub.sent, feed.changed)
        check(pub.sent, feed)
        assert feed.reported == 0
        assert feed.received == list(range(pub.sent))
        ((topic, replayed, error),) = feed.recoveries
        assert (topic, error) == ("feed", None)
        print(
            f"\nshared history ({history_broker.kind}), B -> A: sent={pub.sent} received={len(feed.received)} "
            f"(before the cut {before}, replayed {replayed}) reported=0"
        )
        await feed.client.close()


async def test_a_client_comes_back_on_a_third_replica_that_is_behind(history_broker: BrokerServer) -> None:
    """Back on C, which already follows the topic: C's own deliveries and the broker's make one sequence."""
    a, b, c = (replica(history_broker, 10_000) for _ in range(3))
    async with a, b, c, balanced(b) as balancer:
        feed = Feed(Client(server=balancer.addr, reconnect=FAST))
        await feed.start(b, "feed")
        watcher = Feed(Client(server=c.addr, reconnect=FAST))  # C has the topic, its own recent frames
        await watcher.start(c, "feed")
        pub = Publisher(a)
        recovered = asyncio.Event()
        feed.client.on_recovery(lambda topic, replayed, error: recovered.set())

        async def stream() -> None:
            await pub.publish(300)
            async with asyncio.timeout(WAIT):
                while not recovered.is_set():
                    await pub.publish(10)
            await pub.publish(300)

        streaming = asyncio.create_task(stream())
        await wait_until(lambda: len(feed.received) >= 100, feed.changed)
        balancer.point(c.addr)
        feed.cut()
        await asyncio.wait_for(streaming, WAIT)
        for one in (feed, watcher):
            await settled(one, pub.sent)
            check(pub.sent, one)
            assert one.reported == 0
            assert one.received == list(range(pub.sent))
        ((_, replayed, error),) = feed.recoveries
        assert error is None
        print(
            f"\nshared history ({history_broker.kind}), B -> C: sent={pub.sent} received={len(feed.received)} "
            f"replayed={replayed} reported=0; C's own client received={len(watcher.received)}"
        )
        for one in (feed, watcher):
            await one.client.close()


async def away(feed: Feed, balancer: Balancer, target: Server) -> None:
    """Cut `feed`'s client and keep it away (its reconnection waits at the balancer), pointed at `target`."""
    balancer.hold()
    balancer.point(target.addr)
    accepted = balancer.accepted
    feed.cut()
    await wait_until(lambda: balancer.accepted > accepted, balancer.arrived)


async def test_a_gap_beyond_the_history_is_reported_exactly(history_broker: BrokerServer) -> None:
    """History of 50 in the broker, a gap of 200: 50 come back on the other replica, 101..250 are reported."""
    a, b = replica(history_broker, 50), replica(history_broker, 50)
    async with a, b, balanced(b) as balancer:
        feed = Feed(Client(server=balancer.addr, reconnect=FAST))
        await feed.start(b, "feed")
        watcher = Feed(Client(server=a.addr, reconnect=FAST))  # tells when A delivered the gap
        await watcher.start(a, "feed")
        pub = Publisher(a)
        await pub.publish(100)
        await wait_until(lambda: len(feed.received) == 100, feed.changed)
        await away(feed, balancer, a)
        await pub.publish(200)
        await wait_until(lambda: len(watcher.received) == 300, watcher.changed)
        balancer.release()
        await wait_until(lambda: bool(feed.recoveries), feed.changed)
        await pub.publish(100)
        await wait_until(lambda: len(feed.received) + feed.reported >= pub.sent, feed.changed)
        check(pub.sent, feed)
        (err,) = feed.errors.of(RecoveryError)
        assert (err.topic, err.missed_from, err.missed_to, err.missed) == ("feed", 101, 250, 150)
        assert feed.received == [*range(100), *range(250, 400)]
        assert feed.recoveries == [("feed", 50, err)]
        print(
            f"\nshared history ({history_broker.kind}) beyond the bound: sent={pub.sent} "
            f"received={len(feed.received)} reported={feed.reported} (offsets {err.missed_from}..{err.missed_to})"
        )
        for one in (feed, watcher):
            await one.client.close()


async def test_an_expired_history_is_reported(history_broker: BrokerServer) -> None:
    """history_ttl: what was published while the client was away and has expired since is reported."""
    ttl = 0.3
    a, b = replica(history_broker, 1000, ttl), replica(history_broker, 1000, ttl)
    async with a, b, balanced(b) as balancer:
        feed = Feed(Client(server=balancer.addr, reconnect=FAST))
        await feed.start(b, "feed")
        watcher = Feed(Client(server=a.addr, reconnect=FAST))
        await watcher.start(a, "feed")
        pub = Publisher(a)
        await pub.publish(50)
        await wait_until(lambda: len(feed.received) == 50, feed.changed)
        await away(feed, balancer, a)
        await pub.publish(50)
        await wait_until(lambda: len(watcher.received) == 100, watcher.changed)
        published = time.monotonic()
        await asyncio.sleep(2 * ttl)  # not a wait for an event: the ttl has to pass
        assert time.monotonic() - published >= ttl
        balancer.release()
        await wait_until(lambda: bool(feed.recoveries), feed.changed)
        await pub.publish(10)
        await wait_until(lambda: len(feed.received) + feed.reported >= pub.sent, feed.changed)
        check(pub.sent, feed)
        (err,) = feed.errors.of(RecoveryError)
        assert (err.missed_from, err.missed_to) == (51, 100)
        assert feed.received == [*range(50), *range(100, 110)]
        print(
            f"\nshared history ({history_broker.kind}) expired (ttl {ttl}s): sent={pub.sent} "
            f"received={len(feed.received)} reported={feed.reported}"
        )
        for one in (feed, watcher):
            await one.client.close()


async def test_a_restarted_broker_is_reported_as_an_unknown_loss(history_broker: BrokerServer) -> None:
    """The broker restarts empty: its history has a new epoch; every client is told, none is replayed wrong."""
    a, b = replica(history_broker, 1000), replica(history_broker, 1000)
    async with a, b, balanced(b) as balancer:
        feed = Feed(Client(server=balancer.addr, reconnect=FAST))
        await feed.start(b, "feed")
        watcher = Feed(Client(server=a.addr, reconnect=FAST))  # stays connected to A through the restart
        await watcher.start(a, "feed")
        pub = Publisher(a)
        await pub.publish(10)
        for one in (feed, watcher):
            await settled(one, 10)
        await away(feed, balancer, a)
        brokers = [server.config.broker for server in (a, b)]
        changed = asyncio.Event()
        for broker in brokers:
            assert broker is not None
            broker.on_state_change(lambda state: changed.set())
        history_broker.kill()
        await wait_until(lambda: not any(broker.connected for broker in brokers if broker), changed)
        history_broker.remove()  # its store too (NATS); Redis keeps nothing anyway
        history_broker.start()  # same port, nothing kept
        await wait_until(lambda: all(broker.connected for broker in brokers if broker), changed)
        await pub.publish(10)  # numbered 1..10 again, in a new epoch
        await wait_until(lambda: len(watcher.received) == 20, watcher.changed)
        balancer.release()
        await wait_until(lambda: bool(feed.recoveries), feed.changed)
        await pub.publish(10)
        await wait_until(lambda: len(feed.received) == 20, feed.changed)
        assert feed.received == [*range(10), *range(20, 30)]  # 10..19 published while it was away: unknown
        (err,) = feed.errors.of(RecoveryError)
        assert err.missed is None
        assert "lost" in str(err)
        (told,) = watcher.errors.of(RecoveryError)  # the client that stayed is told too
        assert told.missed is None
        assert watcher.received == list(range(30))
        print(
            f"\nshared history ({history_broker.kind}) after a broker restart: sent={pub.sent} "
            f"received={len(feed.received)} reported=unknown (away client), watcher received="
            f"{len(watcher.received)} told={told.missed}"
        )
        for one in (feed, watcher):
            await one.client.close()


def test_a_history_broker_needs_a_history_size(history_broker: BrokerServer) -> None:
    with pytest.raises(ConfigError, match="history_size"):
        Server(broker=make_broker(history_broker.kind, history_broker.url, history=True))


async def lose_broker(broker: BrokerServer) -> str:
    """Cut the replicas off the broker, its history kept: Redis closes their subscribing connections,
    NATS restarts (its JetStream store stays). Returns what was done."""
    if broker.kind == "nats":
        broker.kill()
        broker.start()
        return "nats-server restarted, its store kept"
    from redis.asyncio import Redis

    redis = Redis.from_url(broker.url)
    try:
        killed: int = await redis.client_kill_filter(_type="pubsub")
    finally:
        await redis.aclose()
    return f"{killed} Redis connections killed"


async def test_replicas_that_lost_the_broker_catch_up_from_its_history(history_broker: BrokerServer) -> None:
    """Both replicas lose their broker connection mid-stream; A buffers, B misses: both clients miss nothing."""
    a, b = replica(history_broker, 10_000), replica(history_broker, 10_000)
    errors: list[BaseException] = []
    for server in (a, b):
        server.on_error(errors.append)
    async with a, b:
        on_a, on_b = Feed(Client(server=a.addr, reconnect=FAST)), Feed(Client(server=b.addr, reconnect=FAST))
        await on_a.start(a, "feed")
        await on_b.start(b, "feed")
        brokers = [server.config.broker for server in (a, b)]
        changed = asyncio.Event()
        for broker in brokers:
            assert broker is not None
            broker.on_state_change(lambda state: changed.set())
        pub = Publisher(a)
        await pub.publish(200)
        await wait_until(lambda: len(on_b.received) >= 50, on_b.changed)
        killed = await lose_broker(history_broker)
        await pub.publish(200)  # while the replicas reconnect: A's wait in its buffer, then are numbered
        await wait_until(lambda: all(broker.connected for broker in brokers if broker), changed)
        await pub.publish(200)
        for one in (on_a, on_b):
            await settled(one, pub.sent)
            check(pub.sent, one)
            assert one.received == list(range(pub.sent))
            assert one.reported == 0
            assert one.recoveries == []
        lost = [err for err in errors if "connection lost" in str(err)]
        assert lost, "the replicas did lose the broker"
        print(
            f"\nshared history ({history_broker.kind}), {killed} mid-stream: "
            f"sent={pub.sent} received on A={len(on_a.received)} on B={len(on_b.received)} reported=0 "
            f"(server errors: {len(errors)})"
        )
        for one in (on_a, on_b):
            await one.client.close()


async def test_the_cost_of_a_history_in_the_broker(history_broker: BrokerServer) -> None:
    """Timing only (no assert on speed): publications to a client of the same replica, through the broker."""
    count = 3000
    figures: dict[str, float] = {}
    for label, history in (("no history", False), ("history in the broker", True)):
        broker = make_broker(history_broker.kind, history_broker.url, history=history)
        server = Server(broker=broker, history_size=1000 if history else 0)
        server.register_message(MessageV1)
        async with server:
            feed = Feed(Client(server=server.addr))
            await feed.start(server, f"cost.{label}")
            pub = Publisher(server, f"cost.{label}")
            started = time.perf_counter()
            await pub.publish(count, pace=False)
            await settled(feed, count)
            figures[label] = (time.perf_counter() - started) / count * 1e6
            assert feed.received == list(range(count))
            await feed.client.close()
    print(
        f"\ncost per publication ({history_broker.kind}, {count} to one client, publish to delivery): "
        + ", ".join(f"{label} {us:.1f} us" for label, us in figures.items())
    )


@pytest.mark.parametrize("kind", KINDS)
def test_the_catch_up_example_runs(kind: str) -> None:
    """examples/catch_up.py (shown in docs/pubsub.md): a replica dies, its client loses nothing on the next."""
    require_binary(kind)
    done = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "catch_up.py"), kind],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    out = done.stdout
    assert "[client] back on B': 3 replayed, 0 lost; got ['1', '2', '3', '4']" in out
    assert out.strip().endswith("done"), out
    print(f"\ncatch_up.py ({kind}): " + out.strip().splitlines()[-4].strip())


async def test_go_wire_clients_see_exactly_gos_wire(history_broker: BrokerServer) -> None:
    """Without the extensions (a Go client's wire), a delivery numbered by the broker has no header of ours."""
    a, b = replica(history_broker, 10), replica(history_broker, 10)
    async with a, b:
        client = Client(server=b.addr, extensions=False)
        got: asyncio.Queue[Message[MessageV1]] = asyncio.Queue()

        async def on_feed(sender: Sender, msg: Message[MessageV1]) -> None:
            await got.put(msg)

        client.handle(MessageV1, on_feed)
        subscribed = asyncio.Event()
        b.on_subscribe(lambda topic: subscribed.set())
        await client.connect(timeout=WAIT)
        await client.subscribe("feed")
        await asyncio.wait_for(subscribed.wait(), WAIT)
        await a.publish("feed", MessageV1(message="x"))
        msg = await asyncio.wait_for(got.get(), WAIT)
        assert (msg.payload.message, msg.headers, msg.metadata.topic) == ("x", {}, "")
        await client.close()


async def test_a_restarted_nats_server_keeps_the_history() -> None:
    """JetStream's store survives a restart: the client that was away catches up exactly, nothing reported."""
    nats = start_broker("nats")
    try:
        a, b = replica(nats, 1000), replica(nats, 1000)
        async with a, b, balanced(b) as balancer:
            feed = Feed(Client(server=balancer.addr, reconnect=FAST))
            await feed.start(b, "feed")
            watcher = Feed(Client(server=a.addr, reconnect=FAST))
            await watcher.start(a, "feed")
            pub = Publisher(a)
            await pub.publish(10)
            await settled(feed, 10)
            await away(feed, balancer, a)
            brokers = [server.config.broker for server in (a, b)]
            changed = asyncio.Event()
            for broker in brokers:
                assert broker is not None
                broker.on_state_change(lambda state: changed.set())
            nats.kill()
            await wait_until(lambda: not any(broker.connected for broker in brokers if broker), changed)
            nats.start()  # the same store
            await wait_until(lambda: all(broker.connected for broker in brokers if broker), changed)
            await pub.publish(10)
            await settled(watcher, 20)
            balancer.release()
            await wait_until(lambda: bool(feed.recoveries), feed.changed)
            await pub.publish(10)
            for one in (feed, watcher):
                await settled(one, pub.sent)
                check(pub.sent, one)
                assert one.received == list(range(30))
                assert one.reported == 0
            assert feed.recoveries == [("feed", 10, None)]
            print(
                f"\nshared history (nats) across a nats-server restart: sent={pub.sent} "
                f"received={len(feed.received)} replayed=10 reported=0"
            )
            for one in (feed, watcher):
                await one.client.close()
    finally:
        nats.remove()
