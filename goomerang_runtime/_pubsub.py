"""A server's pub/sub engine: who is subscribed to what, and fan-out through an optional broker.

Local delivery never depends on the broker: a publication goes to this
server's matching connections at once, and then, in an envelope tagged with
this replica's id, to the broker. An envelope coming back from the broker is
matched against this server's subscriptions like a local publication, so a
client gets it once even when several of its subscriptions match; envelopes
carrying this replica's own id (recognised by their first bytes, before any
decoding), and copies already seen, are ignored.

A publication travels as its plain frame, exactly what a Go client gets;
clients of this library also get the topic, in a header appended to those
bytes once per publication that has such a subscriber.

With a history (``history_size``), every publication delivered here, local
or from another replica, takes the next offset of its topic; clients that
agreed on ``recovery`` get its position in a header, and a reconnecting one
that names the last position it saw gets what followed, replayed before any
live delivery (see :meth:`PubSub.subscribe`). With a broker that keeps the
history (``RedisBroker(history=True)``) the broker numbers publications
instead, and every one, local ones included, is delivered as the broker
brings it back, in its order (:mod:`._shared_history`).

Queue groups (an extension between our peers): each publication goes to one
member of each group whose patterns match its topic, besides every plain
subscriber. Without a broker this server chooses (:mod:`._groups`); with
one, the broker chooses among every replica's members and brings the
publication to the chosen replica (:meth:`PubSub.deliver_group`), local
publications included, so that each reaches one member across replicas. A
member the policy refuses, or that left or closed meanwhile, passes it on to
the next; a replica left without one hands it back to the broker.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable

from ._catchup import CatchUp
from ._codec import (
    GROUP_HEADER,
    MISSED_HEADER,
    POSITION_HEADER,
    REASON_HEADER,
    RECOVERED_HEADER,
    RECOVERY_KIND,
    TOPIC_HEADER,
    add_header,
    add_topic_header,
    encode_frame,
    encode_unsubscribe,
)
from ._connection import ServerConnection
from ._envelope import Envelope, EnvelopeError, decode_envelope, encode_envelope, origin_prefix
from ._groups import GroupTable
from ._history import History, format_position, parse_position
from ._sequence import Gaps, Numbering
from ._shared_history import SharedHistory
from .brokers.base import Broker, lost_hand_back
from .errors import BrokerError, ConfigError, EnvelopeDecodeError, GroupError
from .topics import TopicIndex, is_pattern, pattern_matches

__all__ = ["PubSub"]

_RECENT = 1024
_MAX_DECLINED = 8
"""Replicas a publication may be handed back by, for one group, before it is reported lost."""


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


def _deliver(conns: Iterable[ServerConnection], topic: str, frame: bytes, position: str = "") -> None:
    """A publication to each of `conns`: with the topic (and position) headers for those that take them."""
    tagged: bytes | None = None
    placed: bytes | None = None
    for conn in conns:
        catching_up = conn.catching_up
        if catching_up is not None and topic in catching_up:  # its replay brings this one, in order
            continue
        data = frame
        if conn.topic_header:
            if tagged is None:
                tagged = add_topic_header(frame, topic)
            data = tagged
            if position and conn.recovery:
                if placed is None:
                    placed = add_header(tagged, POSITION_HEADER, position)
                data = placed
        gate = conn.gate
        if gate is not None and topic not in conn.topics:  # reached through a wildcard: check the topic
            gate.offer(topic, data)
        else:
            conn.deliver(data)


def _usable(conn: ServerConnection) -> bool:
    """Whether a group delivery may go to `conn` now (not disconnected, not closing)."""
    return not conn.kicked and not conn.closing and conn.outbox.error is None


class PubSub:
    """Subscriptions of a server's connections, and delivery of publications and broadcasts.

    Implements :class:`~goomerang_runtime.brokers.BrokerReceiver` for its broker.
    """

    def __init__(
        self,
        broker: Broker | None,
        connections: Callable[[], Iterable[ServerConnection]],
        report: Callable[[BaseException], None],
        history: History | None = None,
        linger: float = 60.0,
    ) -> None:
        self.replica = uuid.uuid4().hex
        """This server's id in envelopes."""
        self._own = origin_prefix(self.replica)
        self._broker = broker
        self._connections = connections
        self._report = report
        self._index: TopicIndex[ServerConnection] = TopicIndex()
        self._numbers = Numbering()
        self._gaps = Gaps()
        # A broker may bring one publication once per matching subscription (Redis does).
        self._recent = _Recent()
        self._subscribing: dict[str, asyncio.Task[None]] = {}
        self._shared: SharedHistory | None = None
        """The history kept in the broker, when it keeps one (then `history` is None)."""
        if broker is not None and broker.keeps_history and history is None:
            raise ConfigError("server", {"history_size": f"the broker {broker.name} keeps a history: set its size"})
        if broker is not None and broker.keeps_history and history is not None:
            broker.configure_history(history.size, history.ttl)
            self._shared = SharedHistory(broker, history.size, history.ttl, self._index.match, _deliver, report)
            history = None
        self.history = history
        """Recent publications per topic kept by this server, for reconnecting clients; None keeps none."""
        self._catching: CatchUp | None = None
        """Replays that wait for room in their connection's send queue (made on first use)."""
        self._linger = linger
        self._lingering: dict[str, asyncio.TimerHandle] = {}
        """Broker subscriptions kept a while after their last local subscriber left (with a history)."""
        self._groups: GroupTable[ServerConnection] = GroupTable()
        self._members: dict[str, ServerConnection] = {}
        """Group members by peer id (the member keys the broker knows)."""

    async def start(self) -> None:
        """Connect the broker, if any."""
        if self._broker is not None:
            await self._broker.start(self)

    async def close(self) -> None:
        """Flush and disconnect the broker, if any."""
        for handle in self._lingering.values():
            handle.cancel()
        self._lingering.clear()
        if self._shared is not None:
            self._shared.close()
        if self._catching is not None:
            self._catching.close()
        if self._broker is not None:
            await self._broker.close()

    # Subscriptions of local connections.

    async def subscribe(self, conn: ServerConnection, pattern: str, since: str = "") -> None:
        """Subscribe `conn`; returns once the broker has the subscription (or is unreachable).

        `since` (a ``recovery`` client's last position on `pattern`): what
        followed it is queued at once, before anything published later, so
        the client gets it in order, once, then a frame that says what could
        not be recovered.
        """
        if self._shared is not None and not is_pattern(pattern):
            if pattern in conn.topics:
                return
            conn.topics.add(pattern)

            def add() -> None:  # once the replay is queued; not if the connection left meanwhile
                if pattern in conn.topics:
                    self._index.add(pattern, conn, literal=not conn.wildcards)

            await self._shared.join(conn, pattern, since, add)
            return
        if pattern not in conn.topics:
            conn.topics.add(pattern)
            # A broker subscription is a pattern: a superset of a literal one, matched here again.
            first = self._index.add(pattern, conn, literal=not conn.wildcards)
            if conn.recovery:
                self._replay(conn, pattern, since)  # no await since the index took conn: no gap, no copy
            if first and (lingering := self._lingering.pop(pattern, None)) is not None:
                lingering.cancel()  # still subscribed at the broker: the history has no hole
            elif first and self._broker is not None:
                task = asyncio.get_running_loop().create_task(self._broker.subscribe(pattern))
                self._subscribing[pattern] = task
                task.add_done_callback(lambda done: self._subscribed(pattern, done))
        pending = self._subscribing.get(pattern)
        if pending is not None:
            # Shielded: a connection that goes away does not undo the broker's subscription.
            await asyncio.shield(pending)

    def _replay(self, conn: ServerConnection, topic: str, since: str) -> None:
        """Queue what followed `since` on `topic`, then the frame that ends the replay.

        Without `since` (a first subscription) only that frame goes, naming
        the current position, so that what the client misses from then on is
        known too.
        """
        history = self.history
        report = {TOPIC_HEADER: topic}
        wildcard = conn.wildcards and is_pattern(topic)
        if not since:
            if history is None or wildcard:
                return
            report[POSITION_HEADER] = history.position(topic)
            conn.deliver(encode_frame(RECOVERY_KIND, b"", report))
            return
        report[RECOVERED_HEADER] = "0"
        position = parse_position(since)
        if history is None and self._shared is None:
            report[MISSED_HEADER], report[REASON_HEADER] = "?", "the server keeps no history"
        elif wildcard or history is None:
            report[MISSED_HEADER], report[REASON_HEADER] = "?", "wildcard subscriptions are not recovered"
        elif position is None:
            report[MISSED_HEADER], report[REASON_HEADER] = "?", f"{since[:64]!r} is not a position"
        else:
            recovery = history.since(topic, *position)
            epoch = history.epoch_of(topic)
            missed = ""
            if recovery.unknown:
                missed = "?"
                report[REASON_HEADER] = (
                    "another server instance, or a history this server had to reset: its offsets do not continue"
                )
            elif recovery.missed_from is not None:
                missed = f"{recovery.missed_from}-{recovery.missed_to}"
            replayed = 0
            for offset, frame in recovery.frames:
                if not conn.offer_soon(self._replayed(topic, epoch, offset, frame)):
                    # The send queue is full: the rest follows from the history as the client drains it.
                    self._catch_up().start(conn, topic, epoch, offset - 1, replayed, missed)
                    return
                replayed += 1
            self._end_replay(conn, topic, replayed, missed, report.get(REASON_HEADER, ""))
            return
        conn.deliver(encode_frame(RECOVERY_KIND, b"", report))

    @staticmethod
    def _replayed(topic: str, epoch: str, offset: int, frame: bytes) -> bytes:
        """One publication of a replay, as a recovering client gets it: topic and position headers."""
        return add_header(add_topic_header(frame, topic), POSITION_HEADER, format_position(epoch, offset))

    def _end_replay(self, conn: ServerConnection, topic: str, replayed: int, missed: str, reason: str) -> None:
        """The frame that ends a replay: how many came back, the position now, what was lost."""
        assert self.history is not None
        report = {TOPIC_HEADER: topic, RECOVERED_HEADER: str(replayed), POSITION_HEADER: self.history.position(topic)}
        if missed:
            report[MISSED_HEADER] = missed
        if reason:
            report[REASON_HEADER] = reason
        conn.deliver(encode_frame(RECOVERY_KIND, b"", report))

    def _catch_up(self) -> CatchUp:
        if self._catching is None:
            assert self.history is not None
            self._catching = CatchUp(self.history, self._replayed, self._end_replay)
        return self._catching

    def _record(self, topic: str, frame: bytes) -> str:
        history = self.history
        if history is None:
            return ""
        offset = history.append(topic, frame)
        return format_position(history.epoch_of(topic), offset)

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
        last = self._index.remove(pattern, conn, literal=not conn.wildcards)
        if self._shared is not None and not is_pattern(pattern):
            self._shared.leave(pattern)
        elif last and self._broker is not None:
            self._broker_unsubscribe(pattern)

    def leave(self, conn: ServerConnection) -> None:
        """A closed connection leaves all its topics and queue groups."""
        shared = self._shared
        for pattern in self._index.remove_all(conn.topics, conn, literal=not conn.wildcards):
            if self._broker is not None and (shared is None or is_pattern(pattern)):
                self._broker_unsubscribe(pattern)
        if shared is not None:
            for pattern in conn.topics:
                if not is_pattern(pattern):
                    shared.leave(pattern)
        conn.topics.clear()
        literal = not conn.wildcards
        for group, pattern in self._groups.leave_all(conn, literal=literal):
            if self._broker is not None:
                self._broker.leave(group, pattern, conn.peer.id, literal=literal)
        self._members.pop(conn.peer.id, None)

    # Queue groups of local connections.

    def check_groups(self, group: str) -> None:
        """Raise :class:`GroupError` when the broker cannot carry queue groups."""
        if self._broker is not None and not self._broker.groups:
            raise GroupError(group, f"the broker {self._broker.name} has no queue groups")

    def memberships(self, conn: ServerConnection) -> int:
        """How many group subscriptions `conn` has."""
        return len(self._groups.memberships(conn))

    def in_group(self, conn: ServerConnection, group: str, pattern: str) -> bool:
        """Whether `conn` is in `group` on `pattern`."""
        return (group, pattern) in self._groups.memberships(conn)

    async def join(self, conn: ServerConnection, group: str, pattern: str) -> None:
        """Make `conn` a member of `group` on `pattern`; returns once the broker counts it in."""
        literal = not conn.wildcards
        if not self._groups.join(conn, group, pattern, literal=literal):
            return
        self._members[conn.peer.id] = conn
        if self._broker is not None:
            task = asyncio.get_running_loop().create_task(
                self._broker.join(group, pattern, conn.peer.id, literal=literal)
            )
            task.add_done_callback(self._joined)
            # Not cancelled with the caller, as a subscription: a connection that goes away does not cut it short.
            await asyncio.wait({task})

    def _joined(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and (exc := task.exception()) is not None:
            self._report(exc)

    def leave_group(self, conn: ServerConnection, group: str, pattern: str) -> None:
        """Take `conn` out of `group` on `pattern`, then confirm it to the client.

        The confirmation is queued behind every delivery chosen for it
        before; later publications go to the other members.
        """
        literal = not conn.wildcards
        if self._groups.leave(conn, group, pattern, literal=literal):
            if not self._groups.memberships(conn):
                self._members.pop(conn.peer.id, None)
            if self._broker is not None:
                self._broker.leave(group, pattern, conn.peer.id, literal=literal)
        confirm = encode_unsubscribe(pattern, group=group)
        if conn.gate is not None:
            conn.gate.after(confirm)
        else:
            conn.deliver(confirm)

    def _place(
        self,
        group: str,
        topic: str,
        frame: bytes,
        envelope: Envelope | None,
        prefer: str,
        tried: set[ServerConnection],
    ) -> None:
        """Give a publication to the member of `group` whose turn it is; none left: hand it back."""
        preferred = self._members.get(prefer) if prefer else None
        conn = self._groups.choose(group, topic, skip=tried, prefer=preferred, usable=_usable)
        if conn is None:
            if envelope is not None:
                self._hand_back(group, envelope)
            return
        tried.add(conn)
        data = add_topic_header(frame, topic) if conn.topic_header else frame
        data = add_header(data, GROUP_HEADER, group)
        gate = conn.gate
        if gate is None or (group, topic) in self._groups.memberships(conn):
            conn.deliver(data)
            return

        def decide(allowed: bool) -> None:
            if allowed and _usable(conn) and conn in self._groups.members(group, topic):
                conn.deliver(data)
            else:  # refused, or gone while the hook was asked: the next member's turn
                self._place(group, topic, frame, envelope, "", tried)

        gate.offer(topic, data, decide)

    def _hand_back(self, group: str, envelope: Envelope) -> None:
        broker = self._broker
        assert broker is not None
        declined = (*envelope.declined, self.replica)
        if len(declined) > _MAX_DECLINED:
            self._report(lost_hand_back(broker.name, group, envelope.topic, len(declined)))
            return
        data = encode_envelope(envelope.origin, envelope.seq, envelope.topic, envelope.frame, declined)
        broker.hand_back(group, envelope.topic, data, declined)

    def _broker_unsubscribe(self, pattern: str) -> None:
        if self.history is not None and pattern not in self._lingering:
            # A client that comes back soon asks this history: keep it whole a while.
            loop = asyncio.get_running_loop()
            self._lingering[pattern] = loop.call_later(self._linger, self._linger_ended, pattern)
            return
        self._broker_unsubscribe_now(pattern)

    def _linger_ended(self, pattern: str) -> None:
        del self._lingering[pattern]
        self._broker_unsubscribe_now(pattern)

    def _broker_unsubscribe_now(self, pattern: str) -> None:
        assert self._broker is not None
        self._broker.unsubscribe(pattern)
        self._gaps.forget(lambda topic: pattern_matches(pattern, topic) or topic == pattern)
        if self.history is not None:
            # Other replicas' publications stop coming: what this history holds of those topics has holes.
            self.history.reset_matching(lambda topic: pattern_matches(pattern, topic) or topic == pattern)

    # Outgoing.

    def room(self) -> Awaitable[None] | None:
        """What to await before the next publication or broadcast while the broker is behind (else None)."""
        return self._broker.room() if self._broker is not None else None

    def publish(self, topic: str, frame: bytes) -> None:
        """Deliver plain `frame` to local subscribers of `topic`, then hand it to the broker.

        Without a broker, one member of each matching queue group gets it
        here; with one, the broker chooses. With a history in the broker,
        local subscribers get it as the broker brings it back, numbered.
        """
        if self._shared is None:
            _deliver(self._index.match(topic), topic, frame, self._record(topic, frame))
        if self._broker is not None:
            self._broker.publish(topic, encode_envelope(self.replica, self._numbers.next(topic), topic, frame))
        elif self._groups:
            for group in self._groups.groups(topic):
                self._place(group, topic, frame, None, "", set())

    def broadcast_to_replicas(self, frame: bytes) -> None:
        """Hand a broadcast to the broker, for the other replicas' clients."""
        if self._broker is not None:
            self._broker.broadcast(encode_envelope(self.replica, self._numbers.next(""), "", frame))

    # BrokerReceiver: envelopes from other replicas.

    def _open(self, data: bytes) -> Envelope | None:
        if data.startswith(self._own):  # our own, read back (Redis has no no_echo): not even decoded
            return None
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
            if topic and self.history is not None:
                self.history.reset(topic)  # a replay from here would skip them silently
        return envelope

    def deliver_publication(self, data: bytes) -> None:
        """A publication from another replica: matched like a local one."""
        envelope = self._open(data)
        if envelope is not None and not envelope.is_broadcast:
            topic = envelope.topic
            _deliver(self._index.match(topic), topic, envelope.frame, self._record(topic, envelope.frame))

    def _decoded(self, data: bytes) -> Envelope | None:
        """The envelope of `data`, or None when it does not decode (reported)."""
        try:
            return decode_envelope(data)
        except EnvelopeError as exc:
            name = self._broker.name if self._broker is not None else "broker"
            self._report(EnvelopeDecodeError(name, len(data), str(exc)))
            return None

    def deliver_positioned(self, epoch: str, offset: int, data: bytes) -> None:
        """A publication the broker's history numbered (every replica's, this one's too), in its order."""
        envelope = self._decoded(data)
        if envelope is None:
            return
        topic = envelope.topic
        if envelope.is_broadcast:
            return
        shared = self._shared
        if shared is not None and shared.take(topic, epoch, offset, envelope.frame):
            return
        # Reached through wildcard subscriptions only (not recovered): in the broker's order, each copy once.
        if self._recent.first_time((envelope.origin, topic, envelope.seq)):
            _deliver(self._index.match(topic), topic, envelope.frame, format_position(epoch, offset))

    def broker_resumed(self) -> None:
        """The broker is back: catch up on what its history numbered meanwhile."""
        if self._shared is not None:
            self._shared.resumed()

    def deliver_group(self, group: str, member: str, data: bytes) -> None:
        """A publication the broker chose this replica for, for one member of `group` (`member`, if named)."""
        envelope = self._decoded(data)
        if envelope is None:
            return
        if not envelope.is_broadcast:
            self._place(group, envelope.topic, envelope.frame, envelope, member, set())

    def deliver_broadcast(self, data: bytes) -> None:
        """A broadcast from another replica: every local connection gets it."""
        envelope = self._open(data)
        if envelope is not None:
            for conn in list(self._connections()):
                conn.deliver(envelope.frame)

    def broker_error(self, error: BaseException) -> None:
        """Errors of the broker go to the server's error hooks."""
        self._report(error)
