"""Subscriptions as typed async iterators, over real loopback connections."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest

from generated.chat.v1 import chat_goomerang as chat
from generated.chat.v1.chat_pb2 import Said
from generated.goomerang.example.messages_pb2 import MessageV1, ReplyV1
from goomerang_runtime import (
    Client,
    ConfigError,
    ConnectionLostError,
    Message,
    NotRunningError,
    ReconnectFailedError,
    ReconnectPolicy,
    Sender,
    Server,
    SlowConsumerError,
    SlowSubscriptionError,
    Status,
    Subscription,
    TopicError,
    UsageError,
)

from .helpers import WAIT, Collector, Counter

GIVE_UP_AFTER_TWO = ReconnectPolicy(initial_delay=0.01, max_delay=0.05, jitter=0.0, max_attempts=2)


class Watched:
    """A server whose subscribe and unsubscribe commands the test can await."""

    def __init__(self) -> None:
        self.server = Server()
        self.subscribed = Counter()
        self.unsubscribed: list[str] = []
        self.unsubscribes = Counter()
        self.server.on_subscribe(lambda topic: self.subscribed.hit())
        self.server.on_unsubscribe(self._unsubscribe)
        self.server.register_message(ReplyV1, Said)
        self.server.handle(MessageV1, self._echo)

    def _unsubscribe(self, topic: str) -> None:
        self.unsubscribed.append(topic)
        self.unsubscribes.hit()

    @staticmethod
    async def _echo(sender: Sender, msg: Message[MessageV1]) -> None:
        await sender.send(ReplyV1(message=msg.payload.message))


@asynccontextmanager
async def running() -> AsyncIterator[Watched]:
    watched = Watched()
    async with watched.server, asyncio.timeout(WAIT):
        yield watched


async def round_trip(client: Client) -> None:
    """Once this returns, the server handled every command the client sent before."""
    await client.send_sync(MessageV1(message="sync"), timeout=WAIT, expect=ReplyV1)


async def test_an_iterator_yields_typed_publications_in_order_and_unsubscribes_on_exit() -> None:
    async with running() as w, Client(server=w.server.addr) as client:
        async with client.subscription("rooms.*", ReplyV1) as sub:
            assert sub.active
            assert client.subscriptions == {"rooms.*"}
            await w.subscribed.wait_for(1)
            for n in range(5):
                await w.server.publish(f"rooms.r{n}", ReplyV1(message=str(n)))
            got = [(msg.metadata.topic, msg.payload.message) async for msg in _take(sub, 5)]
            assert got == [(f"rooms.r{n}", str(n)) for n in range(5)]
        assert not sub.active
        await w.unsubscribes.wait_for(1)
        assert w.unsubscribed == ["rooms.*"]
        assert client.subscriptions == frozenset()


async def _take(sub: Subscription[ReplyV1], count: int) -> AsyncIterator[Message[ReplyV1]]:
    async for msg in sub.messages:
        yield msg
        count -= 1
        if not count:
            return


async def test_each_matching_subscription_gets_each_publication_once_beside_callbacks() -> None:
    heard: list[str] = []
    done = Counter()

    async def on_reply(sender: Sender, msg: Message[ReplyV1]) -> None:
        heard.append(msg.payload.message)
        done.hit()

    async with running() as w, Client(server=w.server.addr) as client:
        await client.subscribe("rooms.go", ReplyV1, on_reply)
        async with client.subscription("rooms.*", ReplyV1) as wide, client.subscription("rooms.>", ReplyV1) as all_:
            await w.subscribed.wait_for(3)
            await w.server.publish("rooms.go", ReplyV1(message="hi"))
            await w.server.publish("rooms.go.deep", ReplyV1(message="deep"))
            assert [m.payload.message async for m in _take(all_, 2)] == ["hi", "deep"]
            assert [m.payload.message async for m in _take(wide, 1)] == ["hi"]
            await done.wait_for(1)
            await round_trip(client)
            assert wide.pending == 0
            assert heard == ["hi"]


async def test_two_iterators_on_one_topic_share_the_server_subscription() -> None:
    async with running() as w, Client(server=w.server.addr) as client:
        first = client.subscription("news", ReplyV1)
        async with client.subscription("news", ReplyV1) as second:
            await w.subscribed.wait_for(1)
            async with first:
                await w.server.publish("news", ReplyV1(message="both"))
                assert (await anext(first)).payload.message == "both"
            # The first left; the topic is still subscribed for the second.
            await round_trip(client)
            assert w.unsubscribed == []
            await w.server.publish("news", ReplyV1(message="second only"))
            assert [m.payload.message async for m in _take(second, 2)] == ["both", "second only"]
        await w.unsubscribes.wait_for(1)
        assert w.subscribed.count == 1
        assert w.unsubscribed == ["news"]


async def test_a_reader_that_falls_behind_ends_as_a_slow_consumer_and_nothing_else_does() -> None:
    errors = Collector()
    async with running() as w:
        client = Client(server=w.server.addr)
        client.on_error(errors)
        async with client:
            async with (
                client.subscription("feed", ReplyV1, max_pending=3) as slow,
                client.subscription("feed", ReplyV1) as fast,
            ):
                await w.subscribed.wait_for(1)
                for n in range(10):
                    await w.server.publish("feed", ReplyV1(message=str(n)))
                [error] = await errors.wait_for(SlowSubscriptionError)
                assert isinstance(error, SlowConsumerError)
                assert (error.topic, error.kind, error.queued) == ("feed", "goomerang.example.ReplyV1", 3)
                assert not slow.active
                # What was buffered is still read, then the error.
                assert [m.payload.message async for m in _take(slow, 3)] == ["0", "1", "2"]
                with pytest.raises(SlowSubscriptionError):
                    await anext(slow)
                # The other subscription and the connection go on.
                assert [m.payload.message async for m in _take(fast, 10)] == [str(n) for n in range(10)]
                await round_trip(client)
                assert client.status is Status.RUNNING
            await w.unsubscribes.wait_for(1)
            await round_trip(client)
            assert w.unsubscribed == ["feed"]  # once, when the last subscription of the topic left


async def test_the_byte_bound_ends_a_subscription_too_and_a_lone_large_message_still_fits() -> None:
    errors = Collector()
    async with running() as w:
        client = Client(server=w.server.addr)
        client.on_error(errors)
        async with client, client.subscription("big", ReplyV1, max_pending_bytes=100) as sub:
            await w.subscribed.wait_for(1)
            await w.server.publish("big", ReplyV1(message="x" * 500))
            await w.server.publish("big", ReplyV1(message="y"))
            [error] = await errors.wait_for(SlowSubscriptionError)
            assert error.queued == 1
            assert error.queued_bytes > 100
            assert len((await anext(sub)).payload.message) == 500
            with pytest.raises(SlowSubscriptionError):
                await anext(sub)
            await w.unsubscribes.wait_for(1)  # it was the topic's only subscription: unsubscribed at once
            assert w.unsubscribed == ["big"]


async def test_the_iterator_stops_when_the_client_closes_and_on_a_clean_server_shutdown() -> None:
    async with running() as w:
        client = Client(server=w.server.addr)
        await client.connect()
        async with client.subscription("t", ReplyV1) as sub:
            reader = asyncio.ensure_future(_all(sub))
            await w.subscribed.wait_for(1)
            await w.server.publish("t", ReplyV1(message="last"))
            await round_trip(client)
            await client.close()
            assert await reader == ["last"]
        other = Client(server=w.server.addr)
        await other.connect()
        sub = other.subscription("t", ReplyV1)
        await sub.__aenter__()
        reader = asyncio.ensure_future(_all(sub))
        await w.subscribed.wait_for(2)
    # The server shut down (close code 1000): the iterator ended without an error.
    assert await reader == []
    await other.wait_closed()


async def _all(sub: Subscription[ReplyV1]) -> list[str]:
    return [msg.payload.message async for msg in sub]


async def test_a_lost_connection_ends_the_iterator_with_the_error() -> None:
    async with running() as w, Client(server=w.server.addr) as client, client.subscription("t", ReplyV1) as sub:
        await w.subscribed.wait_for(1)
        await w.server.disconnect(w.server.peers[0].id, "revoked")
        with pytest.raises(ConnectionLostError):
            await anext(sub)


async def test_a_reconnecting_client_keeps_its_iterators_until_it_gives_up() -> None:
    running_again = asyncio.Event()
    errors = Collector()
    async with running() as w:
        client = Client(server=w.server.addr, reconnect=GIVE_UP_AFTER_TWO)
        client.on_error(errors)

        @client.on_status_change
        def on_status(status: Status) -> None:
            if status is Status.RUNNING:
                running_again.set()

        await client.connect()
        sub = client.subscription("t", ReplyV1)
        await sub.__aenter__()
        await w.subscribed.wait_for(1)
        running_again.clear()
        await w.server.disconnect(w.server.peers[0].id, "kicked")
        await running_again.wait()
        await w.subscribed.wait_for(2)  # made again on the new connection
        await w.server.publish("t", ReplyV1(message="after reconnecting"))
        assert (await anext(sub)).payload.message == "after reconnecting"
    # The server is gone: two failed attempts, then the iterator raises why.
    await errors.wait_for(ReconnectFailedError)
    with pytest.raises(ReconnectFailedError):
        await anext(sub)
    await sub.close()


async def test_unsubscribe_ends_the_iterators_of_the_topic() -> None:
    async with running() as w, Client(server=w.server.addr) as client, client.subscription("t", ReplyV1) as sub:
        await w.subscribed.wait_for(1)
        await w.server.publish("t", ReplyV1(message="before"))
        await round_trip(client)
        await client.unsubscribe("t")
        assert await _all(sub) == ["before"]


async def test_typed_topics_have_the_iterator_form_within_their_family() -> None:
    async with running() as w, Client(server=w.server.addr) as client:
        rooms = chat.RoomsTopic(client)
        with pytest.raises(TopicError):
            rooms.subscription("halls.go")
        async with rooms.subscription("rooms.go") as sub:
            await w.subscribed.wait_for(1)
            await chat.RoomsTopic(w.server).publish("rooms.go", Said(room="go", user="ana", text="hi"))
            msg = await anext(sub)
            assert isinstance(msg.payload, Said)
            assert (msg.metadata.topic, msg.payload.text) == ("rooms.go", "hi")


async def test_misuse_is_refused() -> None:
    client = Client(server="127.0.0.1:1")
    with pytest.raises(ConfigError) as info:
        client.subscription("t", ReplyV1, max_pending=0, max_pending_bytes=-1)
    assert set(info.value.problems) == {"max_pending", "max_pending_bytes"}
    sub = client.subscription("t", ReplyV1)
    with pytest.raises(UsageError, match="before iterating"):
        await anext(sub)
    with pytest.raises(NotRunningError):
        await sub.__aenter__()
    async with running() as w, Client(server=w.server.addr) as connected:
        with pytest.raises(TopicError):
            await connected.subscription("a.>.b", ReplyV1).__aenter__()
        entered = connected.subscription("t", ReplyV1)
        async with entered:
            with pytest.raises(UsageError, match="entered already"):
                await entered.__aenter__()
        assert connected.subscriptions == frozenset()
