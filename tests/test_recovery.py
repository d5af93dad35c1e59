"""Catching up after a reconnect (the ``recovery`` extension): nothing silently lost within the history.

A server with ``history_size`` numbers each publication of a topic; a client
cut off mid-stream reconnects, names the last position it saw, and gets what
followed (in order, once) before live deliveries; what left the history is
reported as a :class:`RecoveryError`. Each test counts sent, received and
reported: ``sent == received + reported``.
"""

from __future__ import annotations

import asyncio
import tracemalloc

import pytest

from generated.goomerang.example.messages_pb2 import MessageV1
from goomerang_runtime import (
    Client,
    ConfigError,
    Message,
    ReconnectPolicy,
    RecoveryError,
    Sender,
    Server,
    SlowConsumerError,
    Status,
)
from goomerang_runtime._history import History, parse_position

from .balancer import Balancer
from .brokers import BrokerServer
from .brokers import broker_server as broker_server
from .helpers import WAIT, Collector, wait_until
from .replica import make_broker

FAST = ReconnectPolicy(initial_delay=0.02, max_delay=0.1, multiplier=2.0, jitter=0.5)


class Feed:
    """A client subscribed to one topic that records what it receives and what it is told it lost."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.received: list[int] = []
        self.errors = Collector()
        self.recoveries: list[tuple[str, int, RecoveryError | None]] = []
        self.changed = asyncio.Event()
        self.running = asyncio.Event()
        client.on_error(self.errors)
        client.on_recovery(self._recovered)
        client.on_status_change(lambda status: self.running.set() if status is Status.RUNNING else None)

    async def start(self, server: Server, topic: str) -> None:
        """Connect and subscribe; returns once the server has the subscription."""
        subscribed = asyncio.Event()
        server.on_subscribe(lambda name: subscribed.set())

        async def on_feed(sender: Sender, msg: Message[MessageV1]) -> None:
            self.received.append(int(msg.payload.message))  # no await before: the order received
            self.changed.set()

        await self.client.connect(timeout=WAIT)
        await self.client.subscribe(topic, MessageV1, on_feed)
        await asyncio.wait_for(subscribed.wait(), WAIT)

    def _recovered(self, topic: str, replayed: int, error: RecoveryError | None) -> None:
        self.recoveries.append((topic, replayed, error))
        self.changed.set()

    @property
    def reported(self) -> int:
        return sum(err.missed or 0 for err in self.errors.of(RecoveryError))

    def cut(self) -> None:
        """Abort the client's TCP connection, as a network failure would."""
        link = self.client._link  # pyright: ignore[reportPrivateUsage]
        assert link is not None
        self.running.clear()
        link.abort()


class Publisher:
    """Publishes numbered messages of `size` characters on `topic`; `sent` counts them."""

    def __init__(self, server: Server, topic: str = "feed", size: int = 0) -> None:
        self.server = server
        self.topic = topic
        self.size = size
        self.sent = 0

    async def __call__(self, count: int, pause: bool = False) -> None:
        for _ in range(count):
            await self.server.publish(self.topic, MessageV1(message=str(self.sent).rjust(self.size)))
            self.sent += 1
            if pause:
                await asyncio.sleep(0)  # let the loop run between publications


async def away(server: Server, size: int) -> tuple[Feed, Publisher]:
    """A client subscribed to "feed" that got 10 publications of `size` characters, then lost its connection."""
    feed = Feed(Client(server=server.addr, reconnect=FAST))
    await feed.start(server, "feed")
    publish = Publisher(server, size=size)
    await publish(10)
    await wait_until(lambda: len(feed.received) == 10, feed.changed)
    feed.cut()
    return feed, publish


def check(sent: int, feed: Feed) -> None:
    assert feed.received == list(dict.fromkeys(feed.received)), "duplicates"
    assert feed.received == sorted(feed.received), "out of order"
    assert sent == len(feed.received) + feed.reported


