"""A connection's single writer: a bounded FIFO of frames and the task draining it.

Every send on a connection goes through its outbox, so frames leave in the
order they were accepted, a slow peer fills only its own queue, and closing
can first flush what was accepted.
"""

from __future__ import annotations

import asyncio
from collections import deque

from ._empty import EMPTY, own
from ._link import Link, LinkClosed
from .errors import ConnectionLostError

__all__ = ["Outbox", "QueueFullTimeout", "frames_text"]


def frames_text(count: int) -> str:
    """``1 frame``, ``2 frames``."""
    return f"{count} frame" if count == 1 else f"{count} frames"


class QueueFullTimeout(Exception):
    """The outbox stayed full for the whole wait."""

    def __init__(self, queued: int, waited: float) -> None:
        self.queued = queued
        self.waited = waited
        super().__init__(queued, waited)


class Outbox:
    """Bounded FIFO of encoded frames written to a link in order.

    A frame that finds the queue empty and the socket ready is written at
    once, without a task switch; otherwise it waits in the queue for the
    writer task, which exists only while the queue is not empty.
    """

    __slots__ = (
        "_bytes",
        "_closed",
        "_empty",
        "_in_write",
        "_items",
        "_limit",
        "_link",
        "_max_bytes",
        "_space",
        "_writer",
    )

    def __init__(self, link: Link, limit: int, max_bytes: int | None = None) -> None:
        self._link = link
        self._limit = limit
        self._max_bytes = max_bytes
        self._bytes = 0  # of the queued frames
        self._items: deque[bytes] = EMPTY  # a deque of its own from the first frame queued
        self._writer: asyncio.Task[None] | None = None
        self._in_write = False  # the writer took a frame off the queue and has not seen it written
        self._space: asyncio.Future[None] | None = None
        self._empty: asyncio.Future[None] | None = None
        self._closed: ConnectionLostError | None = None

    def __len__(self) -> int:
        return len(self._items)

    @property
    def queued_bytes(self) -> int:
        """Bytes of the frames waiting in the queue."""
        return self._bytes

    def _full(self, size: int) -> bool:
        """Whether a frame of `size` bytes must wait: too many frames, or bytes (one frame always fits)."""
        items = self._items
        if len(items) >= self._limit:
            return True
        limit = self._max_bytes
        return limit is not None and bool(items) and self._bytes + size > limit

    @property
    def closed(self) -> bool:
        """Whether the outbox accepts no more frames."""
        return self._closed is not None

    @property
    def error(self) -> ConnectionLostError | None:
        """Why the outbox was closed, or None while it is open."""
        return self._closed

    def offer(self, data: bytes) -> bool:
        """Send or queue one frame if that needs no waiting; False when full or closed."""
        if self._closed is not None:
            return False
        if self._writer is None and self._link.send_now(data):
            return True
        if self._full(len(data)):
            return False
        self._push(data)
        return True

    def offer_soon(self, data: bytes) -> bool:
        """Like :meth:`offer`, for fan-out: a frame written at once may wait for the turn's end (`Link.send_soon`)."""
        if self._closed is not None:
            return False
        if self._writer is None and self._link.send_soon(data):
            return True
        if self._full(len(data)):
            return False
        self._push(data)
        return True

    def _push(self, data: bytes) -> None:
        self._items = items = own(self._items)
        items.append(data)
        self._bytes += len(data)
        if self._writer is None:
            self._writer = asyncio.get_running_loop().create_task(self._run())

    async def wait_room(self, timeout: float | None = None, size: int = 1) -> None:
        """Return once a frame fits; raises like :meth:`put` without queueing anything."""
        if self._closed is not None:
            raise self._closed
        if self._full(size):
            await self._wait_for_room(timeout, size)

    async def put(self, data: bytes, timeout: float | None = None) -> None:
        """Send or queue one frame, waiting up to `timeout` seconds for room.

        Raises :class:`QueueFullTimeout` when no room came in time and
        :class:`ConnectionLostError` once the link is closed.
        """
        if self.offer(data):
            return
        if self._closed is not None:
            raise self._closed
        await self._wait_for_room(timeout, len(data))
        self._push(data)

    async def _wait_for_room(self, timeout: float | None, size: int = 1) -> None:
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while self._full(size):
            if self._space is None or self._space.done():
                self._space = loop.create_future()
            try:
                async with asyncio.timeout_at(deadline):
                    await asyncio.shield(self._space)
            except TimeoutError:
                raise QueueFullTimeout(len(self._items), timeout or 0.0) from None
            if self._closed is not None:
                raise self._closed

    async def flush(self, timeout: float | None = None) -> bool:
        """Wait until every queued frame was written; False on timeout or close."""
        if self._writer is None or self._closed is not None:
            return not self._items
        if self._empty is None or self._empty.done():
            self._empty = asyncio.get_running_loop().create_future()
        try:
            async with asyncio.timeout(timeout):
                await asyncio.shield(self._empty)
        except TimeoutError:
            return False
        return not self._items

    def close(self, reason: ConnectionLostError) -> int:
        """Stop accepting frames; queued ones are dropped (their count is returned) and waiters fail."""
        if self._closed is None:
            self._closed = reason
        # The frame being written when the link closed is not known to have left: count it too.
        dropped = len(self._items) + (1 if self._in_write else 0)
        self._in_write = False
        self._items.clear()
        self._bytes = 0
        for fut in (self._space, self._empty):
            if fut is not None and not fut.done():
                fut.set_result(None)
        writer = self._writer
        if writer is not None and asyncio.current_task() is not writer:
            writer.cancel()
        return dropped

    async def _run(self) -> None:
        items = self._items
        link = self._link
        try:
            while items:
                data = items.popleft()
                self._bytes -= len(data)
                space = self._space
                if space is not None and not space.done():
                    space.set_result(None)
                self._in_write = True
                await link.send(data)
                self._in_write = False
            empty = self._empty
            if empty is not None and not empty.done():
                empty.set_result(None)
        except LinkClosed as exc:
            # Closed, but what is left stays counted: the owner's close() reports it.
            if self._closed is None:
                self._closed = ConnectionLostError(f"write failed: {exc}", exc.code)
            for fut in (self._space, self._empty):
                if fut is not None and not fut.done():
                    fut.set_result(None)
        finally:
            self._writer = None
