"""A server's pub/sub engine: who is subscribed to what, and fan-out through an optional broker.

Local delivery never depends on the broker: a publication goes to this
server's matching connections at once, and then, in an envelope tagged with
this replica's id, to the broker. An envelope coming back from the broker is
matched against this server's subscriptions like a local publication, so a
client gets it once even when several of its subscriptions match; envelopes
carrying this replica's own id, and copies already seen, are ignored.

A publication travels as its plain frame, exactly what a Go client gets;
clients of this library also get the topic, in a header appended to those
bytes once per publication that has such a subscriber.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable

from ._codec import add_topic_header
from ._connection import ServerConnection
from ._envelope import Envelope, EnvelopeError, decode_envelope, encode_envelope
from ._sequence import Gaps, Numbering
from .brokers.base import Broker
from .errors import BrokerError, EnvelopeDecodeError
from .topics import TopicIndex, pattern_matches

__all__ = ["PubSub"]

_RECENT = 1024


class _Recent:
    """Ids of the last envelopes received, so a copy delivered twice is dropped."""

    __slots__ = ("_ids",)

    def __init__(self) -> None:
        self._ids: OrderedDict[tuple[str, str, int], None] = OrderedDict()

    def first_time(self, key: tuple[str, str, int]) -> bool:
        if key in self._ids:
            return False
        self._ids[key] = None
        if len(self._ids) > _RECENT:
            self._ids.popitem(last=False)
        return True


def _deliver(conns: Iterable[ServerConnection], topic: str, frame: bytes) -> None:
    """A publication to each of `conns`: with the topic header for those that take it."""
    tagged: bytes | None = None
    for conn in conns:
        data = frame
        if conn.topic_header:
            if tagged is None:
                tagged = add_topic_header(frame, topic)
            data = tagged
        gate = conn.gate
        if gate is not None and topic not in conn.topics:  # reached through a wildcard: check the topic
            gate.offer(topic, data)
        else:
            conn.deliver(data)


class PubSub:
    """Subscriptions of a server's connections, and delivery of publications and broadcasts.

    Implements :class:`~goomerang_runtime.brokers.BrokerReceiver` for its broker.
    """

    def __init__(
        self,
        broker: Broker | None,
        connections: Callable[[], Iterable[ServerConnection]],
        report: Callable[[BaseException], None],
    ) -> None:
        self.replica = uuid.uuid4().hex
        """This server's id in envelopes."""
        self._broker = broker
        self._connections = connections
        self._report = report
        self._index: TopicIndex[ServerConnection] = TopicIndex()
        self._numbers = Numbering()
        self._gaps = Gaps()
        # A broker may bring one publication once per matching subscription (Redis does).
        self._recent = _Recent()
        self._subscribing: dict[str, asyncio.Task[None]] = {}

    async def start(self) -> None:
        """Connect the broker, if any."""
        if self._broker is not None:
            await self._broker.start(self)

    async def close(self) -> None:
        """Flush and disconnect the broker, if any."""
        if self._broker is not None:
            await self._broker.close()

    # Subscriptions of local connections.

    async def subscribe(self, conn: ServerConnection, pattern: str) -> None:
        """Subscribe `conn`; returns once the broker has the subscription (or is unreachable)."""
        if pattern not in conn.topics:
            conn.topics.add(pattern)
            # A broker subscription is a pattern: a superset of a literal one, matched here again.
            first = self._index.add(pattern, conn, literal=not conn.wildcards)
            if first and self._broker is not None:
                task = asyncio.get_running_loop().create_task(self._broker.subscribe(pattern))
                self._subscribing[pattern] = task
                task.add_done_callback(lambda done: self._subscribed(pattern, done))
        pending = self._subscribing.get(pattern)
        if pending is not None:
            # Shielded: a connection that goes away does not undo the broker's subscription.
            await asyncio.shield(pending)

    def _subscribed(self, pattern: str, task: asyncio.Task[None]) -> None:
        if self._subscribing.get(pattern) is task:
            del self._subscribing[pattern]
        if not task.cancelled() and (exc := task.exception()) is not None:
            self._report(exc)

    def unsubscribe(self, conn: ServerConnection, pattern: str) -> None:
        """Unsubscribe `conn` from `pattern`, if it was subscribed."""
        if pattern not in conn.topics:
            return
        conn.topics.discard(pattern)
        if self._index.remove(pattern, conn, literal=not conn.wildcards) and self._broker is not None:
            self._broker_unsubscribe(pattern)

    def leave(self, conn: ServerConnection) -> None:
        """A closed connection leaves all its topics."""
        for pattern in self._index.remove_all(conn.topics, conn, literal=not conn.wildcards):
            if self._broker is not None:
                self._broker_unsubscribe(pattern)
        conn.topics.clear()

    def _broker_unsubscribe(self, pattern: str) -> None:
        assert self._broker is not None
        self._broker.unsubscribe(pattern)
        self._gaps.forget(lambda topic: pattern_matches(pattern, topic) or topic == pattern)

    # Outgoing.

    def room(self) -> Awaitable[None] | None:
        """What to await before the next publication or broadcast while the broker is behind (else None)."""
        return self._broker.room() if self._broker is not None else None

    def publish(self, topic: str, frame: bytes) -> None:
        """Deliver plain `frame` to local subscribers of `topic`, then hand it to the broker."""
        _deliver(self._index.match(topic), topic, frame)
        if self._broker is not None:
            self._broker.publish(topic, encode_envelope(self.replica, self._numbers.next(topic), topic, frame))

    def broadcast_to_replicas(self, frame: bytes) -> None:
        """Hand a broadcast to the broker, for the other replicas' clients."""
        if self._broker is not None:
            self._broker.broadcast(encode_envelope(self.replica, self._numbers.next(""), "", frame))

    # BrokerReceiver: envelopes from other replicas.

    def _open(self, data: bytes) -> Envelope | None:
        try:
            envelope = decode_envelope(data)
        except EnvelopeError as exc:
            name = self._broker.name if self._broker is not None else "broker"
            self._report(EnvelopeDecodeError(name, len(data), str(exc)))
            return None
        origin, topic, seq = envelope.origin, envelope.topic, envelope.seq
        if origin == self.replica or not self._recent.first_time((origin, topic, seq)):
            return None
        missing = self._gaps.seen(origin, topic, seq)
        if missing:
            name = self._broker.name if self._broker is not None else "broker"
            what = f"on {topic!r}" if topic else "broadcasts"
            self._report(
                BrokerError(name, f"{missing} publications {what} from replica {origin[:8]} never arrived", missing)
            )
        return envelope

    def deliver_publication(self, data: bytes) -> None:
        """A publication from another replica: matched like a local one."""
        envelope = self._open(data)
        if envelope is not None and not envelope.is_broadcast:
            _deliver(self._index.match(envelope.topic), envelope.topic, envelope.frame)

    def deliver_broadcast(self, data: bytes) -> None:
        """A broadcast from another replica: every local connection gets it."""
        envelope = self._open(data)
        if envelope is not None:
            for conn in list(self._connections()):
                conn.deliver(envelope.frame)

    def broker_error(self, error: BaseException) -> None:
        """Errors of the broker go to the server's error hooks."""
        self._report(error)
