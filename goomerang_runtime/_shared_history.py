"""A server's side of a history kept in the broker: per-topic order, gap filling, and replays.

With a broker that keeps the history (``RedisBroker(history=True)``), the
broker numbers each publication of a topic at publish time, so a position
(``epoch:offset``) means the same on every replica, and brings every
publication back to every replica with it, the publisher's included. This
module turns that into deliveries that are once, in order and whole:

- Per topic with local exact subscribers, a replica delivers offsets in
  sequence. One that arrives past a gap (a broker connection lost and
  regained, say) is held, with what follows, while the gap is read from
  the broker's history; what the history no longer holds is reported to
  the local subscribers (a ``goomerang.recovery`` frame naming the offsets),
  never skipped silently. A publication of another epoch (the broker lost
  its history) is reported as an unknown loss before it is delivered.
- A subscription naming a position (a reconnecting client, possibly of
  another replica) gets what followed: from the offsets this replica
  delivered recently, else from the broker, then the rest of what this
  replica delivered meanwhile, all before the connection joins the
  topic's live deliveries (no await between the two: no gap, no copy).
- When the broker is back after an outage, each topic is read from where
  this replica stopped, so nothing published meanwhile waits for a newer
  publication to be noticed.

Wildcard subscriptions are not recovered (as with the in-memory history),
and their topics are delivered in the broker's order without this
bookkeeping.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import dataclass, field
from typing import Any

from ._codec import (
    MISSED_HEADER,
    POSITION_HEADER,
    REASON_HEADER,
    RECOVERED_HEADER,
    RECOVERY_KIND,
    TOPIC_HEADER,
    encode_frame,
)
from ._connection import ServerConnection
from ._envelope import EnvelopeError, decode_envelope
from ._history import format_position, parse_position
from .brokers.base import Broker, StoredHistory
from .errors import EnvelopeDecodeError

Deliver = Callable[[Iterable[ServerConnection], str, bytes, str], None]
"""``deliver(conns, topic, frame, position)``: a publication to each of `conns`, headers as each takes them."""

__all__ = ["SharedHistory"]

_RESET = "the broker's history of this topic was lost (a restarted or wiped broker): its offsets do not continue"
_UNREACHABLE = "the broker is unreachable: its history cannot be read"
_TRIES = 3
"""Reads of the broker for one replay before its loss is reported as unknown (each read raced deliveries)."""


@dataclass(slots=True)
class _Topic:
    """One topic with local exact subscribers: where its deliveries here stand."""

    users: int
    epoch: str = ""
    last: int = 0
    """The newest offset delivered here."""
    ready: asyncio.Future[bool] | None = None
    """Done once the position is known: True, or False when the broker could not be read."""
    reading: asyncio.Future[None] | None = None
    """A read of the broker's history under way (done when it ends): arrivals wait in `pending`."""
    stale: bool = False
    """The broker could not be read: read again when it is back."""
    pending: deque[tuple[str, int, bytes]] = field(default_factory=deque)
    recent: deque[tuple[int, float, bytes]] = field(default_factory=deque)
    """``(offset, time, frame)`` delivered here lately, oldest first: replays that need no broker."""

    @property
    def busy(self) -> bool:
        return self.reading is not None


