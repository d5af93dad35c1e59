"""The Redis broker with a history against a real redis-server: a cut batch goes again, and is taken once.

Redis acknowledges a pipeline only as a whole. When a lost connection cuts
a batch short, some of its publications may have run the routing script
(numbered, kept, published) and the rest not; which, nobody can tell. With
a history the script keeps, per topic, the number of the newest publication
it took from each replica, so the whole batch is sent again on the next
connection and what was taken already is dropped: every publication is
numbered once (before, the batch was reported lost, and the replica's own
clients, who get publications only as the broker brings them back, missed
them with nothing said to them).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from goomerang_runtime import BrokerError
from goomerang_runtime._envelope import decode_envelope, encode_envelope
from goomerang_runtime.brokers import RedisBroker
from goomerang_runtime.brokers._remote import HandBack

from .brokers import BrokerServer, Receiver, broker_alone


@pytest.fixture
def redis_server() -> Iterator[BrokerServer]:
    yield from broker_alone("redis")


async def test_a_batch_sent_again_after_a_cut_is_numbered_once(redis_server: BrokerServer) -> None:
    broker = RedisBroker(redis_server.url, history=True, prefix="resend")
    broker.configure_history(100, None)
    await broker.start(Receiver())
    try:
        batch = [("t", encode_envelope("replica-a", n, "t", f"frame {n}".encode())) for n in (1, 2)]
        await broker._send(batch)  # pyright: ignore[reportPrivateUsage]
        # As after a cut: the same publications again, then the ones that had not been sent.
        again = [*batch, ("t", encode_envelope("replica-a", 3, "t", b"frame 3"))]
        await broker._send(again)  # pyright: ignore[reportPrivateUsage]
        # Another replica's numbers are its own.
        await broker._send([("t", encode_envelope("replica-b", 1, "t", b"from b"))])  # pyright: ignore[reportPrivateUsage]
        stored = await broker.history_since("t", 0)
        assert stored.last == 4
        frames = [decode_envelope(envelope).frame for _, envelope in stored.frames]
        assert frames == [b"frame 1", b"frame 2", b"frame 3", b"from b"]
    finally:
        await broker.close()


async def test_what_a_cut_batch_sends_again(redis_server: BrokerServer) -> None:
    """Publications and broadcasts go again; a queue group's hand-back, which no script check covers, is reported."""
    broker = RedisBroker(redis_server.url, history=True, prefix="resend")
    receiver = Receiver()
    await broker.start(receiver)
    await broker.close()  # what it reports still goes to the receiver
    publication = ("t", encode_envelope("replica-a", 1, "t", b"p"))
    broadcast = ("", encode_envelope("replica-a", 1, "", b"b"))
    hand_back = HandBack("workers", "t", encode_envelope("replica-a", 2, "t", b"h"), ("replica-b",))
    unsent = broker._unsent([publication, hand_back, broadcast])  # pyright: ignore[reportPrivateUsage]
    assert unsent == [publication, broadcast]
    (error,) = [err for err in receiver.errors if "hand-back" in str(err)]
    assert isinstance(error, BrokerError)
    assert error.dropped == 1