async def test_a_client_cut_mid_stream_gets_everything_back() -> None:
    """A publisher streams while the client's connection is aborted; after recovery nothing is missing."""
    async with Server(history_size=10_000) as server:
        feed = Feed(Client(server=server.addr, reconnect=FAST))
        await feed.start(server, "feed")
        sent = 0
        recovered = asyncio.Event()
        feed.client.on_recovery(lambda topic, replayed, error: recovered.set())

        async def publish(count: int) -> None:
            nonlocal sent
            for _ in range(count):
                await server.publish("feed", MessageV1(message=str(sent)))
                sent += 1
                await asyncio.sleep(0)  # a stream, not a burst: let the loop run between publications

        async def stream() -> None:
            await publish(300)
            async with asyncio.timeout(WAIT):  # the stream goes on while the client is away
                while not recovered.is_set():
                    await publish(10)
            await publish(300)

        streaming = asyncio.create_task(stream())
        await wait_until(lambda: len(feed.received) >= 100, feed.changed)
        feed.cut()
        before = len(feed.received)
        await asyncio.wait_for(streaming, WAIT)
        await wait_until(lambda: len(feed.received) + feed.reported >= sent, feed.changed)
        check(sent, feed)
        assert feed.reported == 0
        assert feed.received == list(range(sent))
        ((topic, replayed, error),) = feed.recoveries
        assert topic == "feed"
        assert error is None
        assert replayed > 0
        print(
            f"\nrecovery mid-stream: sent={sent} received={len(feed.received)} (before the cut {before}, "
            f"replayed {replayed}, live after {len(feed.received) - before - replayed}) reported=0"
        )
        await feed.client.close()


async def test_publications_of_another_replica_are_recovered(broker_server: BrokerServer) -> None:
    """Replica A streams through NATS or Redis; B's client is cut, comes back to B and misses nothing.

    B's history holds what the broker brought it too. (Coming back to another
    replica is reported as an unknown loss: histories are not shared yet.)
    """
    a = Server(broker=make_broker(broker_server.kind, broker_server.url), history_size=10_000)
    b = Server(broker=make_broker(broker_server.kind, broker_server.url), history_size=10_000)
    for server in (a, b):
        server.register_message(MessageV1)
    async with a, b:
        feed = Feed(Client(server=b.addr, reconnect=FAST))
        await feed.start(b, "feed")
        sent = 0
        recovered = asyncio.Event()
        feed.client.on_recovery(lambda topic, replayed, error: recovered.set())

        async def publish(count: int) -> None:
            nonlocal sent
            for _ in range(count):
                await a.publish("feed", MessageV1(message=str(sent)))
                sent += 1
                await asyncio.sleep(0)

        async def stream() -> None:
            await publish(300)
            async with asyncio.timeout(WAIT):
                while not recovered.is_set():
                    await publish(10)
            await publish(300)

        streaming = asyncio.create_task(stream())
        await wait_until(lambda: len(feed.received) >= 100, feed.changed)
        feed.cut()
        await asyncio.wait_for(streaming, WAIT)
        await wait_until(lambda: len(feed.received) + feed.reported >= sent, feed.changed)
        check(sent, feed)
        assert feed.received == list(range(sent))
        ((_, replayed, error),) = feed.recoveries
        assert error is None
        print(
            f"\nrecovery across replicas ({broker_server.kind}): sent={sent} received={len(feed.received)} "
            f"replayed={replayed} reported=0"
        )
        await feed.client.close()


async def test_what_left_the_history_is_reported_exactly() -> None:
    """History of 50, a gap of 200: 50 come back, 150 are reported with their offsets."""
    async with Server(history_size=50) as server:
        feed = Feed(Client(server=server.addr, reconnect=FAST))
        await feed.start(server, "feed")
        sent = 0

        async def publish(count: int) -> None:
            nonlocal sent
            for _ in range(count):
                await server.publish("feed", MessageV1(message=str(sent)))
                sent += 1

        await publish(100)
        await wait_until(lambda: len(feed.received) == 100, feed.changed)
        feed.cut()
        await publish(200)  # no await yields without a broker: all of it before the client is back
        await wait_until(lambda: bool(feed.recoveries), feed.changed)  # replayed: what follows is live
        await publish(100)
        await wait_until(lambda: len(feed.received) + feed.reported >= sent, feed.changed)
        check(sent, feed)
        (err,) = feed.errors.of(RecoveryError)
        assert (err.topic, err.missed_from, err.missed_to, err.missed) == ("feed", 101, 250, 150)
        assert feed.received == [*range(100), *range(250, 400)]
        assert feed.recoveries == [("feed", 50, err)]
        print(f"\nrecovery beyond the bound: sent={sent} received={len(feed.received)} reported={feed.reported}")
        await feed.client.close()


