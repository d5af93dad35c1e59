"""What the network brokers (NATS, Redis) share: connection upkeep and an ordered outgoing queue.

One task keeps the connection: it connects, makes every current
subscription, and on loss reports a :class:`BrokerError` and reconnects with
exponential backoff. Another task sends queued envelopes in call order while
connected. While the broker is unreachable, envelopes wait in a queue of
`buffer_size`; further ones are dropped, counted and reported. Subclasses
only open and drop a connection, change subscriptions, and send a batch.

Queue group members are kept like subscriptions: the set the server wants
(:meth:`RemoteBroker.join`, :meth:`RemoteBroker.leave`) is made on the
broker by ``_apply_groups`` on each connection, before anything queued is
sent. Hand-backs travel in the same queue as publications.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from abc import abstractmethod
from collections import deque
from collections.abc import Awaitable, Sequence
from typing import Annotated, Any, ClassVar, Literal, NamedTuple, Self, TypeAlias
from urllib.parse import urlsplit, urlunsplit

from pydantic import ConfigDict, Field, ValidationError, model_validator

from .._validated import _Validated, config_error
from ..errors import AlreadyRunningError, BrokerError, ConfigError, GroupError
from .base import Broker, BrokerReceiver, BrokerState

__all__ = [
    "DEFAULT_BROKER_BUFFER",
    "DEFAULT_BROKER_TIMEOUT",
    "DEFAULT_RECONNECT_DELAY",
    "DEFAULT_RECONNECT_MAX_DELAY",
    "HandBack",
    "Membership",
    "Outgoing",
    "RemoteBroker",
    "RemoteBrokerConfig",
]

DEFAULT_BROKER_BUFFER = 1024
"""Envelopes that may wait for the broker (the ``buffer_size`` option)."""
DEFAULT_BROKER_TIMEOUT = 2.0
"""Seconds for connecting, confirming a subscription and the final flush (the ``timeout`` option)."""
DEFAULT_RECONNECT_DELAY = 0.1
"""First wait between reconnection attempts to the broker, in seconds."""
DEFAULT_RECONNECT_MAX_DELAY = 2.0
"""Longest wait between reconnection attempts to the broker, in seconds."""
_BATCH = 256


class Membership(NamedTuple):
    """One local member of a queue group on a pattern."""

    group: str
    pattern: str
    member: str
    literal: bool


class HandBack(NamedTuple):
    """A publication on `topic` offered again to queue `group`, avoiding the `declined` replicas."""

    group: str
    topic: str
    data: bytes
    declined: tuple[str, ...]


Outgoing: TypeAlias = tuple[str, bytes] | HandBack
"""What waits to be sent: ``(topic, envelope)`` (topic ``""``: a broadcast), or a hand-back."""


class RemoteBrokerConfig(_Validated):
    """Options of a network broker; a bad value raises :class:`ConfigError` naming the field."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    url: str
    prefix: str = "goomerang"
    """Namespace of every subject or channel, so deployments can share a broker."""
    buffer_size: Annotated[int, Field(gt=0)] = DEFAULT_BROKER_BUFFER
    """Envelopes that may wait for the broker (unreachable, or slower than the publishers)."""
    overflow: Literal["wait", "drop"] = "wait"
    """With the buffer full: "wait" slows the publisher down (its connection, or ``server.publish``)
    for up to `timeout`, then drops; "drop" drops at once. Every drop is counted and reported."""
    timeout: Annotated[float, Field(gt=0)] = DEFAULT_BROKER_TIMEOUT
    """Seconds for connecting, for a subscription to be confirmed, and for the final flush."""
    reconnect_delay: Annotated[float, Field(gt=0)] = DEFAULT_RECONNECT_DELAY
    """First wait between reconnection attempts; it doubles up to `reconnect_max_delay`."""
    reconnect_max_delay: Annotated[float, Field(gt=0)] = DEFAULT_RECONNECT_MAX_DELAY

    @model_validator(mode="after")
    def _check_delays(self) -> Self:
        if self.reconnect_max_delay < self.reconnect_delay:
            raise ValueError("reconnect_max_delay must not be below reconnect_delay")
        return self

    @classmethod
    def from_options(cls, owner: str, options: dict[str, Any]) -> Self:
        """Validate keyword options; raises :class:`ConfigError` naming each bad field."""
        try:
            return cls.model_validate(options)
        except ValidationError as exc:  # pydantic's own, where model_validate is not ours (type checkers)
            raise config_error(owner, exc) from None
        except ConfigError as exc:
            raise ConfigError(owner, exc.problems) from None


def _redact(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username or ''}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


