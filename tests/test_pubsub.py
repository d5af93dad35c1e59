"""Broadcast and publish/subscribe on one server, over real loopback sockets."""

from __future__ import annotations

import asyncio
import contextlib

import pytest
import websockets
from websockets.asyncio.client import connect as ws_connect

from generated.goomerang.example.messages_pb2 import PingPong, ReplyV1
from goomerang_runtime import (
    BroadcastResult,
    ConnectionLostError,
    MemoryBroker,
    Message,
    NotRunningError,
    PayloadDecodeError,
    SlowConsumerError,
    TopicError,
    UnknownKindError,
)
from goomerang_runtime._codec import (
    PUBLISH_KIND,
    TOPIC_HEADER,
    decode_frame,
    encode_broadcast,
    encode_frame,
    encode_publish,
    encode_subscribe,
)
from goomerang_runtime.protocol_pb2 import PublishCmd

from .helpers import OUR_PEER, WAIT, wait_until
from .inbox import Inbox, barrier, handlers_server, listening_client

REPLY = "goomerang.example.ReplyV1"


async def test_broadcast_reaches_all_100_clients_including_the_sender() -> None:
    server, errors = handlers_server()
    client_kinds: list[str] = []
    server.on_client_broadcast(client_kinds.append)
    hooked: list[tuple[str, list[BroadcastResult], float]] = []
    server.on_broadcast(lambda kind, results, duration: hooked.append((kind, results, duration)))
    async with server, contextlib.AsyncExitStack() as stack:
        pairs = [listening_client(server.addr) for _ in range(100)]
        await asyncio.gather(*(stack.enter_async_context(client) for client, _ in pairs))
        sender, _ = pairs[0]
        await sender.broadcast(Message(ReplyV1(message="to everyone")).set_header("Key", "Value"))
        for _, inbox in pairs:
            [msg] = await inbox.wait_for(1)
            assert msg.payload.message == "to everyone"
            assert msg.headers == {"Key": "Value"}
            assert not msg.metadata.is_sync
        assert client_kinds == [REPLY]

        results = await server.broadcast(Message(ReplyV1(message="from the server"), {"a": "b"}), timeout=WAIT)
        assert len(results) == 100
        assert {r.peer.id for r in results} == {p.id for p in server.peers}
        size = len(ReplyV1(message="from the server").SerializeToString())
        assert all(r.error is None and r.size == size and r.duration >= 0 for r in results)
        for _, inbox in pairs:
            msgs = await inbox.wait_for(2)
            assert msgs[1].payload.message == "from the server"
            assert msgs[1].headers == {"a": "b"}
        [(kind, hooked_results, duration)] = hooked
        assert kind == REPLY
        assert hooked_results == results
        assert duration >= 0
    assert errors.items == []


async def test_publish_reaches_only_subscribers_of_the_topic_with_headers() -> None:
    server, errors = handlers_server()
    subscribed: list[str] = []
    published: list[tuple[str, str]] = []
    server.on_subscribe(subscribed.append)
    server.on_publish(lambda topic, kind: published.append((topic, kind)))
    async with server:
        news, news_inbox = listening_client(server.addr)
        sports, sports_inbox = listening_client(server.addr)
        idle, idle_inbox = listening_client(server.addr)
        publisher, own_inbox = listening_client(server.addr)
        async with news, sports, idle, publisher:
            await news.subscribe("news")
            await sports.subscribe("sports")
            await publisher.subscribe("news")  # a publisher subscribed to its topic gets its publication
            for client in (news, sports, publisher):
                await barrier(client)
            assert sorted(subscribed) == ["news", "news", "sports"]
            assert news.subscriptions == frozenset({"news"})

            await publisher.publish("news", Message(ReplyV1(message="headline")).set_header("lang", "en"))
            # Markers: a client that got its marker got everything published before it.
            await publisher.publish("sports", ReplyV1(message="sports marker"))
            await publisher.broadcast(ReplyV1(message="everyone marker"))
            for inbox in (news_inbox, sports_inbox, idle_inbox, own_inbox):
                await inbox.wait_until("everyone marker")
            assert news_inbox.texts() == ["headline", "everyone marker"]
            assert news_inbox.messages[0].headers == {"lang": "en"}
            assert own_inbox.texts() == ["headline", "everyone marker"]
            assert sports_inbox.texts() == ["sports marker", "everyone marker"]
            assert idle_inbox.texts() == ["everyone marker"]
            assert published == [("news", REPLY), ("sports", REPLY)]

            await server.publish("news", Message(ReplyV1(message="server news"), {"from": "server"}))
            [*_, last] = await news_inbox.wait_for(3)
            assert (last.payload.message, last.headers) == ("server news", {"from": "server"})
    assert errors.items == []