async def test_the_servers_history_is_bounded_in_bytes() -> None:
    """`history_max_bytes` bounds what is kept whatever `history_size` allows; what went is reported."""
    bound = 32 * 1024
    async with Server(history_size=10_000, history_max_bytes=bound) as server:
        feed, publish = await away(server, 1000)  # 1 KB each
        await publish(200)  # 200 KB: far past the bound
        await wait_until(lambda: bool(feed.recoveries), feed.changed)
        await wait_until(lambda: len(feed.received) + feed.reported >= publish.sent, feed.changed)
        check(publish.sent, feed)
        (err,) = feed.errors.of(RecoveryError)
        ((topic, replayed, reported),) = feed.recoveries
        assert (topic, reported) == ("feed", err)
        assert 0 < replayed < bound // 1000  # the newest ones, as many as fit
        assert (err.missed_from, err.missed_to) == (11, 210 - replayed)
        assert feed.received[-replayed:] == list(range(210 - replayed, 210))
        await feed.client.close()


async def test_a_replay_larger_than_the_send_queue_follows_as_the_client_drains() -> None:
    """10 MB to catch up through a 64-frame send queue, while publications go on: all of it, once, in order."""
    server = Server(history_size=10_000, send_queue_size=64)
    server_errors = Collector()
    server.on_error(server_errors)
    gone = asyncio.Event()
    server.on_disconnect(lambda peer: gone.set())
    async with server:
        feed, publish = await away(server, 2000)
        await asyncio.wait_for(gone.wait(), WAIT)  # else the old connection overflows, a slow consumer indeed
        await publish(5_000)  # far more than the send queue holds
        await asyncio.wait_for(feed.running.wait(), WAIT)
        await publish(1_000, pause=True)  # while the client catches up
        await wait_until(lambda: len(feed.received) + feed.reported >= publish.sent, feed.changed)
        check(publish.sent, feed)
        assert feed.received == list(range(publish.sent))
        ((topic, replayed, error),) = feed.recoveries
        assert (topic, error) == ("feed", None)
        assert replayed >= 5_000
        assert server_errors.of(SlowConsumerError) == []
        print(
            f"\nreplay through a 64-frame queue: sent={publish.sent} received={len(feed.received)} replayed={replayed}"
        )
        await feed.client.close()


async def test_a_client_draining_slower_than_the_history_turns_is_told_what_it_lost() -> None:
    """A catch-up the history outruns: the client is dropped as a slow consumer and told the exact loss."""
    server = Server(history_size=300, send_queue_size=16)
    server_errors = Collector()
    server.on_error(server_errors)
    async with server:
        balancer = Balancer(server.addr)
        await balancer.start()
        try:
            feed = Feed(Client(server=balancer.addr, reconnect=FAST))
            await feed.start(server, "feed")
            publish = Publisher(server, size=2000)
            await publish(10)
            await wait_until(lambda: len(feed.received) == 10, feed.changed)
            feed.cut()
            await publish(300)
            await asyncio.wait_for(feed.running.wait(), WAIT)
            balancer.stall()  # the client reads nothing while the history turns over 20 times
            await publish(6_000, pause=True)
            balancer.flow()
            await wait_until(lambda: len(feed.received) + feed.reported >= publish.sent, feed.changed)
            check(publish.sent, feed)
            assert feed.reported > 0
            assert server_errors.of(SlowConsumerError)
            print(
                f"\nhistory outran the catch-up: sent={publish.sent} received={len(feed.received)} "
                f"reported={feed.reported} slow consumer {len(server_errors.of(SlowConsumerError))}x"
            )
            await feed.client.close()
        finally:
            await balancer.close()


