"""Nothing lost silently between replicas: backpressure on fast publishers, losses in outages counted.

Two replicas in this process, each with its own broker connection to a real
NATS or Redis server. Every publication that does not reach the other
replica is counted in a BrokerError's `dropped`: by the publishing replica
when it drops one, and by the receiving replica when the numbers per topic
jump (what the broker lost, e.g. while the receiver was subscribing again).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest

from generated.goomerang.example.messages_pb2 import ReplyV1
from goomerang_runtime import Broker, BrokerError, BrokerState, Server

from .brokers import BrokerServer
from .brokers import broker_server as broker_server
from .helpers import WAIT, Collector
from .inbox import Inbox, barrier, listening_client
from .replica import add_handlers, make_broker


@contextlib.asynccontextmanager
async def replica(
    broker_server: BrokerServer, name: str, **options: object
) -> AsyncIterator[tuple[Server, Collector, Broker]]:
    broker = make_broker(broker_server.kind, broker_server.url, **options)  # type: ignore[arg-type]
    server = Server(broker=broker, close_wait=1.0)
    errors = Collector()
    server.on_error(errors)
    add_handlers(server, name)
    async with server:
        # A server starts without its broker when the first attempt fails (seen under load), and
        # numbers count from the first publication a replica gets from another: what the broker
        # had before this one was connected is not its to count (docs/replicas.md).
        await connected(broker)
        yield server, errors, broker


async def connected(broker: Broker) -> None:
    """Return once `broker` is connected (at once if it is)."""
    up = asyncio.Event()

    def changed(state: BrokerState) -> None:
        if state is BrokerState.CONNECTED:
            up.set()

    broker.on_state_change(changed)
    if not broker.connected:
        await asyncio.wait_for(up.wait(), WAIT)


def spans(numbers: list[int]) -> list[tuple[int, int]]:
    """Sorted `numbers` as (first, last) runs."""
    runs: list[tuple[int, int]] = []
    for n in numbers:
        if runs and runs[-1][1] == n - 1:
            runs[-1] = (runs[-1][0], n)
        else:
            runs.append((n, n))
    return runs


def dropped(errors: Collector) -> int:
    return sum(err.dropped for err in errors.of(BrokerError))


async def publish_until_seen(publisher_addr: str, inbox: Inbox[ReplyV1], sent: list[int]) -> None:
    """Markers on the same topic until one arrives: it reveals any loss before it."""
    client, _ = listening_client(publisher_addr)
    async with client, asyncio.timeout(WAIT * 3):
        n = 0
        while not any(text.startswith("end") for text in inbox.texts()):
            await client.publish("stream", ReplyV1(message=f"end {n}"))
            sent[0] += 1
            n += 1
            await barrier(client)
        await inbox.wait_until(f"end {n - 1}")  # the last marker too: every one sent is then accounted for


@pytest.mark.parametrize("overflow", ["wait", "drop"])
async def test_a_publisher_outrunning_the_broker_is_slowed_or_every_drop_is_counted(
    broker_server: BrokerServer, overflow: str
) -> None:
    count = 8_000
    async with (
        replica(broker_server, "A", buffer_size=64, overflow=overflow) as (a, a_errors, _),
        replica(broker_server, "B") as (b, b_errors, _),
    ):
        sub, inbox = listening_client(b.addr)
        pub, _ = listening_client(a.addr)
        async with sub, pub:
            await sub.subscribe("stream")
            await barrier(sub)
            before = dropped(b_errors)
            for n in range(count):  # as fast as the publisher's connection takes them: no window
                await pub.publish("stream", ReplyV1(message=f"{n}"))
            await barrier(pub)  # replica A has taken every one of them
            sent = [count]
            await publish_until_seen(a.addr, inbox, sent)
            received = len(inbox.texts())
            lost_seen_by_b = dropped(b_errors) - before
            print(f"{broker_server.kind} {overflow}: sent {sent[0]} received {received} reported lost {lost_seen_by_b}")
            assert received + lost_seen_by_b == sent[0]
            if overflow == "wait":
                assert received == sent[0]  # slowed down, nothing dropped
                assert a_errors.items == []
            else:
                assert dropped(a_errors) == lost_seen_by_b  # each drop told by both sides
            assert len(set(inbox.texts())) == received  # and no duplicates


async def test_publications_lost_in_a_broker_outage_are_counted(broker_server: BrokerServer) -> None:
    async with (
        replica(broker_server, "A", buffer_size=256) as (a, a_errors, a_broker),
        replica(broker_server, "B") as (b, b_errors, b_broker),
    ):
        reconnected = {a_broker: asyncio.Event(), b_broker: asyncio.Event()}
        for broker, event in reconnected.items():
            broker.on_state_change(lambda state, event=event: state is BrokerState.CONNECTED and event.set())
        sub, inbox = listening_client(b.addr)
        pub, _ = listening_client(a.addr)
        async with sub, pub:
            await sub.subscribe("stream")
            await barrier(sub)
            before = dropped(b_errors)
            sent = [0]
            for n in range(4_000):
                if n == 1_000:
                    broker_server.kill()
                if n == 3_000:
                    await asyncio.to_thread(broker_server.start)  # same port
                await pub.publish("stream", ReplyV1(message=f"{n}"))
                sent[0] += 1
                if n % 100 == 0:
                    await barrier(pub)
            for event in reconnected.values():
                await asyncio.wait_for(event.wait(), WAIT)
            await barrier(pub)
            await publish_until_seen(a.addr, inbox, sent)
            received = len(inbox.texts())
            lost = dropped(b_errors) - before
            print(f"{broker_server.kind} outage: sent {sent[0]} received {received} reported lost {lost}")
            told = "\n".join(
                f"{side}: {err!r}" for side, errs in (("A", a_errors), ("B", b_errors)) for err in errs.items
            )
            numbers = [int(text) for text in inbox.texts() if not text.startswith("end")]
            told += f"\nnever delivered: {spans(sorted(set(range(4_000)) - set(numbers)))}"
            markers = [text for text in inbox.texts() if text.startswith("end")]
            told += f"\nin order: {numbers == sorted(numbers)}, markers: {markers}"
            assert lost > 0, told
            assert received + lost == sent[0], told
