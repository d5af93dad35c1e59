"""The in-memory broker: replicas in one process, connected by a shared bus.

A server without a broker delivers to its own clients only; that is the
default. To join several servers of one process (tests, an in-process demo
of a deployment), give each a :class:`MemoryBroker` on one
:class:`MemoryBus`. Delivery is synchronous and in call order. Queue groups
span the bus: it knows every replica's members and hands each publication
to one of them per group, in turn.
"""

from __future__ import annotations

from typing import ClassVar

from .._groups import GroupTable
from ..errors import AlreadyRunningError
from ..topics import pattern_matches
from .base import Broker, BrokerReceiver, BrokerState, lost_hand_back

__all__ = ["MemoryBroker", "MemoryBus"]

_Member = tuple["MemoryBroker", str]


class MemoryBus:
    """What :class:`MemoryBroker` instances of one process share, as a broker server would."""

    __slots__ = ("_brokers", "_groups")

    def __init__(self) -> None:
        self._brokers: list[MemoryBroker] = []
        self._groups: GroupTable[_Member] = GroupTable()

    def _others(self, broker: MemoryBroker) -> list[MemoryBroker]:
        return [other for other in self._brokers if other is not broker]

    def _route(self, group: str, topic: str, data: bytes, declined: tuple[str, ...] = ()) -> bool:
        """Hand `data` to the replica of the member of `group` whose turn it is, avoiding `declined`."""

        def usable(member: _Member) -> bool:
            receiver = member[0]._receiver
            return receiver is not None and receiver.replica not in declined

        chosen = self._groups.choose(group, topic, usable=usable)
        if chosen is None:
            return False
        broker, key = chosen
        assert broker._receiver is not None
        broker._receiver.deliver_group(group, key, data)
        return True


class MemoryBroker(Broker):
    """A broker for one server, joined to the other servers on `bus`.

    ::

        bus = MemoryBus()
        a = Server(broker=MemoryBroker(bus))
        b = Server(broker=MemoryBroker(bus))   # what a client of a publishes reaches subscribers on b
    """

    groups: ClassVar[bool] = True

    def __init__(self, bus: MemoryBus | None = None) -> None:
        super().__init__("memory")
        self._bus = bus if bus is not None else MemoryBus()
        self._patterns: set[str] = set()
        self._members: set[tuple[str, str, str, bool]] = set()

    async def start(self, receiver: BrokerReceiver) -> None:
        if self._state is not BrokerState.NEW:
            raise AlreadyRunningError(f"a broker serves one server once (state {self._state.name})")
        self._receiver = receiver
        self._bus._brokers.append(self)
        self._set_state(BrokerState.CONNECTED)

    def publish(self, topic: str, data: bytes) -> None:
        for other in self._bus._others(self):
            receiver = other._receiver
            if receiver is None:
                continue
            if any(pattern_matches(pattern, topic) for pattern in other._patterns):
                receiver.deliver_publication(data)
        groups = self._bus._groups
        if groups:
            for group in groups.groups(topic):
                self._bus._route(group, topic, data)

    def broadcast(self, data: bytes) -> None:
        for other in self._bus._others(self):
            if other._receiver is not None:
                other._receiver.deliver_broadcast(data)

    async def subscribe(self, pattern: str) -> None:
        self._patterns.add(pattern)

    def unsubscribe(self, pattern: str) -> None:
        self._patterns.discard(pattern)

    async def join(self, group: str, pattern: str, member: str, *, literal: bool = False) -> None:
        self._members.add((group, pattern, member, literal))
        self._bus._groups.join((self, member), group, pattern, literal=literal)

    def leave(self, group: str, pattern: str, member: str, *, literal: bool = False) -> None:
        self._members.discard((group, pattern, member, literal))
        self._bus._groups.leave((self, member), group, pattern, literal=literal)

    def hand_back(self, group: str, topic: str, data: bytes, declined: tuple[str, ...]) -> None:
        if not self._bus._route(group, topic, data, declined):
            self._report(lost_hand_back(self.name, group, topic, len(declined)))

    async def close(self) -> None:
        if self in self._bus._brokers:
            self._bus._brokers.remove(self)
        self._patterns.clear()
        groups = self._bus._groups
        for group, pattern, member, literal in self._members:
            groups.leave((self, member), group, pattern, literal=literal)
        self._members.clear()
        self._set_state(BrokerState.CLOSED)