async def test_a_subscribe_then_publish_from_one_client_keeps_its_order() -> None:
    server, _ = handlers_server()
    async with server:
        client, inbox = listening_client(server.addr)
        async with client:
            # No barrier: commands run in the read loop, in the order sent.
            await client.subscribe("mine")
            await client.publish("mine", ReplyV1(message="to myself"))
            assert (await inbox.wait_for(1))[0].payload.message == "to myself"


class RecordingBroker(MemoryBroker):
    """A memory broker that lets tests await the server's interest changes."""

    def __init__(self) -> None:
        super().__init__()
        self.interest: list[str] = []
        self.changed = asyncio.Event()

    async def subscribe(self, pattern: str) -> None:
        await super().subscribe(pattern)
        self.interest.append(f"+{pattern}")
        self.changed.set()

    def unsubscribe(self, pattern: str) -> None:
        super().unsubscribe(pattern)
        self.interest.append(f"-{pattern}")
        self.changed.set()

    async def wait_for(self, change: str) -> None:
        await wait_until(lambda: change in self.interest, self.changed)


async def test_unsubscribe_and_disconnect_stop_delivery() -> None:
    broker = RecordingBroker()
    server, errors = handlers_server(broker=broker)
    unsubscribed: list[str] = []
    server.on_unsubscribe(unsubscribed.append)
    async with server:
        stays, stays_inbox = listening_client(server.addr)
        leaves, leaves_inbox = listening_client(server.addr)
        goes, goes_inbox = listening_client(server.addr)
        async with stays, leaves:
            await goes.connect()
            for client in (stays, leaves, goes):
                await client.subscribe("t")
                await client.subscribe("end")
                await barrier(client)
            await goes.subscribe("only.*")
            await barrier(goes)
            await server.publish("t", ReplyV1(message="1"))
            for inbox in (stays_inbox, leaves_inbox, goes_inbox):
                await inbox.wait_until("1")

            await leaves.unsubscribe("t")
            await barrier(leaves)
            assert unsubscribed == ["t"]
            assert leaves.subscriptions == frozenset({"end"})
            await goes.close()
            # The closed connection left all its topics: the last subscriber of
            # only.* is gone, so the server dropped its interest at the broker.
            await broker.wait_for("-only.*")
            assert broker.interest == ["+t", "+end", "+only.*", "-only.*"]

            await server.publish("t", ReplyV1(message="2"))
            await server.publish("only.x", ReplyV1(message="nobody"))
            await server.publish("end", ReplyV1(message="end"))
            await stays_inbox.wait_until("end")
            await leaves_inbox.wait_until("end")
            assert stays_inbox.texts() == ["1", "2", "end"]
            assert leaves_inbox.texts() == ["1", "end"]
            assert goes_inbox.texts() == ["1"]
    assert errors.items == []


