"""A server's bounded per-topic history of publications, for clients that catch up after a reconnect.

Sans-I/O: no asyncio here. Each publication on a topic gets the next offset
of that topic (1, 2, 3...); the last `size` of them are kept, each for at
most `ttl` seconds. The history has an epoch, random per instance (per server
start): an offset is only meaningful with the epoch it was given under, so a
restarted server, or another replica, never mistakes its offsets for the old
ones. A topic's history that cannot be trusted any more (a replica stopped
receiving the topic from the broker, or the broker lost some of it) is
reset: that topic gets a new epoch, and a client naming the old one is told
its loss is unknown rather than handed an incomplete replay.

A client that saw up to ``(epoch, offset)`` on a topic asks :meth:`History.since`
what followed: the frames still held, in order, and the range of offsets that
are gone (evicted by the bound or expired), which the client is told about.

The whole history is bounded in bytes (`max_bytes`: frames, plus what each
entry and each topic costs to keep): past it, frames give way, oldest first
from the least recently published topic on, and a client is told the range
it lost. Only when no frame is left and the topics' bookkeeping alone is
over the bound does the least recently published topic forget its offsets.
A topic whose offsets were forgotten starts again at 1 under a new epoch, and every topic
without offsets now answers to that epoch, so an old position is reported
as an unknown loss, never taken for a new one.
"""

from __future__ import annotations

import secrets
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass

__all__ = [
    "DEFAULT_HISTORY_MAX_BYTES",
    "MIN_HISTORY_MAX_BYTES",
    "History",
    "Recovery",
    "format_position",
    "parse_position",
]

DEFAULT_HISTORY_MAX_BYTES = 64 * 1024 * 1024
"""Bytes a server's history may hold across all its topics (the ``history_max_bytes`` option)."""
MIN_HISTORY_MAX_BYTES = 16 * 1024
_ENTRY_COST = 120
"""Bytes one kept frame costs beyond its own (the entry's tuple, the bytes object's header, its slot)."""
_TOPIC_COST = 1024
"""Bytes one topic's bookkeeping costs (its deque, its state, its key in the table)."""


def format_position(epoch: str, offset: int) -> str:
    """The ``epoch:offset`` text of a position, as it travels in a header."""
    return f"{epoch}:{offset}"


def parse_position(text: str) -> tuple[str, int] | None:
    """``(epoch, offset)`` from its header text; None if it is not one."""
    epoch, sep, number = text.rpartition(":")
    if not sep or not epoch or not number.isdigit() or len(number) > 19:
        return None
    return epoch, int(number)


@dataclass(frozen=True, slots=True)
class Recovery:
    """What a client that saw up to some offset gets back.

    `frames`: ``(offset, frame)`` pairs still held, in order. `missed_from` ..
    `missed_to` (inclusive): offsets that cannot be recovered; both None when
    nothing is missing. `unknown`: the epoch differs (another server instance),
    so how much was missed is not known and nothing is replayed.
    """

    frames: list[tuple[int, bytes]]
    missed_from: int | None = None
    missed_to: int | None = None
    unknown: bool = False

    @property
    def missed(self) -> int | None:
        """How many publications are lost for good; None when not known."""
        if self.unknown:
            return None
        if self.missed_from is None or self.missed_to is None:
            return 0
        return self.missed_to - self.missed_from + 1


class _Topic:
    __slots__ = ("entries", "epoch", "last")

    def __init__(self, epoch: str) -> None:
        self.epoch = epoch
        self.last = 0
        """The offset of the newest publication ever appended (kept when its entry is gone)."""
        self.entries: deque[tuple[int, float, bytes]] = deque()


