"""Queue groups on one server and across replicas of one process (MemoryBus): one member per group gets each.

Real clients on loopback sockets. Each publication carries its id
(PingPong.sequence); the members count what they get per id, so a
duplicate or a loss shows. Across real NATS and Redis: test_groups_replicas.
"""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest

from generated.chat.v1 import chat_goomerang as chat
from generated.chat.v1.chat_pb2 import Said
from generated.goomerang.example.messages_pb2 import PingPong
from goomerang_runtime import (
    AuthorizationError,
    BrokerError,
    ConnectionLostError,
    GroupError,
    HandshakeRequest,
    Message,
    PeerInfo,
    ReconnectPolicy,
    Sender,
    SyncTimeoutError,
)
from goomerang_runtime._codec import (
    GROUP_HEADER,
    TOPIC_HEADER,
    UNSUBSCRIBE_KIND,
    SubscribeCommand,
    UnsubscribeCommand,
    decode_command,
    decode_frame,
    encode_publish,
    encode_subscribe,
    encode_unsubscribe,
)
from goomerang_runtime._groups import GroupTable
from goomerang_runtime.auth import Action
from goomerang_runtime.brokers import MemoryBroker, MemoryBus
from goomerang_runtime.extensions import QUEUE_GROUPS

from .groupkit import HIGH, LOW, Tally, member, settle, stream
from .helpers import OUR_PEER, WAIT, Collector
from .inbox import barrier, handlers_server
from .rawws import OP_BINARY, RawClient

N = 10_000


def test_the_table_rotates_members_and_a_latecomer_takes_turns_at_once() -> None:
    table: GroupTable[str] = GroupTable()
    for name in ("a", "b", "c"):
        table.join(name, "w", "jobs.*")
    table.join("d", "w", "jobs.>")  # another pattern, the same group: one group
    table.join("x", "other", "jobs.x")
    assert table.groups("jobs.x") == {"w", "other"}
    assert table.groups("jobs.x.y") == {"w"}
    picks = Counter(table.choose("w", "jobs.x") for _ in range(400))
    assert picks == {"a": 100, "b": 100, "c": 100, "d": 100}
    table.join("e", "w", "jobs.*")
    first = [table.choose("w", "jobs.x") for _ in range(5)]
    assert first[0] == "e"  # the latecomer first, then strict rotation
    assert sorted(first) == ["a", "b", "c", "d", "e"]
    assert table.choose("w", "jobs.x.y") == "d"  # the only pattern matching
    assert table.choose("w", "jobs.x", skip={"a", "b", "c", "d"}) == "e"
    assert table.choose("w", "jobs.x", prefer="c") == "c"
    assert table.choose("w", "jobs.x", usable=lambda m: m == "b") == "b"
    assert table.leave_all("d") == [("w", "jobs.>")]
    assert table.groups("jobs.x.y") == set()
    assert table.choose("w", "jobs.x.y") is None
    assert table.leave("e", "w", "jobs.*")
    assert not table.leave("e", "w", "jobs.*")


def test_the_group_travels_in_a_header_of_the_subscribe_frames() -> None:
    frame = decode_frame(encode_subscribe("jobs.*", group="workers"))
    assert dict(frame.headers) == {GROUP_HEADER: "workers"}
    assert decode_command(frame) == SubscribeCommand("jobs.*", group="workers")
    assert decode_command(decode_frame(encode_unsubscribe("jobs.*", group="workers"))) == UnsubscribeCommand(
        "jobs.*", "workers"
    )
    plain = decode_frame(encode_subscribe("jobs.*"))
    assert not plain.headers  # what a Go peer sends and gets: nothing new
    assert decode_command(plain) == SubscribeCommand("jobs.*")


