"""Sequence numbers per topic between replicas, so a publication lost in the broker is counted.

Pub/sub brokers (NATS core, Redis pub/sub) deliver at most once: what
reaches the broker while a replica is not subscribed (during an outage, or
before it subscribed again) is gone. Each replica numbers its publications
per topic (and its broadcasts on their own), and each receiving replica
remembers the last number it saw per sender and topic: a jump is a loss,
counted and reported, never silent. Both tables are bounded; a sender that
forgot a topic starts again at 1, which a receiver takes as a restart, not
a loss.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable

__all__ = ["Gaps", "Numbering"]

_TOPICS = 65_536
"""Topics (per sender on the receiving side) whose numbers are remembered."""


class Numbering:
    """The next number of each topic a replica publishes on (``""``: broadcasts)."""

    __slots__ = ("_next",)

    def __init__(self) -> None:
        self._next: OrderedDict[str, int] = OrderedDict()

    def next(self, topic: str) -> int:
        """The number of the next publication on `topic`."""
        numbers = self._next
        seq = numbers.get(topic, 0) + 1
        numbers[topic] = seq
        if seq == 1 and len(numbers) > _TOPICS:
            numbers.popitem(last=False)
        return seq


class Gaps:
    """The last number seen per sender and topic; tells how many went missing."""

    __slots__ = ("_last",)

    def __init__(self) -> None:
        self._last: OrderedDict[tuple[str, str], int] = OrderedDict()

    def seen(self, origin: str, topic: str, seq: int) -> int:
        """Record `seq`; returns how many numbers before it never arrived."""
        key = (origin, topic)
        last = self._last.get(key)
        self._last[key] = seq
        if last is None:
            if len(self._last) > _TOPICS:
                self._last.popitem(last=False)
            return 0
        return seq - last - 1 if seq > last + 1 else 0  # seq <= last: the sender started again

    def forget(self, matches: Callable[[str], bool]) -> None:
        """This replica stopped receiving the topics `matches` accepts: a later jump on them is no loss."""
        for key in [key for key in self._last if matches(key[1])]:
            del self._last[key]
