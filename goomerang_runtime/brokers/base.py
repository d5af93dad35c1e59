"""The broker interface: what carries publications and broadcasts between replicas.

A server delivers to its own clients directly, and hands each publication
and broadcast to its broker as well, wrapped in an envelope tagged with the
server's replica id. The broker brings it to the other replicas, which hand
it to their matching clients; a replica ignores its own envelopes. The
broker only moves opaque bytes: encoding, filtering and fan-out stay in the
server.

Queue groups (optional, ``groups = True``): the server tells the broker of
each local member of a group (:meth:`Broker.join`, :meth:`Broker.leave`),
and the broker brings each publication to one replica per group
(:meth:`BrokerReceiver.deliver_group`), choosing among all the replicas'
members. A replica that has no member able to take it hands it back
(:meth:`Broker.hand_back`) for another replica.

A shared history (optional, :attr:`Broker.keeps_history`): the broker keeps
the last publications of each topic and numbers them itself, at publish
time, so a position means the same on every replica. It then brings each
publication to every replica, the publisher's own included, with its
position (:meth:`BrokerReceiver.deliver_positioned`), and answers
:meth:`Broker.history_since` with what it still holds.
"""

from __future__ import annotations

import enum
import logging
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import ClassVar, Protocol, TypeVar

from ..errors import BrokerError, GroupError
from ..hooks import Hook

__all__ = ["Broker", "BrokerReceiver", "BrokerState", "StoredHistory"]

_log = logging.getLogger("goomerang")
StateFn = TypeVar("StateFn", bound=Callable[["BrokerState"], object])


def lost_hand_back(broker: str, group: str, topic: str, declined: int) -> BrokerError:
    """The report of a publication that no replica's member of `group` could take (`declined` replicas tried)."""
    why = f"a publication on {topic!r} found no member of queue group {group!r} to take it"
    why += f" ({declined} replicas declined)"
    return BrokerError(broker, why, 1)


@dataclass(frozen=True, slots=True)
class StoredHistory:
    """What a broker's history holds of one topic after some offset, read at one instant.

    `epoch` names the history (a new one after the broker lost it: wiped,
    restarted without persistence); `last` is the offset of the newest
    publication ever numbered in that epoch (0: none); `frames` are the
    ``(offset, envelope)`` pairs still held after the asked offset, oldest
    first, none expired. Only the oldest can be gone: what lies between the
    asked offset and the first frame (or `last`, when there is none) is lost.
    """

    epoch: str
    last: int
    frames: list[tuple[int, bytes]]

    def first_held(self, after: int) -> int:
        """The first offset after `after` that is held (``last + 1`` when none is)."""
        return self.frames[0][0] if self.frames else max(after, self.last) + 1


class BrokerState(enum.IntEnum):
    """Where a broker connection is; compare with ``is``."""

    NEW = 0
    CONNECTING = 1
    CONNECTED = 2
    """Connected, with every subscription in effect."""
    DISCONNECTED = 3
    """Unreachable; local delivery goes on and it reconnects in the background."""
    CLOSED = 4


class BrokerReceiver(Protocol):
    """What a broker hands incoming data to (the server's pub/sub engine)."""

    @property
    def replica(self) -> str:
        """This server's id, as envelopes carry it."""
        ...

    def deliver_publication(self, data: bytes) -> None:
        """An envelope published on a topic; a broker may deliver one twice (the receiver dedupes)."""
        ...

    def deliver_broadcast(self, data: bytes) -> None:
        """An envelope from the broadcast channel."""
        ...

    def deliver_group(self, group: str, member: str, data: bytes) -> None:
        """An envelope for one member of queue `group` on this replica.

        `member` is the one the broker chose (a key given to :meth:`Broker.join`),
        or ``""`` to let the receiver choose.
        """
        ...

    def broker_error(self, error: BaseException) -> None:
        """Report an error (the server passes it to its error hooks)."""
        ...

    def deliver_positioned(self, epoch: str, offset: int, data: bytes) -> None:
        """An envelope the broker's history numbered `offset` of its topic, in `epoch` (every replica's own too)."""
        ...

    def broker_resumed(self) -> None:
        """The broker is reachable again, with every subscription in effect: what it holds may be newer."""
        ...


