"""Subscriptions as typed async iterators, beside the callback form.

::

    async with client.subscription("rooms.*", Said) as sub:
        async for msg in sub:              # msg: Message[Said]
            print(msg.metadata.topic, msg.payload.text)

Entering the block subscribes (the command is queued before ``__aenter__``
returns, so what is published after it reaches the iterator); leaving it,
or ``await sub.close()``, unsubscribes, unless another subscription of this
client still uses the same topic. The generated typed topics have the same
form: ``chat.RoomsTopic(client).subscription("rooms.go")``.

Each publication on a matching topic is buffered for the iterator, in the
order the client read them, up to ``max_pending`` messages and
``max_pending_bytes`` payload bytes. A reader that falls further behind is
a slow consumer, as on the server: the subscription ends, the client's
error hooks get a :class:`~goomerang_runtime.SlowSubscriptionError`, and the
iterator yields what was buffered, then raises that error. Nothing is
dropped silently and the connection and other subscriptions go on.

The iterator also ends when the client does: after ``client.close()`` or a
clean close by the server (code 1000) it stops; after a lost connection it
raises :class:`~goomerang_runtime.ConnectionLostError`, or
:class:`~goomerang_runtime.ReconnectFailedError` once a reconnecting client
gave up. While a client with a reconnection policy reconnects, the
subscription stays and is made again on the new connection.

Messages reach an iterator as the client reads them, without the handler
chain: middlewares run around handlers, and an iterator is not one.

In a queue group (``client.subscription("jobs.*", Job, group="workers")``)
the iterator gets the publications the server chose this client for. To
leave without dropping what is already on its way, keep reading and call
``await client.unsubscribe("jobs.*", group="workers")``: the iterator ends
after the last publication routed to it. Leaving the block at once drops
what is still on its way (it is reported).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any, Generic, Self, TypeVar

from .errors import UsageError
from .message import Message, ProtoMessage, kind_of

__all__ = ["DEFAULT_MAX_PENDING", "DEFAULT_MAX_PENDING_BYTES", "Subscription"]

DEFAULT_MAX_PENDING = 1024
"""Messages a subscription iterator buffers for a slow reader before the subscription ends."""
DEFAULT_MAX_PENDING_BYTES = 8 * 1024 * 1024
"""Payload bytes a subscription iterator buffers before the subscription ends (a larger message still fits alone)."""

P = TypeVar("P", bound=ProtoMessage)


_Step = Callable[["Subscription[Any]"], Awaitable[None]]
"""What the client does when a subscription is entered (subscribe) or closed (unsubscribe)."""


class Subscription(Generic[P]):
    """A subscription to a topic or pattern whose publications of kind `P` are read by iterating.

    Made by :meth:`Client.subscription <goomerang_runtime.Client.subscription>`
    (or a typed topic's ``subscription``); an async context manager and an
    async iterator of ``Message[P]``. See :mod:`goomerang_runtime.subscription`
    for the buffering and slow-consumer rules.
    """

    __slots__ = (
        "_buffer",
        "_bytes",
        "_close",
        "_ended",
        "_entered",
        "_error",
        "_open",
        "_ready",
        "group",
        "kind",
        "max_pending",
        "max_pending_bytes",
        "topic",
    )

    def __init__(
        self,
        topic: str,
        kind: type[P],
        max_pending: int,
        max_pending_bytes: int,
        open_: _Step,
        close: _Step,
        group: str = "",
    ) -> None:
        self._open = open_
        self._close = close
        self.topic = topic
        """The topic or wildcard pattern subscribed to."""
        self.group = group
        """The queue group this subscription is a member of ("" for none)."""
        self.kind = kind
        """The message class whose publications this subscription yields."""
        self.max_pending = max_pending
        """Messages buffered at most for the reader."""
        self.max_pending_bytes = max_pending_bytes
        """Payload bytes buffered at most for the reader."""
        self._buffer: deque[Message[P]] = deque()
        self._bytes = 0
        self._entered = False
        self._ended = False
        self._error: BaseException | None = None
        self._ready = asyncio.Event()

    def __repr__(self) -> str:
        state = "active" if self.active else ("ended" if self._ended else "not entered")
        group = f" in group {self.group!r}" if self.group else ""
        return f"<Subscription {self.topic!r}{group} of {kind_of(self.kind)} ({state}, {len(self._buffer)} pending)>"

    @property
    def active(self) -> bool:
        """Whether publications are still coming: entered, and neither closed nor ended."""
        return self._entered and not self._ended

    @property
    def pending(self) -> int:
        """Messages received and not yet read."""
        return len(self._buffer)

    @property
    def pending_bytes(self) -> int:
        """Payload bytes of the messages received and not yet read."""
        return self._bytes

    @property
    def messages(self) -> Self:
        """The subscription itself, as an async iterator (``async for msg in sub.messages``, as in nats-py)."""
        return self

    # The async context manager: subscribe on entry, unsubscribe on exit.

    async def __aenter__(self) -> Self:
        if self._entered:
            raise UsageError(f"subscription {self.topic!r} was entered already: make a new one")
        await self._open(self)
        self._entered = True
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Unsubscribe now (unless another subscription of the client uses the topic); iteration then stops.

        Messages already buffered are still yielded. Closing twice does nothing.
        """
        if self._entered and not self._ended:
            self._end(None)
            await self._close(self)

    # The async iterator.

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> Message[P]:
        """The next publication, waiting for one; see the class docstring for how iteration ends."""
        while True:
            if self._buffer:
                msg = self._buffer.popleft()
                self._bytes -= msg.metadata.payload_size
                return msg
            if self._ended:
                if self._error is not None:
                    raise self._error
                raise StopAsyncIteration
            if not self._entered:
                raise UsageError(f"enter the subscription to {self.topic!r} (async with) before iterating it")
            self._ready.clear()
            await self._ready.wait()

    # Called by the client.

    def _put(self, msg: Message[P]) -> bool:
        """Buffer a publication; False when it does not fit (the reader is too slow)."""
        if self._ended:
            return True
        size = msg.metadata.payload_size
        buffer = self._buffer
        if buffer and (len(buffer) >= self.max_pending or self._bytes + size > self.max_pending_bytes):
            return False
        buffer.append(msg)
        self._bytes += size
        self._ready.set()
        return True

    def _end(self, error: BaseException | None) -> None:
        """No more publications: the reader gets what is buffered, then `error` (or the end)."""
        if not self._ended:
            self._ended = True
            self._error = error
            self._ready.set()