class History:
    """The last `size` publications of each topic, each kept `ttl` seconds at most (None: no expiry)."""

    def __init__(
        self,
        size: int,
        ttl: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        *,
        max_bytes: int = DEFAULT_HISTORY_MAX_BYTES,
    ) -> None:
        if size < 1:
            raise ValueError("history size must be at least 1")
        if max_bytes < MIN_HISTORY_MAX_BYTES:
            raise ValueError(f"history max_bytes must be at least {MIN_HISTORY_MAX_BYTES}")
        self.size = size
        self.ttl = ttl
        self.max_bytes = max_bytes
        self.epoch = secrets.token_hex(8)
        """Random per instance: offsets of another server instance are not comparable."""
        self._clock = clock
        self._topics: OrderedDict[str, _Topic] = OrderedDict()
        """Least recently published first."""
        self._framed: OrderedDict[str, _Topic] = OrderedDict()
        """The topics holding frames (or that did until they expired), least recently published first."""
        self._absent = self.epoch
        """The epoch of every topic without offsets: changes when a topic's offsets are forgotten."""
        self._resets = 0
        self._held = 0

    @property
    def held_bytes(self) -> int:
        """What the history holds now, counted as against `max_bytes`."""
        return self._held

    def epoch_of(self, topic: str) -> str:
        """The epoch of `topic`'s offsets: the history's, or a new one since the topic was reset or forgotten."""
        state = self._topics.get(topic)
        return self._absent if state is None else state.epoch

    def position(self, topic: str) -> str:
        """``epoch:offset`` of the newest publication on `topic` (offset 0: none yet)."""
        return format_position(self.epoch_of(topic), self.last(topic))

    def reset(self, topic: str) -> None:
        """Forget `topic`'s publications and give it a new epoch: what it held may be incomplete."""
        state = self._topics.get(topic)
        if state is None:
            return
        self._resets += 1
        state.epoch = f"{self.epoch}.{self._resets}"
        entries = state.entries
        self._held -= sum(len(frame) for _, _, frame in entries) + _ENTRY_COST * len(entries)
        entries.clear()

    def reset_matching(self, matches: Callable[[str], bool]) -> None:
        """:meth:`reset` every topic for which `matches(topic)` holds."""
        for topic in [topic for topic in self._topics if matches(topic)]:
            self.reset(topic)

    def append(self, topic: str, frame: bytes) -> int:
        """Keep `frame` as the next publication on `topic`; returns its offset."""
        topics = self._topics
        state = topics.get(topic)
        if state is None:
            state = topics[topic] = _Topic(self._absent)
            self._held += _TOPIC_COST
        else:
            topics.move_to_end(topic)
        framed = self._framed
        if topic in framed:
            framed.move_to_end(topic)
        else:
            framed[topic] = state
        offset = state.last = state.last + 1
        entries = state.entries
        entries.append((offset, self._clock(), frame))
        self._held += len(frame) + _ENTRY_COST
        if len(entries) > self.size:
            self._held -= len(entries.popleft()[2]) + _ENTRY_COST
        if self._held > self.max_bytes:
            self._give_way(state)
        return offset

    def _give_way(self, current: _Topic) -> None:
        """Bring the history back under `max_bytes`: frames first, offsets only once no frame is left.

        Frames go from the least recently published topic on, so a topic's
        lost offsets stay a known range; a topic's offsets are forgotten (an
        unknown loss) only when its bookkeeping alone is over the bound.
        """
        framed = self._framed
        topics = self._topics
        while self._held > self.max_bytes:
            if framed:
                topic, state = next(iter(framed.items()))
                entries = state.entries
                if entries:  # empty when it expired or was reset: it leaves the table here
                    self._held -= len(entries.popleft()[2]) + _ENTRY_COST
                if not entries:
                    del framed[topic]
                continue
            topic, oldest = next(iter(topics.items()))
            if oldest is current:  # nothing else is left
                return
            del topics[topic]  # its offsets are forgotten: old positions on it become an unknown loss
            self._held -= _TOPIC_COST
            self._resets += 1
            self._absent = f"{self.epoch}.{self._resets}"

    def last(self, topic: str) -> int:
        """The offset of the newest publication on `topic` (0: none yet)."""
        state = self._topics.get(topic)
        return 0 if state is None else state.last

    def _expire(self, state: _Topic) -> None:
        if self.ttl is None:
            return
        oldest = self._clock() - self.ttl
        entries = state.entries
        while entries and entries[0][1] < oldest:
            self._held -= len(entries.popleft()[2]) + _ENTRY_COST

    def since(self, topic: str, epoch: str, offset: int) -> Recovery:
        """What followed ``(epoch, offset)`` on `topic`: the frames held and the offsets lost."""
        state = self._topics.get(topic)
        if epoch != (self._absent if state is None else state.epoch):
            return Recovery([], unknown=True)
        if state is None or offset >= state.last:
            return Recovery([])
        self._expire(state)
        frames = [(number, frame) for number, _, frame in state.entries if number > offset]
        first = frames[0][0] if frames else state.last + 1
        if first > offset + 1:
            return Recovery(frames, offset + 1, first - 1)
        return Recovery(frames)