async def test_each_publication_reaches_one_member_of_each_group_and_every_plain_subscriber() -> None:
    server, errors = handlers_server()
    async with server:
        workers, audit, plain = Tally(), Tally(), Tally()
        clients = [member(server.addr) for _ in range(7)]
        for client in clients:
            await client.connect()
        try:
            # Two patterns in one group: a group is its name, as in NATS.
            for i, pattern in enumerate(("jobs.*", "jobs.*", "jobs.>", "jobs.*")):
                await clients[i].subscribe(pattern, PingPong, workers.handler(f"w{i}"), group="workers")
            await clients[4].subscribe("jobs.>", PingPong, audit.handler("audit"), group="audit")
            await clients[5].subscribe("jobs.>", PingPong, plain.handler("plain"))
            await settle(clients)
            seconds = await stream([clients[6]], "jobs.x", N)
            await workers.wait_total(N)
            await audit.wait_total(N)
            await plain.wait_total(N)
            await settle(clients)
        finally:
            for client in clients:
                await client.close()
    workers.assert_once(range(N))
    audit.assert_once(range(N))
    plain.assert_once(range(N))
    assert all(LOW <= share <= HIGH for share in workers.shares().values()), workers.summary()
    assert workers.groups == {"workers": N}
    assert audit.groups == {"audit": N}
    assert plain.groups == {"": N}
    print(f"\none server: {N} publications in {seconds:.2f}s; workers {workers.summary()}")
    assert errors.items == []


async def test_a_member_leaving_mid_stream_loses_nothing_and_gets_nothing_after_its_leave() -> None:
    server, errors = handlers_server()
    async with server:
        tally = Tally()
        members = [member(server.addr) for _ in range(3)]
        publisher = member(server.addr)
        for client in (*members, publisher):
            await client.connect()
        try:
            for i, client in enumerate(members):
                await client.subscribe("jobs.*", PingPong, tally.handler(f"m{i}"), group="w")
            await settle(members)
            at_leave: list[int] = []
            leaving: list[asyncio.Task[None]] = []

            async def leave() -> None:
                await members[0].unsubscribe("jobs.*", group="w")  # returns once the server confirmed
                at_leave.append(tally.by_member["m0"])

            async def after_chunk(published: int) -> None:
                if published == 2_000:  # mid-stream, while the next chunks are published
                    leaving.append(asyncio.get_running_loop().create_task(leave()))

            await stream([publisher], "jobs.x", N, after_chunk=after_chunk)
            await asyncio.wait_for(leaving[0], WAIT)
            await tally.wait_total(N)
            await settle([*members, publisher])
        finally:
            for client in (*members, publisher):
                await client.close()
    tally.assert_once(range(N))
    assert tally.by_member["m0"] == at_leave[0]  # nothing after the confirmation
    assert 0 < at_leave[0] < N // 3 + 1
    assert members[0].group_subscriptions == frozenset()
    print(f"\none server, m0 left mid-stream: {tally.summary()}")
    assert errors.items == []


def _role(request: HandshakeRequest) -> str:
    return request.headers.get("x-role", "")


@pytest.mark.parametrize("asynchronous", [False, True], ids=["sync-hook", "async-hook"])
async def test_a_refused_member_never_gets_the_topic_and_never_swallows_it(asynchronous: bool) -> None:
    def policy(peer: PeerInfo, action: Action, topic: str, kind: str) -> bool:
        return not (action == "subscribe" and peer.principal == "restricted" and topic.startswith("jobs.secret"))

    async def async_policy(peer: PeerInfo, action: Action, topic: str, kind: str) -> bool:
        await asyncio.sleep(0)  # an answer that comes later: deliveries wait behind it
        return policy(peer, action, topic, kind)

    server, errors = handlers_server(authenticate=_role, authorize=async_policy if asynchronous else policy)
    async with server:
        tally = Tally()
        restricted = [member(server.addr, headers={"x-role": "restricted"}) for _ in range(2)]
        trusted = member(server.addr, headers={"x-role": "trusted"})
        publisher = member(server.addr, headers={"x-role": "trusted"})
        clients = [*restricted, trusted, publisher]
        for client in clients:
            await client.connect()
        try:
            for i, client in enumerate(restricted):
                await client.subscribe("jobs.*", PingPong, tally.handler(f"restricted{i}"), group="w")
            await trusted.subscribe("jobs.*", PingPong, tally.handler("trusted"), group="w")
            await settle(clients)
            count = 600
            await stream([publisher], lambda seq: "jobs.secret" if seq % 4 == 0 else "jobs.open", count, chunk=100)
            await tally.wait_total(count)
            await settle(clients)
        finally:
            for client in clients:
                await client.close()
    tally.assert_once(range(count))
    secret = {seq for seq in range(count) if seq % 4 == 0}  # not the rotation's period (3)
    for name in ("restricted0", "restricted1"):
        assert not secret & set(tally.ids[name])
    assert secret <= set(tally.ids["trusted"])
    refused = errors.of(AuthorizationError)
    assert refused
    assert all(err.topic == "jobs.secret" for err in refused)
    assert len(errors.items) == len(refused)