def test_a_history_bound_below_the_minimum_is_refused() -> None:
    with pytest.raises(ConfigError, match="history_max_bytes"):
        Server(history_size=10, history_max_bytes=1024)


async def test_a_gap_before_the_first_publication_is_recovered() -> None:
    """A client that saw nothing yet still catches up: subscribing names the current position."""
    async with Server(history_size=100) as server:
        feed = Feed(Client(server=server.addr, reconnect=FAST))
        await feed.start(server, "quiet")
        other = asyncio.Event()

        async def on_other(sender: Sender, msg: Message[MessageV1]) -> None:
            other.set()

        subscribed = asyncio.Event()
        server.on_subscribe(lambda topic: subscribed.set() if topic == "before" else None)
        await feed.client.subscribe("before", MessageV1, on_other)
        await asyncio.wait_for(subscribed.wait(), WAIT)
        # Another topic (not this one's offsets), and a barrier: the server writes in order, so once
        # this arrives the client has read the position its "quiet" subscription was given.
        await server.publish("before", MessageV1(message="0"))
        await asyncio.wait_for(other.wait(), WAIT)
        feed.cut()
        for i in range(5):
            await server.publish("quiet", MessageV1(message=str(i)))
        await wait_until(lambda: len(feed.received) >= 5, feed.changed)
        check(5, feed)
        assert feed.received == [0, 1, 2, 3, 4]
        assert feed.reported == 0
        await feed.client.close()


async def test_a_cut_before_the_position_arrived_is_reported() -> None:
    """Cut before the server named where the subscription began: what was missed is unknown, and said."""
    async with Server(history_size=100) as server:
        client = Client(server=server.addr, reconnect=FAST)
        errors = Collector()
        client.on_error(errors)
        await client.connect(timeout=WAIT)
        await client.subscribe("quiet")
        link = client._link  # pyright: ignore[reportPrivateUsage]
        assert link is not None
        link.abort()  # no await since subscribe: its position cannot have come back
        (err,) = await errors.wait_for(RecoveryError)
        assert err.topic == "quiet"
        assert err.missed is None
        assert "position" in str(err)
        await client.close()


async def test_a_restarted_server_reports_an_unknown_loss() -> None:
    """Another server instance has another epoch: the loss is reported, nothing is replayed twice."""
    first = Server(history_size=100)
    await first.start()
    port = int(first.addr.rsplit(":", 1)[1])
    feed = Feed(Client(server=first.addr, reconnect=FAST))
    await feed.start(first, "feed")
    await first.publish("feed", MessageV1(message="0"))
    await wait_until(lambda: feed.received == [0], feed.changed)
    feed.running.clear()
    await first.shutdown()
    async with Server(listen=f"127.0.0.1:{port}", history_size=100) as second:
        (err,) = await feed.errors.wait_for(RecoveryError)
        assert err.topic == "feed"
        assert err.missed is None
        assert "another server instance" in str(err)
        await second.publish("feed", MessageV1(message="1"))
        await wait_until(lambda: feed.received == [0, 1], feed.changed)
        await feed.client.close()


async def test_wildcard_subscriptions_are_reported_not_recovered() -> None:
    """A pattern may match topics the client never saw: its loss is reported, not guessed."""
    async with Server(history_size=100) as server:
        feed = Feed(Client(server=server.addr, reconnect=FAST))
        await feed.start(server, "rooms.*")
        await server.publish("rooms.a", MessageV1(message="0"))
        await wait_until(lambda: feed.received == [0], feed.changed)
        feed.cut()
        (err,) = await feed.errors.wait_for(RecoveryError)
        assert err.topic == "rooms.*"
        assert err.missed is None
        assert "wildcard" in str(err)
        await feed.client.close()


async def test_go_wire_clients_see_no_position() -> None:
    """Without the extension (a Go client's wire) deliveries are exactly as before."""
    async with Server(history_size=10) as server:
        client = Client(server=server.addr, extensions=False)
        got: asyncio.Queue[Message[MessageV1]] = asyncio.Queue()

        async def on_feed(sender: Sender, msg: Message[MessageV1]) -> None:
            await got.put(msg)

        client.handle(MessageV1, on_feed)
        subscribed = asyncio.Event()
        server.on_subscribe(lambda topic: subscribed.set())
        await client.connect(timeout=WAIT)
        await client.subscribe("feed")
        await asyncio.wait_for(subscribed.wait(), WAIT)
        await server.publish("feed", MessageV1(message="x"))
        msg = await asyncio.wait_for(got.get(), WAIT)
        assert msg.headers == {}
        assert msg.metadata.topic == ""
        await client.close()