async def test_wildcard_subscriptions_over_sockets() -> None:
    server, errors = handlers_server()
    async with server:
        one, one_inbox = listening_client(server.addr)
        rest, rest_inbox = listening_client(server.addr)
        both, both_inbox = listening_client(server.addr)
        publisher, _ = listening_client(server.addr)
        async with one, rest, both, publisher:
            await one.subscribe("rooms.*")
            await rest.subscribe("rooms.>")
            await both.subscribe("rooms.*")
            await both.subscribe("rooms.go")  # overlaps rooms.*: still one copy per publication
            for client in (one, rest, both):
                await client.subscribe("end")
                await barrier(client)
            for topic in ("rooms.go", "rooms.go.dev", "rooms", "other.go"):
                await publisher.publish(topic, ReplyV1(message=topic))
            await publisher.publish("end", ReplyV1(message="end"))
            for inbox in (one_inbox, rest_inbox, both_inbox):
                await inbox.wait_until("end")
            assert one_inbox.texts() == ["rooms.go", "end"]
            assert rest_inbox.texts() == ["rooms.go", "rooms.go.dev", "end"]
            assert both_inbox.texts() == ["rooms.go", "end"]
            with pytest.raises(TopicError, match="literal"):
                await publisher.publish("rooms.*", ReplyV1())
            with pytest.raises(TopicError, match="last token"):
                await publisher.subscribe("a.>.b")
    assert errors.items == []


@pytest.mark.parametrize(
    ("offered", "extra"),
    [(None, {}), ("topic-header", {TOPIC_HEADER: "wire"})],
    ids=["go-client", "announces-topic-header"],
)
async def test_commands_on_the_wire_use_prefixed_headers_and_deliveries_are_plain_frames(
    offered: str | None, extra: dict[str, str]
) -> None:
    server, errors = handlers_server()
    headers = {"Goomerang-Extensions": offered} if offered else None
    async with server, ws_connect(server.url, additional_headers=headers) as ws:
        await ws.send(encode_subscribe("wire"))
        payload = ReplyV1(message="raw").SerializeToString()
        cmd = encode_publish("wire", Message(ReplyV1(message="raw")))[0]
        # Only `message-` prefixed outer headers reach subscribers, prefix stripped.
        frame = decode_frame(cmd)
        frame.headers.update({"message-a": "1", "unprefixed": "dropped"})
        await ws.send(frame.SerializeToString())
        got = decode_frame(await asyncio.wait_for(ws.recv(), WAIT))  # type: ignore[arg-type]
        # Exactly the publisher's headers; the topic too only for a client that asked for it.
        assert (got.kind, got.payload, dict(got.headers)) == (REPLY, payload, {"a": "1", **extra})
        assert (got.uuid, got.is_sync) == ("", False)
        await ws.send(encode_broadcast(Message(ReplyV1(message="raw"), {"b": "2"}))[0])
        got = decode_frame(await asyncio.wait_for(ws.recv(), WAIT))  # type: ignore[arg-type]
        assert (got.kind, dict(got.headers), got.is_sync) == (REPLY, {"b": "2"}, False)
    assert errors.items == []


async def test_bad_commands_are_reported_and_lose_nothing() -> None:
    server, errors = handlers_server()
    with pytest.raises(NotRunningError):
        await server.publish("t", ReplyV1())
    with pytest.raises(NotRunningError):
        await server.broadcast(ReplyV1())
    async with server, ws_connect(server.url, additional_headers=OUR_PEER) as ws:
        with pytest.raises(TopicError):
            await server.publish("", ReplyV1())
        await ws.send(encode_subscribe("a.>.b"))
        await ws.send(encode_subscribe("ok"))
        await ws.send(encode_publish("ok.*", Message(ReplyV1()))[0])
        await ws.send(encode_frame(PUBLISH_KIND, b"\xff\xff"))
        unknown = PublishCmd(topic="ok", kind="nope.Nope", message=b"").SerializeToString()
        await ws.send(encode_frame(PUBLISH_KIND, unknown))
        await ws.send(encode_publish("ok", Message(ReplyV1(message="still works")))[0])
        got = decode_frame(await asyncio.wait_for(ws.recv(), WAIT))  # type: ignore[arg-type]
        assert ReplyV1.FromString(got.payload).message == "still works"
        assert len(errors.of(TopicError)) == 2
        assert len(errors.of(PayloadDecodeError)) == 1
        assert [e.kind for e in errors.of(UnknownKindError)] == ["nope.Nope"]