async def test_a_group_nobody_may_receive_from_gets_nothing_and_says_so() -> None:
    def policy(peer: PeerInfo, action: Action, topic: str, kind: str) -> bool:
        return not (action == "subscribe" and topic == "jobs.secret")

    server, errors = handlers_server(authorize=policy)
    async with server:
        tally = Tally()
        clients = [member(server.addr) for _ in range(3)]
        for client in clients:
            await client.connect()
        try:
            for i, client in enumerate(clients[:2]):
                await client.subscribe("jobs.*", PingPong, tally.handler(f"m{i}"), group="w")
            await settle(clients)
            await stream([clients[2]], lambda seq: "jobs.secret" if seq == 0 else "jobs.open", 3, chunk=3)
            await tally.wait_total(2)
            await settle(clients)
        finally:
            for client in clients:
                await client.close()
    assert set(tally.by_id) == {1, 2}
    assert {err.peer for err in errors.of(AuthorizationError)} == {"conn-1", "conn-2"}  # both were asked


async def test_a_group_needs_our_server_and_a_go_client_stays_a_plain_subscriber() -> None:
    server, errors = handlers_server()
    go_server, _ = handlers_server(extensions=False)  # answers as a Go server: no extensions
    async with server, go_server:
        ours = member(server.addr)
        plain_wire = member(server.addr, extensions=False)
        against_go = member(go_server.addr)
        async with ours, plain_wire, against_go:
            assert QUEUE_GROUPS in ours.extensions
            with pytest.raises(GroupError, match="must not be empty"):
                await ours.subscribe("jobs.*", group="")
            with pytest.raises(GroupError, match="ASCII letters"):
                await ours.subscribe("jobs.*", group="no spaces")
            with pytest.raises(GroupError, match="does not take queue groups"):
                await plain_wire.subscribe("jobs.*", group="w")
            with pytest.raises(GroupError, match="does not take queue groups"):
                await against_go.subscribe("jobs.*", group="w")
            with pytest.raises(GroupError):
                plain_wire.subscription("jobs.*", PingPong, group="bad name")
            assert ours.group_subscriptions == frozenset() == against_go.group_subscriptions
        # A Go client cannot name a group: a header it might send is no group.
        go = await RawClient.connect(server.addr)
        try:
            go.send(OP_BINARY, encode_subscribe("jobs.x", group="w"))
            publisher = member(server.addr)
            async with publisher:
                await barrier(publisher)
                for seq in range(3):
                    go.send(OP_BINARY, encode_publish("jobs.x", Message(PingPong(sequence=seq)))[0])
                got = [decode_frame((await go.recv()).data) for _ in range(3)]
            assert [PingPong.FromString(frame.payload).sequence for frame in got] == [0, 1, 2]
            assert all(not frame.headers for frame in got)  # exactly Go's wire
            go.send(OP_BINARY, encode_unsubscribe("jobs.x", group="w"))  # a plain unsubscribe, not confirmed
            await go.close()
        finally:
            go.abort()
    assert errors.items == []


async def test_a_group_delivery_and_the_leave_confirmation_on_the_wire() -> None:
    server, errors = handlers_server()
    async with server:
        raw = await RawClient.connect(server.addr, headers=OUR_PEER)
        try:
            assert QUEUE_GROUPS in raw.response_headers["goomerang-extensions"]
            raw.send(OP_BINARY, encode_subscribe("jobs.*", group="w"))
            raw.send(OP_BINARY, encode_subscribe("jobs.*"))  # and a plain subscriber too: two frames
            publisher = member(server.addr)
            async with publisher:
                await barrier(publisher)
                await publisher.publish("jobs.x", PingPong(sequence=7))
                frames = [decode_frame((await raw.recv()).data) for _ in range(2)]
                raw.send(OP_BINARY, encode_unsubscribe("jobs.*", group="w"))
                confirm = decode_frame((await raw.recv()).data)
            headers = [dict(frame.headers) for frame in frames]
            assert {TOPIC_HEADER: "jobs.x"} in headers
            assert {TOPIC_HEADER: "jobs.x", GROUP_HEADER: "w"} in headers
            assert confirm.kind == UNSUBSCRIBE_KIND
            assert dict(confirm.headers) == {GROUP_HEADER: "w"}
            assert decode_command(confirm) == UnsubscribeCommand("jobs.*", "w")
            await raw.close()
        finally:
            raw.abort()
    assert errors.items == []


