"""Runs the handler chain of each incoming message, with bounded concurrency."""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from .errors import HandlerError, NoHandlerError
from .handler import Handler, Sender
from .hooks import Hook
from .message import Message, ProtoMessage

__all__ = ["Dispatcher", "Replier"]


class Replier(Protocol):
    """The sender of a sync request: it can still answer with an error reply."""

    async def fail(self, request_kind: str, error: BaseException) -> None:
        """Send an error reply if no reply was sent yet."""
        ...

    def release(self) -> None:
        """The request's handler finished."""
        ...


def _release(sender: Sender, msg: Message[ProtoMessage]) -> None:
    if msg.metadata.is_sync:
        release = getattr(sender, "release", None)
        if release is not None:
            release()


_Job = tuple[Handler[Any], Sender, Message[ProtoMessage]]


class Dispatcher:
    """Looks up the chain for a message's kind and runs it.

    With `max_concurrency` <= 1 the chain runs inline, so the read loop
    handles one message at a time, in order. Otherwise messages wait in a
    queue served by a pool of at most `max_concurrency` worker tasks, started
    as the load needs them and kept until :meth:`drain`: no task per message.
    The caller (a read loop) waits while the queue is full, which is
    backpressure.
    """

    __slots__ = (
        "_chains",
        "_idle",
        "_limit",
        "_on_end",
        "_on_start",
        "_queue",
        "_queue_limit",
        "_report",
        "_resting",
        "_room",
        "_workers",
    )

    def __init__(
        self,
        chains: Mapping[str, Handler[Any]],
        max_concurrency: int,
        on_worker_start: Hook[[]],
        on_worker_end: Hook[[]],
        report: Callable[[BaseException], None],
    ) -> None:
        self._chains = chains
        self._limit = max_concurrency
        self._on_start = on_worker_start
        self._on_end = on_worker_end
        self._report = report
        self._queue: deque[_Job] = deque()
        self._queue_limit = max_concurrency * 4
        self._workers: dict[asyncio.Task[None], str] = {}
        self._resting: list[asyncio.Future[None]] = []
        self._room = asyncio.Event()
        self._room.set()
        self._idle: asyncio.Event | None = None

    @property
    def in_flight(self) -> int:
        """Messages queued or being handled by workers (concurrent mode only)."""
        return len(self._queue) + sum(1 for kind in self._workers.values() if kind)

    def handles(self, kind: str) -> bool:
        """Whether a handler is registered for `kind`."""
        return kind in self._chains

    async def dispatch(self, sender: Sender, msg: Message[ProtoMessage]) -> None:
        """Run (inline) or queue (concurrently) the chain for `msg`."""
        chain = self._chains.get(msg.kind)
        if chain is None:
            await self._fail(sender, msg, NoHandlerError(msg.kind))
            _release(sender, msg)
            return
        await self.run(chain, sender, msg)

    async def run(self, chain: Handler[Any], sender: Sender, msg: Message[ProtoMessage]) -> None:
        """Run (inline) or queue (concurrently) `chain` for `msg`."""
        if self._limit <= 1:
            await self._run(chain, sender, msg)
            return
        queue = self._queue
        queue.append((chain, sender, msg))
        if self._resting:
            resting = self._resting.pop()
            if not resting.done():
                resting.set_result(None)
        elif len(self._workers) < self._limit:
            worker = asyncio.get_running_loop().create_task(self._work())
            self._workers[worker] = ""
            worker.add_done_callback(self._worker_done)
        if len(queue) >= self._queue_limit:
            self._room.clear()
            while len(queue) >= self._queue_limit:
                await self._room.wait()

    async def _work(self) -> None:
        queue = self._queue
        workers = self._workers
        room = self._room
        resting = self._resting
        loop = asyncio.get_running_loop()
        me = asyncio.current_task()
        assert me is not None
        try:
            while True:
                while queue:
                    chain, sender, msg = queue.popleft()
                    if len(queue) < self._queue_limit:
                        room.set()
                    workers[me] = msg.kind
                    await self._run(chain, sender, msg)
                    workers[me] = ""
                if self._idle is not None and not any(workers.values()):
                    self._idle.set()
                wake = loop.create_future()
                resting.append(wake)
                await wake
        finally:
            del workers[me]

    async def _run(self, chain: Handler[Any], sender: Sender, msg: Message[ProtoMessage]) -> None:
        if self._on_start:
            self._on_start()
        try:
            await chain(sender, msg)
        except Exception as exc:
            err = HandlerError(msg.kind, exc)
            err.__cause__ = exc
            await self._fail(sender, msg, err)
        finally:
            _release(sender, msg)
            if self._on_end:
                self._on_end()

    async def _fail(self, sender: Sender, msg: Message[ProtoMessage], err: Exception) -> None:
        self._report(err)
        fail = getattr(sender, "fail", None)
        if msg.metadata.is_sync and fail is not None:
            await fail(msg.kind, err)

    def _worker_done(self, worker: asyncio.Task[None]) -> None:
        if not worker.cancelled() and (exc := worker.exception()) is not None:
            self._report(exc)

    async def drain(self, timeout: float | None, when: str) -> None:
        """Wait for queued and running handlers; cancel and report those left after `timeout`.

        The workers end too.
        """
        if self._queue or any(self._workers.values()):
            self._idle = asyncio.Event()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await self._idle.wait()
        unfinished = [kind for kind in self._workers.values() if kind]
        unfinished += [msg.kind for _, _, msg in self._queue]
        self._queue.clear()
        workers = list(self._workers)
        for worker in workers:
            worker.cancel()
        self._resting.clear()
        self._room.set()
        if workers:  # let them unwind; a handler that ignores cancellation gets a second
            await asyncio.wait(workers, timeout=1.0)
        for kind in unfinished:
            cancelled = asyncio.CancelledError(f"handler still running at {when} after {timeout}s, cancelled")
            err = HandlerError(kind, cancelled)
            err.__cause__ = cancelled
            self._report(err)