# Slow consumers: a client that stops reading is disconnected; the others get everything.

BIG = 256 * 1024


async def drain_until_closed(ws: websockets.ClientConnection) -> int:
    """Read everything a paused raw client had buffered; returns how it was closed."""
    ws.transport.resume_reading()
    with contextlib.suppress(websockets.ConnectionClosed):
        async with asyncio.timeout(WAIT):
            async for _ in ws:
                pass
    code = ws.close_code
    assert code is not None
    return code


async def test_slow_consumer_is_disconnected_while_the_others_get_everything() -> None:
    broker = RecordingBroker()
    # Readers in this process get 64 frames of headroom (32 queued, 32 in the backlog), so a loaded
    # machine (CI runs two suites at once) never makes one of them a slow consumer; the non-reader
    # gets 160 frames, 40 MiB: more than its queues and loopback socket buffers hold.
    server, errors = handlers_server(send_queue_size=32, slow_consumer_timeout=0.2, close_wait=0.5, broker=broker)
    count = 160
    async with server:
        slow = await ws_connect(server.url, max_size=None)
        await slow.send(encode_subscribe("feed"))
        await slow.send(encode_subscribe("slow-only"))
        fast = [listening_client(server.addr, max_message_size=2 * BIG) for _ in range(3)]
        inboxes: list[Inbox[PingPong]] = []
        async with contextlib.AsyncExitStack() as stack:
            for client, _ in fast:
                inbox: Inbox[PingPong] = Inbox()
                client.handle(PingPong, inbox)
                inboxes.append(inbox)
                await stack.enter_async_context(client)
                await client.subscribe("feed")
                await barrier(client)
            publisher = fast[0][0]
            await barrier(publisher)
            slow.transport.pause_reading()
            for n in range(count):
                await publisher.publish("feed", PingPong(sequence=n, body=b"x" * BIG))
            [kicked] = await errors.wait_for(SlowConsumerError)
            for inbox in inboxes:
                await inbox.wait_for(count)
                assert inbox.texts() == [f"#{n}" for n in range(count)]
            assert kicked.queued > 0
            await broker.wait_for("-slow-only")  # its connection is gone from the server
            assert len(server.peers) == 3
        assert await drain_until_closed(slow) in (1013, 1006)
    # Reported once; the aborted TCP connection may be reported as lost as well.
    assert {type(e) for e in errors.items} <= {SlowConsumerError, ConnectionLostError}
    assert len(errors.of(SlowConsumerError)) == 1


async def test_server_broadcast_reports_the_slow_client_in_its_results() -> None:
    server, errors = handlers_server(send_queue_size=4, slow_consumer_timeout=0.2, close_wait=0.5)
    async with server:
        slow = await ws_connect(server.url, max_size=None, additional_headers=OUR_PEER)
        client, _ = listening_client(server.addr, max_message_size=2 * BIG)
        pings: Inbox[PingPong] = Inbox()
        client.handle(PingPong, pings)
        async with client:
            await barrier(client)
            slow.transport.pause_reading()
            failed: list[BroadcastResult] = []
            sent = 0
            async with asyncio.timeout(WAIT):
                while not failed:
                    results = await server.broadcast(PingPong(sequence=sent, body=b"x" * BIG))
                    sent += 1
                    failed = [r for r in results if r.error is not None]
            [result] = failed
            assert isinstance(result.error, SlowConsumerError)
            assert result.size == 0
            await pings.wait_for(sent)
            assert pings.texts() == [f"#{n}" for n in range(sent)]
        assert await drain_until_closed(slow) in (1013, 1006)
    # Reported once; the aborted TCP connection may be reported as lost as well.
    assert {type(e) for e in errors.items} <= {SlowConsumerError, ConnectionLostError}
    assert len(errors.of(SlowConsumerError)) == 1