async def test_an_iterator_in_a_group_ends_after_the_last_publication_routed_to_it() -> None:
    server, errors = handlers_server()
    async with server:
        reader, other, publisher = member(server.addr), member(server.addr), member(server.addr)
        tally = Tally()
        async with reader, other, publisher:
            await other.subscribe("jobs.*", PingPong, tally.handler("other"), group="w")
            async with reader.subscription("jobs.*", PingPong, group="w") as sub:
                assert sub.group == "w"
                assert "group 'w'" in repr(sub)
                await settle([reader, other])
                count = 400
                got: list[int] = []

                async def read() -> None:
                    async for msg in sub:
                        assert msg.metadata.group == "w"
                        got.append(msg.payload.sequence)

                reading = asyncio.get_running_loop().create_task(read())
                left: list[asyncio.Task[None]] = []

                async def after_chunk(published: int) -> None:
                    if published == 200:
                        left.append(asyncio.get_running_loop().create_task(reader.unsubscribe("jobs.*", group="w")))

                await stream([publisher], "jobs.x", count, chunk=100, after_chunk=after_chunk)
                await asyncio.wait_for(left[0], WAIT)
                await asyncio.wait_for(reading, WAIT)  # it ended: the leave was confirmed
                await tally.wait_total(count - len(got))
                await settle([reader, other, publisher])
    assert sorted(got + tally.ids["other"]) == list(range(count))
    assert 0 < len(got) <= 200
    assert errors.items == []


async def test_typed_topics_take_a_group() -> None:
    server, errors = handlers_server()
    server.register_message(Said)
    async with server:
        clients = [member(server.addr) for _ in range(3)]
        for client in clients:
            client.register_message(Said)
            await client.connect()
        try:
            texts: Counter[str] = Counter()

            async def on_said(sender: Sender, msg: Message[Said]) -> None:
                texts[msg.payload.text] += 1

            rooms = [chat.RoomsTopic(client) for client in clients]
            await rooms[0].subscribe("rooms.go", on_said, group="g")
            async with rooms[1].subscription("rooms.*", group="g") as sub:
                await settle(clients)
                for n in range(10):
                    await rooms[2].publish("rooms.go", Said(text=str(n)))
                await settle(clients)
                await rooms[0].unsubscribe("rooms.go", group="g")
                assert sub.pending + sum(texts.values()) == 10
                assert sub.pending == 5  # in turn: the groups' members alternate
        finally:
            for client in clients:
                await client.close()
    assert errors.items == []


class _NoGroups(MemoryBroker):
    groups = False  # a broker of the user's without queue groups


async def test_a_broker_without_groups_refuses_group_subscriptions_and_says_why() -> None:
    server, errors = handlers_server(broker=_NoGroups())
    async with server:
        client = member(server.addr)
        async with client:
            await client.subscribe("jobs.*", group="w")
            await barrier(client)
    refused = errors.of(GroupError)
    assert len(refused) == 1
    assert "no queue groups" in str(refused[0])


async def test_a_group_spans_the_replicas_of_a_memory_bus_and_survives_a_replica_losing_its_members() -> None:
    bus = MemoryBus()
    servers = [handlers_server(broker=MemoryBroker(bus)) for _ in range(2)]
    a, b = servers[0][0], servers[1][0]
    async with a, b:
        tally, plain = Tally(), Tally()
        members = [member(server.addr) for server in (a, a, b, b)]
        plains = [member(server.addr) for server in (a, b)]
        publishers = [member(server.addr) for server in (a, b)]
        clients = [*members, *plains, *publishers]
        for client in clients:
            await client.connect()
        try:
            names = ["a1", "a2", "b1", "b2"]
            for name, client in zip(names, members, strict=True):
                await client.subscribe("jobs.*", PingPong, tally.handler(name), group="w")
            for i, client in enumerate(plains):
                await client.subscribe("jobs.*", PingPong, plain.handler(f"plain{i}"))
            await settle(clients)
            await stream(publishers, "jobs.x", N)
            await tally.wait_total(N)
            await plain.wait_total(2 * N)
            await settle(clients)
            tally.assert_once(range(N))
            assert all(LOW <= share <= HIGH for share in tally.shares().values()), tally.summary()
            assert plain.by_member == {"plain0": N, "plain1": N}
            print(f"\nmemory bus, 2 replicas: {tally.summary()}")

            # Replica a loses both its members mid-stream: b's take everything after.
            second = Tally()
            for name, client in zip(names, members, strict=True):
                await client.subscribe("more.*", PingPong, second.handler(name), group="w")
            await settle(clients)
            frozen: dict[str, int] = {}

            async def after_chunk(published: int) -> None:
                if published == 2_000:
                    for name, client in zip(names[:2], members[:2], strict=True):
                        await client.unsubscribe("more.*", group="w")
                        frozen[name] = second.by_member[name]

            await stream(publishers, "more.x", N, after_chunk=after_chunk)
            await second.wait_total(N)
            await settle(clients)
        finally:
            for client in clients:
                await client.close()
    second.assert_once(range(N))
    assert all(second.by_member[name] == count for name, count in frozen.items())
    print(f"memory bus, a's members left at 2,000: {second.summary()}")
    for _, errors in servers:
        assert errors.items == []