class Broker(ABC):
    """Carries envelopes between the replicas of one deployment.

    One instance serves one server. Subscriptions are topic patterns with the
    wildcards of :mod:`goomerang_runtime.topics`; the server subscribes to a
    pattern when its first local subscriber appears and unsubscribes when the
    last one leaves. A broker must deliver at least the publications matching
    those patterns, and may deliver more (the server matches each against its
    own subscribers). `publish` and `broadcast` never block: an implementation
    queues what it cannot send at once. What one server hands over must reach
    each other server in the order it was handed over. An implementation
    calls ``super().__init__(name)`` and reports through ``self._report``.

    A broker with queue groups sets ``groups = True`` and implements
    :meth:`join`, :meth:`leave` and :meth:`hand_back`; a server refuses group
    subscriptions (reporting :class:`~goomerang_runtime.GroupError`) on a
    broker without them.
    """

    groups: ClassVar[bool] = False
    """Whether this broker carries queue groups between replicas."""

    keeps_history: bool = False
    """Whether this broker keeps the topics' history (shared by the replicas); set by the broker's options."""

    def __init__(self, name: str) -> None:
        self.name = name
        """How errors and logs name this broker (a URL without credentials)."""
        self._receiver: BrokerReceiver | None = None
        self._state = BrokerState.NEW
        self._state_hook: Hook[[BrokerState]] = Hook("on_state_change", self._report)

    @property
    def state(self) -> BrokerState:
        """Where the connection to the broker is now."""
        return self._state

    @property
    def connected(self) -> bool:
        """Whether publications reach the other replicas now (e.g. for a readiness probe)."""
        return self._state is BrokerState.CONNECTED

    def on_state_change(self, fn: StateFn) -> StateFn:
        """Call ``fn(state)`` on every state change (usable as a decorator)."""
        self._state_hook.add(fn)
        return fn

    def _set_state(self, state: BrokerState) -> None:
        if state is not self._state:
            self._state = state
            self._state_hook(state)

    def _report(self, error: BaseException) -> None:
        if self._receiver is not None:
            self._receiver.broker_error(error)
        else:
            _log.warning("goomerang broker %s: %s", self.name, error)

    @abstractmethod
    async def start(self, receiver: BrokerReceiver) -> None:
        """Connect and start delivering to `receiver`.

        Returns after the first connection attempt; if it failed, the error
        went to the receiver and the broker keeps retrying in the background.
        """

    def room(self) -> Awaitable[None] | None:
        """None while publications are taken at once; else what to await before the next (backpressure)."""
        return None

    @abstractmethod
    def publish(self, topic: str, data: bytes) -> None:
        """Send an envelope published on `topic` to the replicas subscribed to it."""

    @abstractmethod
    def broadcast(self, data: bytes) -> None:
        """Send an envelope to every replica."""

    @abstractmethod
    async def subscribe(self, pattern: str) -> None:
        """Receive publications matching `pattern`.

        Returns once the subscription is in effect at the broker, or at once
        while the broker is unreachable (it is made on reconnection).
        """

    @abstractmethod
    def unsubscribe(self, pattern: str) -> None:
        """Stop receiving publications through the subscription to `pattern`."""

    async def join(self, group: str, pattern: str, member: str, *, literal: bool = False) -> None:
        """One more local member of queue `group` on `pattern` (`member`: its key on this replica).

        Returns once the broker counts it in (or at once while unreachable).
        A `literal` pattern matches only the identical topic (a subscriber
        without wildcards).
        """
        raise GroupError(group, f"the broker {self.name} has no queue groups")

    def leave(self, group: str, pattern: str, member: str, *, literal: bool = False) -> None:
        """`member` left queue `group` on `pattern`."""
        raise GroupError(group, f"the broker {self.name} has no queue groups")

    def hand_back(self, group: str, topic: str, data: bytes, declined: tuple[str, ...]) -> None:
        """Offer an envelope on `topic` to another replica with a member of `group`.

        `declined` are the replicas that could not take it (this one last):
        a broker that can avoid them does.
        """
        raise GroupError(group, f"the broker {self.name} has no queue groups")

    def configure_history(self, size: int, ttl: float | None) -> None:
        """Keep the last `size` publications of each topic, each `ttl` seconds at most (None: no expiry).

        The server calls it once, before :meth:`start`, when
        :attr:`keeps_history` is set.
        """
        raise NotImplementedError(f"the broker {self.name} keeps no history")

    async def history_since(self, topic: str, after: int | None) -> StoredHistory:
        """What the history holds of `topic` after offset `after` (None: only where it stands).

        Makes the topic's epoch if it has none yet. Raises
        :class:`~goomerang_runtime.BrokerError` while the broker is unreachable.
        """
        raise NotImplementedError(f"the broker {self.name} keeps no history")

    @abstractmethod
    async def close(self) -> None:
        """Send what is still queued (bounded by the broker's timeout), then disconnect."""