def test_history_bounds_and_expiry() -> None:
    now = [0.0]
    history = History(3, ttl=10.0, clock=lambda: now[0])
    for i in range(5):
        assert history.append("t", bytes([i])) == i + 1
    whole = history.since("t", history.epoch, 0)
    assert [n for n, _ in whole.frames] == [3, 4, 5]
    assert (whole.missed_from, whole.missed_to) == (1, 2)
    assert history.since("t", history.epoch, 4).frames == [(5, b"\x04")]
    assert history.since("t", history.epoch, 5).missed == 0
    assert history.since("t", "other", 1).unknown
    now[0] = 11.0
    expired = history.since("t", history.epoch, 2)
    assert expired.frames == []
    assert (expired.missed_from, expired.missed_to, expired.missed) == (3, 5, 3)
    assert parse_position("ab:12") == ("ab", 12)
    assert parse_position("12") is None
    assert parse_position("ab:x") is None
    assert parse_position(":1") is None
    with pytest.raises(ValueError, match="at least 1"):
        History(0)


def test_a_reset_topic_gets_a_new_epoch() -> None:
    """A history with holes (the broker stopped bringing the topic) never replays as if whole."""
    history = History(10)
    history.append("t", b"a")
    history.append("u", b"b")
    old = history.epoch_of("t")
    history.reset_matching(lambda topic: topic == "t")
    assert history.epoch_of("t") != old
    assert history.since("t", old, 0).unknown
    assert history.epoch_of("u") == history.epoch  # other topics keep theirs
    assert history.append("t", b"c") == 2
    assert history.position("t") == f"{history.epoch_of('t')}:2"
    assert history.since("t", history.epoch_of("t"), 1).frames == [(2, b"c")]


def test_the_history_is_bounded_in_bytes_across_topics() -> None:
    """Many topics cannot grow it past `max_bytes`: the oldest frames give way, the offsets stay known."""
    bound = 8 * 1024 * 1024
    tracemalloc.start()
    try:
        history = History(10, max_bytes=bound)
        before = tracemalloc.get_traced_memory()[0]
        for n in range(100_000):  # 100 MB of frames, spread over 2,000 topics
            history.append(f"room.{n % 2_000}", bytes(1000))
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert history.held_bytes <= bound
    assert held <= bound * 1.5, f"{held:,} bytes held"
    # The newest publication is held; what gave way is reported, never replayed as if whole.
    for topic in ("room.1999", "room.0"):
        recovery = history.since(topic, history.epoch_of(topic), 0)
        assert recovery.frames[-1][0] == history.last(topic) == 50
        assert len(recovery.frames) + (recovery.missed or 0) == 50
        assert recovery.missed_from == 1


def test_a_topic_forgotten_for_the_bound_is_an_unknown_loss() -> None:
    """Once a topic's offsets are forgotten, its old positions are not mistaken for new ones."""
    history = History(10, max_bytes=20_000)
    history.append("old", b"x")
    seen = history.epoch_of("old"), history.last("old")
    for n in range(100):  # each topic costs its bookkeeping too: "old" is forgotten
        history.append(f"t{n}", b"y")
    assert history.last("old") == 0
    assert history.since("old", *seen).unknown
    assert history.append("old", b"z") == 1
    assert history.epoch_of("old") != seen[0]
    assert history.held_bytes <= 20_000


def test_a_frame_larger_than_the_bound_is_not_kept() -> None:
    history = History(10, max_bytes=20_000)
    history.append("t", b"a")
    assert history.append("t", bytes(40_000)) == 2
    recovery = history.since("t", history.epoch_of("t"), 0)
    assert recovery.frames == []
    assert (recovery.missed_from, recovery.missed_to) == (1, 2)
    assert history.held_bytes <= 20_000