class RemoteBroker(Broker):
    """Base of the network brokers; see the module docstring."""

    groups: ClassVar[bool] = False

    def __init__(self, owner: str, options: dict[str, Any]) -> None:
        self._config = RemoteBrokerConfig.from_options(owner, options)
        super().__init__(_redact(self._config.url))
        self._queue: deque[Outgoing] = deque()
        self._wake = asyncio.Event()
        self._drained = asyncio.Event()
        self._up = False
        self._generation = 0
        self._lost: asyncio.Future[BaseException] | None = None
        self._interest: set[str] = set()
        self._applied: set[str] = set()
        self._members: set[Membership] = set()
        self._members_applied: set[Membership] = set()
        self._interest_lock = asyncio.Lock()
        self._dropped = 0
        self._room = asyncio.Event()
        self._room.set()
        self._tasks: list[asyncio.Task[None]] = []
        self._closing = False
        self._background: set[asyncio.Task[None]] = set()
        self._resend_unsent = False
        """Set by a broker that drops a copy of a publication it took already (JetStream, the Redis
        history's script): a batch cut short by a lost connection is sent again (``_unsent``), not lost."""
        self._taken = 0
        """How many of the batch being sent the broker acknowledged (with ``_resend_unsent``)."""

    def _unsent(self, batch: Sequence[Outgoing]) -> list[Outgoing]:
        """What of a batch cut short by a lost connection goes again (with ``_resend_unsent``)."""
        return list(batch[self._taken :])

    @property
    def config(self) -> RemoteBrokerConfig:
        """The validated options."""
        return self._config

    # Subclass contract.

    @abstractmethod
    async def _open(self, generation: int) -> None:
        """Connect and subscribe to the broadcast channel; raise on failure.

        Callbacks of this connection report its loss with
        ``self._connection_lost(generation, error)``.
        """

    @abstractmethod
    async def _apply(self, add: Sequence[str], remove: Sequence[str]) -> None:
        """Change subscriptions on the open connection and wait until the broker confirmed them."""

    async def _apply_groups(self, add: Sequence[Membership], remove: Sequence[Membership]) -> None:
        """Change queue group members on the open connection and wait until the broker has them."""
        raise GroupError(add[0].group if add else remove[0].group, f"the broker {self.name} has no queue groups")

    @abstractmethod
    async def _send(self, batch: Sequence[Outgoing]) -> None:
        """Send envelopes in order; topic ``""`` means a broadcast (hand-backs only with ``groups``)."""

    @abstractmethod
    async def _shut(self) -> None:
        """Drop the connection, if any; never raises."""

    def _connection_lost(self, generation: int, error: BaseException) -> None:
        lost = self._lost
        if generation == self._generation and lost is not None and not lost.done():
            self._up = False
            lost.set_result(error)

    # Lifecycle.

    async def start(self, receiver: BrokerReceiver) -> None:
        if self._state is not BrokerState.NEW:
            raise AlreadyRunningError(f"a broker serves one server once (state {self._state.name})")
        self._receiver = receiver
        loop = asyncio.get_running_loop()
        first: asyncio.Future[None] = loop.create_future()
        self._tasks = [loop.create_task(self._keep_connected(first)), loop.create_task(self._write())]
        await first

    async def close(self) -> None:
        if self._state in (BrokerState.NEW, BrokerState.CLOSED):
            self._set_state(BrokerState.CLOSED)
            return
        if self._up and self._queue:
            self._drained.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._config.timeout):
                    await self._drained.wait()
        self._closing = True
        tasks = [*self._tasks, *self._background]
        for task in tasks:
            task.cancel()
        # Bounded: a client library may swallow a cancellation (redis-py can, mid-reply);
        # such a task then ends at its next `_closing` check.
        self._wake.set()
        await asyncio.wait(tasks, timeout=self._config.timeout)
        self._up = False
        await self._shut()
        if self._queue:
            self._report(BrokerError(self.name, "closed with publications unsent", len(self._queue)))
            self._queue.clear()
        self._set_state(BrokerState.CLOSED)

    async def _keep_connected(self, first: asyncio.Future[None]) -> None:
        config = self._config
        delay = config.reconnect_delay
        outage_reported = False
        while not self._closing:
            self._generation += 1
            self._lost = asyncio.get_running_loop().create_future()
            self._applied = set()
            self._members_applied = set()
            if self._state is BrokerState.NEW:
                self._set_state(BrokerState.CONNECTING)
            try:
                async with asyncio.timeout(config.timeout):
                    await self._open(self._generation)
                    await self._sync_interest(raising=True)
            except Exception as exc:
                await self._shut()
                self._set_state(BrokerState.DISCONNECTED)
                if not outage_reported:
                    why = str(exc) or type(exc).__name__
                    self._report(BrokerError(self.name, f"cannot connect ({why}); retrying in the background"))
                    outage_reported = True
                if not first.done():
                    first.set_result(None)
                await asyncio.sleep(delay * random.uniform(0.8, 1.2))
                delay = min(delay * 2, config.reconnect_max_delay)
                continue
            delay = config.reconnect_delay
            outage_reported = False
            self._up = True
            # A subscription made while connecting saw no connection: apply it now.
            await self._sync_interest()
            if self._dropped:
                dropped, self._dropped = self._dropped, 0
                self._report(BrokerError(self.name, "reconnected after dropping publications", dropped))
            self._set_state(BrokerState.CONNECTED)
            self._wake.set()
            if self.keeps_history and self._receiver is not None:
                self._receiver.broker_resumed()  # what the history got meanwhile is caught up on
            if not first.done():
                first.set_result(None)
            error = await self._lost
            self._up = False
            self._set_state(BrokerState.DISCONNECTED)
            why = str(error) or type(error).__name__
            self._report(BrokerError(self.name, f"connection lost ({why}); local delivery goes on, reconnecting"))
            outage_reported = True
            await self._shut()

    # Subscriptions.

    async def subscribe(self, pattern: str) -> None:
        self._interest.add(pattern)
        if self._up:
            await self._sync_interest()

    def unsubscribe(self, pattern: str) -> None:
        self._interest.discard(pattern)
        if self._up:
            task = asyncio.get_running_loop().create_task(self._sync_interest())
            self._background.add(task)
            task.add_done_callback(self._background.discard)

    async def join(self, group: str, pattern: str, member: str, *, literal: bool = False) -> None:
        self._members.add(Membership(group, pattern, member, literal))
        if self._up:
            await self._sync_interest()

    def leave(self, group: str, pattern: str, member: str, *, literal: bool = False) -> None:
        self._members.discard(Membership(group, pattern, member, literal))
        if self._up:
            task = asyncio.get_running_loop().create_task(self._sync_interest())
            self._background.add(task)
            task.add_done_callback(self._background.discard)

    def hand_back(self, group: str, topic: str, data: bytes, declined: tuple[str, ...]) -> None:
        self._enqueue(HandBack(group, topic, data, declined))

    async def _sync_interest(self, raising: bool = False) -> None:
        async with self._interest_lock:
            add = sorted(self._interest - self._applied)
            remove = sorted(self._applied - self._interest)
            join = sorted(self._members - self._members_applied)
            leave = sorted(self._members_applied - self._members)
            if not add and not remove and not join and not leave:
                return
            generation = self._generation
            try:
                async with asyncio.timeout(self._config.timeout):
                    if add or remove:
                        await self._apply(add, remove)
                        self._applied = (self._applied | set(add)) - set(remove)
                    if join or leave:
                        await self._apply_groups(join, leave)
                        self._members_applied = (self._members_applied | set(join)) - set(leave)
            except Exception as exc:
                if raising:
                    raise
                # Unconfirmed: the connection is deemed broken, and a new one subscribes afresh.
                self._connection_lost(generation, exc if str(exc) else BrokerError(self.name, "no confirmation"))
                return

    # Sending.

    def room(self) -> Awaitable[None] | None:
        if len(self._queue) < self._config.buffer_size or self._config.overflow == "drop" or not self._up:
            return None  # room; or drop at once (while unreachable nobody would be waited for)
        if self._state is BrokerState.CLOSED:
            return None
        return self._wait_room()

    async def _wait_room(self) -> None:
        self._room.clear()
        with contextlib.suppress(TimeoutError):  # then the publication is dropped, and counted
            async with asyncio.timeout(self._config.timeout):
                while len(self._queue) >= self._config.buffer_size and self._state is not BrokerState.CLOSED:
                    await self._room.wait()
                    self._room.clear()

    def publish(self, topic: str, data: bytes) -> None:
        self._enqueue((topic, data))

    def broadcast(self, data: bytes) -> None:
        self._enqueue(("", data))

    def _enqueue(self, item: Outgoing) -> None:
        if self._state is BrokerState.CLOSED:
            return
        if len(self._queue) >= self._config.buffer_size:
            if not self._dropped:
                self._report(
                    BrokerError(
                        self.name,
                        f"{len(self._queue)} publications wait for the broker; dropping new ones until it takes them",
                    )
                )
            self._dropped += 1
            return
        self._queue.append(item)
        self._wake.set()

    async def _write(self) -> None:
        queue = self._queue
        while not self._closing:
            while not (queue and self._up):
                if not queue:
                    self._drained.set()
                self._wake.clear()
                await self._wake.wait()
                if self._closing:
                    return
            batch = [queue.popleft() for _ in range(min(len(queue), _BATCH))]
            self._taken = 0
            self._room.set()
            generation = self._generation
            try:
                # Bounded: a client library may block forever on a dead connection.
                async with asyncio.timeout(self._config.timeout):
                    await self._send(batch)
            except Exception as exc:
                if self._resend_unsent:  # the broker knows what it took: the rest goes on the next connection
                    queue.extendleft(reversed(self._unsent(batch)))
                    self._connection_lost(generation, exc)
                    continue
                self._report(BrokerError(self.name, f"publishing failed ({exc or type(exc).__name__})", len(batch)))
                self._connection_lost(generation, exc)
                continue
            if self._dropped and self._up and len(queue) < self._config.buffer_size:
                # Dropped while connected: the publishers outran the broker. Said once per episode.
                dropped, self._dropped = self._dropped, 0
                self._report(BrokerError(self.name, "publishers outran the broker; publications dropped", dropped))
