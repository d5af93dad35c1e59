"""The in-memory broker: replicas in one process, connected by a shared bus.

A server without a broker delivers to its own clients only; that is the
default. To join several servers of one process (tests, an in-process demo
of a deployment), give each a :class:`MemoryBroker` on one
:class:`MemoryBus`. Delivery is synchronous and in call order.
"""

from __future__ import annotations

from ..errors import AlreadyRunningError
from ..topics import pattern_matches
from .base import Broker, BrokerReceiver, BrokerState

__all__ = ["MemoryBroker", "MemoryBus"]


class MemoryBus:
    """What :class:`MemoryBroker` instances of one process share, as a broker server would."""

    __slots__ = ("_brokers",)

    def __init__(self) -> None:
        self._brokers: list[MemoryBroker] = []

    def _others(self, broker: MemoryBroker) -> list[MemoryBroker]:
        return [other for other in self._brokers if other is not broker]


class MemoryBroker(Broker):
    """A broker for one server, joined to the other servers on `bus`.

    ::

        bus = MemoryBus()
        a = Server(broker=MemoryBroker(bus))
        b = Server(broker=MemoryBroker(bus))   # what a client of a publishes reaches subscribers on b
    """

    def __init__(self, bus: MemoryBus | None = None) -> None:
        super().__init__("memory")
        self._bus = bus if bus is not None else MemoryBus()
        self._patterns: set[str] = set()

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

    def broadcast(self, data: bytes) -> None:
        for other in self._bus._others(self):
            if other._receiver is not None:
                other._receiver.deliver_broadcast(data)

    async def subscribe(self, pattern: str) -> None:
        self._patterns.add(pattern)

    def unsubscribe(self, pattern: str) -> None:
        self._patterns.discard(pattern)

    async def close(self) -> None:
        if self in self._bus._brokers:
            self._bus._brokers.remove(self)
        self._patterns.clear()
        self._set_state(BrokerState.CLOSED)