async def test_a_publication_no_replica_can_place_is_reported() -> None:
    """Every replica's only member refuses: the publication goes to each replica once, then is reported lost."""

    def policy(peer: PeerInfo, action: Action, topic: str, kind: str) -> bool:
        return not (action == "subscribe" and topic == "jobs.secret")

    bus = MemoryBus()
    servers = [handlers_server(broker=MemoryBroker(bus), authorize=policy) for _ in range(2)]
    a, b = servers[0][0], servers[1][0]
    async with a, b:
        members = [member(server.addr) for server in (a, b)]
        for client in members:
            await client.connect()
        try:
            for client in members:
                await client.subscribe("jobs.*", group="w")
            await settle(members)
            await a.publish("jobs.secret", PingPong(sequence=1))
            lost = [*servers[0][1].of(BrokerError), *servers[1][1].of(BrokerError)]
        finally:
            for client in members:
                await client.close()
    assert len(lost) == 1  # said once, by the last replica that could not place it
    assert lost[0].dropped == 1
    assert "queue group 'w'" in str(lost[0])
    assert len([*servers[0][1].of(AuthorizationError), *servers[1][1].of(AuthorizationError)]) == 2


@pytest.mark.parametrize("history_size", [0, 100], ids=["no-history", "history"])
async def test_a_reconnecting_client_joins_its_groups_again(history_size: int) -> None:
    """With a history too: a group has nothing to catch up on (one member got each), and nothing is reported."""
    server, errors = handlers_server(history_size=history_size)
    peers: list[PeerInfo] = []
    server.on_connect(peers.append)
    subscribed = asyncio.Event()
    server.on_subscribe(lambda topic: subscribed.set())
    async with server:
        tally = Tally()
        client = member(server.addr, reconnect=ReconnectPolicy(initial_delay=0.02, max_delay=0.1))
        client_errors = Collector()
        client.on_error(client_errors)
        publisher = member(server.addr)
        async with client, publisher:
            await client.subscribe("jobs.*", PingPong, tally.handler("m"), group="w")
            await barrier(client)
            subscribed.clear()
            await server.disconnect(peers[0].id)
            await asyncio.wait_for(subscribed.wait(), WAIT)  # joined again by itself
            await barrier(client)
            assert client.group_subscriptions == {("jobs.*", "w")}
            await publisher.publish("jobs.x", PingPong(sequence=1))
            await tally.wait_total(1, WAIT)
            await barrier(client)
    assert tally.by_id == {1: 1}
    assert all(isinstance(err, ConnectionLostError) for err in client_errors.items)  # the drop; no RecoveryError
    assert all(isinstance(err, ConnectionLostError) for err in errors.items)  # the drop, reported


async def test_a_leave_the_server_does_not_confirm_in_time_raises_and_drops_the_subscription() -> None:
    release = asyncio.Event()
    server, errors = handlers_server(max_concurrency=1)  # handlers inline: a busy one holds the read loop

    async def busy(sender: Sender, msg: Message[PingPong]) -> None:
        await release.wait()

    server.handle(PingPong, busy)
    async with server:
        client = member(server.addr)
        async with client:
            await client.subscribe("jobs.*", group="w")
            await barrier(client)
            await client.send(PingPong(sequence=1))  # the server's read loop now waits in `busy`
            with pytest.raises(SyncTimeoutError):
                await client.unsubscribe("jobs.*", group="w", timeout=0.2)
            assert client.group_subscriptions == frozenset()
            release.set()
            await barrier(client)  # the late confirmation is taken quietly
    assert errors.items == []
