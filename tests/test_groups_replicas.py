"""Queue groups across two replicas on real NATS and Redis servers: each publication reaches one member.

Replica A runs in the test's process, replica B in its own (tests/replica.py);
two members of the group connect to each. Each publication carries its id,
counted per member and per id. A missing broker binary skips, or fails under
GOOMERANG_REQUIRE_BROKERS=1.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from generated.goomerang.example.messages_pb2 import PingPong
from goomerang_runtime import BrokerError, BrokerState, Client, Server

from .brokers import BrokerServer, Replica
from .brokers import broker_server as broker_server
from .groupkit import HIGH, LOW, STREAM_WAIT, Tally, member, settle, stream
from .helpers import WAIT, Collector
from .replica import add_handlers, make_broker

N = 10_000


@pytest.fixture
async def replicas(broker_server: BrokerServer) -> AsyncIterator[tuple[Server, Collector, Replica]]:
    replica_b = await Replica.start(broker_server.kind, broker_server.url)
    server = Server(broker=make_broker(broker_server.kind, broker_server.url), close_wait=1.0)
    errors = Collector()
    server.on_error(errors)
    add_handlers(server, "A")
    try:
        async with server:
            yield server, errors, replica_b
    finally:
        await replica_b.stop()


async def _connect(clients: list[Client]) -> None:
    for client in clients:
        await client.connect()


async def _close(clients: list[Client]) -> None:
    for client in clients:
        await client.close()


async def test_ten_thousand_publications_over_four_members_on_two_replicas(
    broker_server: BrokerServer, replicas: tuple[Server, Collector, Replica]
) -> None:
    a, errors, b = replicas
    tally, plain = Tally(), Tally()
    names = ["a1", "a2", "b1", "b2"]
    members = [member(addr) for addr in (a.addr, a.addr, b.addr, b.addr)]
    plains = [member(addr) for addr in (a.addr, b.addr)]
    publishers = [member(addr) for addr in (a.addr, b.addr)]  # local and remote publications alike
    clients = [*members, *plains, *publishers]
    await _connect(clients)
    try:
        for name, client in zip(names, members, strict=True):
            await client.subscribe("jobs.*", PingPong, tally.handler(name), group="workers")
        for i, client in enumerate(plains):
            await client.subscribe("jobs.>", PingPong, plain.handler(f"plain-{'ab'[i]}"))
        await settle(clients)  # every subscription is in effect at the broker
        seconds = await stream(publishers, "jobs.run", N)
        await tally.wait_total(N, STREAM_WAIT)
        await plain.wait_total(2 * N, STREAM_WAIT)
        await settle(clients)
        # A last plain publication from each side, and barriers again: nothing more is on its way.
        await stream(publishers, "jobs.end.x", 2, chunk=1)  # beyond jobs.*: plain only
        await plain.wait_total(2 * N + 4, WAIT)
        await settle(clients)
    finally:
        await _close(clients)
    tally.assert_once(range(N))
    shares = tally.shares()
    assert all(LOW <= share <= HIGH for share in shares.values()), tally.summary()
    assert plain.by_member == {"plain-a": N + 2, "plain-b": N + 2}
    assert tally.groups == {"workers": N}
    print(f"\n{broker_server.kind}, 2 replicas x 2 members: {N} publications in {seconds:.2f}s; {tally.summary()}")
    assert errors.items == []
    assert b.errors() == []


async def test_members_leaving_mid_stream_across_replicas_lose_nothing(
    broker_server: BrokerServer, replicas: tuple[Server, Collector, Replica]
) -> None:
    """b2 leaves (b keeps b1), later a1 then a2 (a has none left): every publication reaches one member."""
    a, errors, b = replicas
    tally = Tally()
    names = ["a1", "a2", "b1", "b2"]
    members = dict(zip(names, (member(addr) for addr in (a.addr, a.addr, b.addr, b.addr)), strict=True))
    publishers = [member(addr) for addr in (a.addr, b.addr)]
    clients = [*members.values(), *publishers]
    await _connect(clients)
    frozen: dict[str, int] = {}
    leaving: list[asyncio.Task[None]] = []
    try:
        for name, client in members.items():
            await client.subscribe("jobs.*", PingPong, tally.handler(name), group="workers")
        await settle(clients)

        async def leave(name: str) -> None:
            await members[name].unsubscribe("jobs.*", group="workers")  # once confirmed, nothing more comes
            frozen[name] = tally.by_member[name]

        async def after_chunk(published: int) -> None:
            # Concurrent with the chunks that follow: the leaves happen mid-stream.
            plan = {2_000: ["b2"], 4_000: ["a1"], 5_000: ["a2"]}
            for name in plan.get(published, []):
                leaving.append(asyncio.get_running_loop().create_task(leave(name)))

        seconds = await stream(publishers, "jobs.run", N, after_chunk=after_chunk)
        await asyncio.wait_for(asyncio.gather(*leaving), WAIT)
        await tally.wait_total(N, STREAM_WAIT)
        await settle(clients)
    finally:
        await _close(clients)
    tally.assert_once(range(N))
    for name in ("a1", "a2", "b2"):
        assert tally.by_member[name] == frozen[name], name  # nothing after its leave was confirmed
    assert tally.by_member["b1"] >= N // 2  # alone from 5,000 on
    print(f"\n{broker_server.kind}, b2 left at 2,000, a1 at 4,000, a2 at 5,000 ({seconds:.2f}s): {tally.summary()}")
    assert errors.items == []
    assert b.errors() == []


async def test_a_broker_outage_duplicates_nothing_and_groups_work_again_after_it(
    broker_server: BrokerServer, replicas: tuple[Server, Collector, Replica]
) -> None:
    """At most once during the outage (what waited in A's buffer is routed when it is back); exactly once after."""
    a, errors, b = replicas
    broker = a.config.broker
    assert broker is not None
    up_again = asyncio.Event()
    broker.on_state_change(lambda state: state is BrokerState.CONNECTED and up_again.set())
    during, after = Tally(), Tally()
    names = ["a1", "a2", "b1", "b2"]
    members = [member(addr) for addr in (a.addr, a.addr, b.addr, b.addr)]
    publisher = member(a.addr)
    clients = [*members, publisher]
    await _connect(clients)
    try:
        for name, client in zip(names, members, strict=True):
            await client.subscribe("jobs.*", PingPong, during.handler(name), group="w")
            await client.subscribe("after.*", PingPong, after.handler(name), group="w")
        await settle(clients)

        async def outage(published: int) -> None:
            if published == 1_000:
                await during.wait_total(1_000)  # through the broker already
                broker_server.kill()
            elif published == 3_000:
                await asyncio.to_thread(broker_server.start)  # same port; Redis comes back empty

        await stream([publisher], "jobs.run", 4_000, after_chunk=outage)
        await asyncio.wait_for(up_again.wait(), WAIT)
        await b.expect("BROKER CONNECTED")
        await settle(clients)
        await stream([publisher], "after.run", N)
        await after.wait_total(N, STREAM_WAIT)
        await settle(clients)
    finally:
        await _close(clients)
    assert max(during.by_id.values()) == 1  # nothing twice
    assert set(range(1_000)) <= set(during.by_id)  # before the outage: everything
    after.assert_once(range(N))  # the members are registered again, on every replica
    assert all(LOW <= share <= HIGH for share in after.shares().values()), after.summary()
    print(f"\n{broker_server.kind} outage at 1,000-3,000 of 4,000: {during.total} delivered; after: {after.summary()}")
    assert errors.of(BrokerError)  # the outage was reported