class SharedHistory:
    """Per-topic sequencing of a broker-kept history on one replica; see the module docstring."""

    def __init__(
        self,
        broker: Broker,
        size: int,
        ttl: float | None,
        matching: Callable[[str], Iterable[ServerConnection]],
        deliver: Deliver,
        report: Callable[[BaseException], None],
    ) -> None:
        self._broker = broker
        self._size = size
        self._ttl = ttl
        self._send = deliver
        self._matching = matching
        self._report = report
        self._topics: dict[str, _Topic] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def close(self) -> None:
        """Stop every read under way."""
        for task in self._tasks:
            task.cancel()
        self._tasks.clear()

    # Subscriptions.

    async def join(self, conn: ServerConnection, topic: str, since: str, add: Callable[[], None]) -> None:
        """`conn` subscribes to exact `topic`: replay what followed `since`, then `add()` it to the live ones.

        Returns once the broker has the subscription. Between the replay
        queued for `conn` and `add()` nothing is awaited.
        """
        state = self._topics.get(topic)
        if state is None:
            state = self._topics[topic] = _Topic(users=1)
            state.ready = asyncio.get_running_loop().create_future()
            self._spawn(self._start(topic, state))
        else:
            state.users += 1
        assert state.ready is not None
        known = await asyncio.shield(state.ready)
        position = parse_position(since) if since else None
        for _ in range(_TRIES):
            if not known or position is None or position[0] != state.epoch or self._topics.get(topic) is not state:
                break
            offset = position[1]
            if offset > state.last:  # the client saw more than this replica delivered yet (on another one)
                await self._catch_up(topic, state, offset)
                continue
            frames = self._recent_after(state, offset)
            if frames is None:
                try:
                    stored = await self._broker.history_since(topic, offset)
                except Exception:
                    break
                if stored.epoch != state.epoch or self._topics.get(topic) is not state:
                    break  # reset meanwhile: an unknown loss
                frames = self._combine(stored, state, offset)
                if frames is None:  # this replica delivered beyond the read and what it keeps: read again
                    continue
            self._replay(conn, topic, state, offset, frames)
            add()
            return
        if self._topics.get(topic) is not state:
            return
        if not conn.recovery:
            add()
            return
        report = {TOPIC_HEADER: topic, POSITION_HEADER: format_position(state.epoch, state.last)}
        if since:
            report[RECOVERED_HEADER] = "0"
            report[MISSED_HEADER] = "?"
            if not known:
                report[REASON_HEADER] = _UNREACHABLE
            elif position is None:
                report[REASON_HEADER] = f"{since[:64]!r} is not a position"
            elif position[0] != state.epoch:
                report[REASON_HEADER] = "another epoch of this topic's history: " + _RESET
            else:
                report[REASON_HEADER] = f"the broker's history does not reach {since[:64]!r}"
        if known or since:
            conn.deliver(encode_frame(RECOVERY_KIND, b"", report))
        add()

    def leave(self, topic: str) -> None:
        """One local subscriber of exact `topic` fewer; the last one unsubscribes at the broker."""
        state = self._topics.get(topic)
        if state is None:
            return
        state.users -= 1
        if state.users <= 0:
            del self._topics[topic]
            self._broker.unsubscribe(topic)

    def _replay(
        self, conn: ServerConnection, topic: str, state: _Topic, offset: int, frames: list[tuple[int, bytes]]
    ) -> None:
        first = frames[0][0] if frames else state.last + 1
        for number, frame in frames:
            self._send((conn,), topic, frame, format_position(state.epoch, number))
        if conn.recovery:
            report = {
                TOPIC_HEADER: topic,
                RECOVERED_HEADER: str(len(frames)),
                POSITION_HEADER: format_position(state.epoch, state.last),
            }
            if first > offset + 1:
                report[MISSED_HEADER] = f"{offset + 1}-{first - 1}"
            conn.deliver(encode_frame(RECOVERY_KIND, b"", report))

    def _recent_after(self, state: _Topic, offset: int) -> list[tuple[int, bytes]] | None:
        """What followed `offset` from the frames delivered here lately; None when they do not reach back."""
        if offset == state.last:
            return []
        recent = self._expire(state)
        if not recent or recent[0][0] > offset + 1:
            return None
        return [(number, frame) for number, _, frame in recent if number > offset]

    def _expire(self, state: _Topic) -> deque[tuple[int, float, bytes]]:
        recent = state.recent
        if self._ttl is not None:
            oldest = time.monotonic() - self._ttl
            while recent and recent[0][1] < oldest:
                recent.popleft()
        return recent

    def _combine(self, stored: StoredHistory, state: _Topic, offset: int) -> list[tuple[int, bytes]] | None:
        """What followed `offset` up to this replica's last delivery: the broker's, then this replica's."""
        frames: list[tuple[int, bytes]] = []
        for number, envelope in stored.frames:
            if number > state.last:
                break
            frame = self._frame(envelope)
            if frame is not None:
                frames.append((number, frame))
        read_to = min(stored.last, state.last)
        if state.last > read_to:
            recent = self._expire(state)
            if not recent or recent[0][0] > read_to + 1:
                return None
            frames.extend((number, frame) for number, _, frame in recent if number > read_to)
        return frames

    # Publications.

    def take(self, topic: str, epoch: str, offset: int, frame: bytes) -> bool:
        """A publication the broker numbered; False when `topic` has no local exact subscriber here."""
        state = self._topics.get(topic)
        if state is None:
            return False
        if state.busy or state.ready is None or not state.ready.done():
            state.pending.append((epoch, offset, frame))
            return True
        self._take(topic, state, epoch, offset, frame)
        return True

    def _take(self, topic: str, state: _Topic, epoch: str, offset: int, frame: bytes) -> bool:
        """Deliver one in sequence; False when it is past a gap (then held, and the gap read)."""
        if epoch != state.epoch:
            self._reset(topic, state, epoch, offset)
        if offset <= state.last:
            return True  # delivered already (read from the history, or a second copy)
        if offset > state.last + 1:
            state.pending.appendleft((epoch, offset, frame))
            self._fill(topic, state)
            return False
        self._deliver(topic, state, offset, frame)
        return True

    def _deliver(self, topic: str, state: _Topic, offset: int, frame: bytes) -> None:
        state.last = offset
        recent = state.recent
        recent.append((offset, time.monotonic(), frame))
        if len(recent) > self._size:
            recent.popleft()
        self._send(self._matching(topic), topic, frame, format_position(state.epoch, offset))

    def _drain(self, topic: str, state: _Topic) -> None:
        pending = state.pending
        while pending and not state.busy:
            if not self._take(topic, state, *pending.popleft()):
                return

    def _reset(self, topic: str, state: _Topic, epoch: str, offset: int) -> None:
        """Another epoch: say so to the local subscribers, then follow it from `offset` on."""
        state.recent.clear()
        if state.epoch:  # the broker's history restarted: what its new epoch numbered so far is read
            state.epoch, state.last = epoch, 0
            self._tell(topic, state, "?", _RESET)
        else:  # where the topic stood was never known here (the broker was unreachable): from now on
            state.epoch, state.last = epoch, offset - 1
            self._tell(topic, state, "?", _UNREACHABLE)

    def _tell(self, topic: str, state: _Topic, missed: str, reason: str = "") -> None:
        """A loss to each local exact subscriber that recovers (its client reports a RecoveryError)."""
        report = {
            TOPIC_HEADER: topic,
            RECOVERED_HEADER: "0",
            MISSED_HEADER: missed,
            POSITION_HEADER: format_position(state.epoch, state.last),
        }
        if reason:
            report[REASON_HEADER] = reason
        frame = encode_frame(RECOVERY_KIND, b"", report)
        for conn in self._matching(topic):
            if conn.recovery and topic in conn.topics:
                conn.deliver(frame)

    # Reading the broker's history.

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _start(self, topic: str, state: _Topic) -> None:
        """Subscribe at the broker, then learn where the topic stands; what arrived meanwhile follows."""
        assert state.ready is not None
        known = False
        try:
            await self._broker.subscribe(topic)
            stored = await self._broker.history_since(topic, None)
            state.epoch, state.last = stored.epoch, stored.last
            known = True
        except Exception:  # unreachable: the subscription is made on reconnection, and read then
            state.stale = True
        finally:
            if not state.ready.done():
                state.ready.set_result(known)
        if known:
            self._drain(topic, state)

    def _fill(self, topic: str, state: _Topic) -> asyncio.Future[None]:
        """Read the broker from this replica's last delivery on (unless a read is under way); done when read."""
        if state.reading is None:
            state.reading = asyncio.get_running_loop().create_future()
            self._spawn(self._read(topic, state, state.reading))
        return state.reading

    async def _catch_up(self, topic: str, state: _Topic, offset: int) -> None:
        """Deliver here up to `offset` (a client saw it on another replica) by reading the broker."""
        while state.last < offset and self._topics.get(topic) is state:
            before = state.last
            await asyncio.shield(self._fill(topic, state))
            if state.stale or state.last == before:
                return

    async def _read(self, topic: str, state: _Topic, done: asyncio.Future[None]) -> None:
        """Read what followed this replica's last delivery from the broker and deliver it in order."""
        again = False
        try:
            try:
                stored = await self._broker.history_since(topic, state.last)
            except Exception:
                state.stale = True  # read again when the broker is back (resumed)
                return
            if self._topics.get(topic) is not state:
                return
            state.stale = False
            if stored.epoch != state.epoch:
                again = bool(state.epoch)  # then read the new epoch from its start
                self._reset(topic, state, stored.epoch, stored.last + 1)
                if again:
                    return
            first = stored.first_held(state.last)
            if first > state.last + 1:
                missed = f"{state.last + 1}-{first - 1}"
                state.last = first - 1
                self._tell(topic, state, missed)
            for number, envelope in stored.frames:
                if number == state.last + 1:
                    frame = self._frame(envelope)
                    if frame is not None:
                        self._deliver(topic, state, number, frame)
                    else:
                        state.last = number  # undecodable: reported, and skipped by the sequence
        finally:
            state.reading = None
            alive = self._topics.get(topic) is state
            if alive and again:
                self._chain(self._fill(topic, state), done)
            else:
                if alive:
                    self._drain(topic, state)
                if not done.done():
                    done.set_result(None)

    @staticmethod
    def _chain(source: asyncio.Future[None], target: asyncio.Future[None]) -> None:
        source.add_done_callback(lambda _: None if target.done() else target.set_result(None))

    def resumed(self) -> None:
        """The broker is back: read each topic from where this replica stopped."""
        for topic, state in list(self._topics.items()):
            ready = state.ready
            if ready is not None and ready.done():
                self._fill(topic, state)

    # Envelopes.

    def _frame(self, envelope: bytes) -> bytes | None:
        try:
            return decode_envelope(envelope).frame
        except EnvelopeError as exc:
            self._report(EnvelopeDecodeError(self._broker.name, len(envelope), str(exc)))
            return None
